#include <gtest/gtest.h>

#include <algorithm>
#include <boost/beast/http/fields.hpp>

#include "llm_proxy/addons/scheme_upgrader.hpp"
#include "llm_proxy/flow.hpp"
#include "llm_proxy/proxy/config.hpp"
#include "proxy/http_util.hpp"
#include "support/addon_test_kit.hpp"

using namespace llm_proxy;

TEST(ConnectTo, ParsesCurlSyntax) {
    auto r = parse_connect_to("api.openai.com:443:127.0.0.1:8443");
    EXPECT_EQ(r.host, "api.openai.com");
    EXPECT_EQ(r.port, 443);
    EXPECT_EQ(r.connect_host, "127.0.0.1");
    EXPECT_EQ(r.connect_port, 8443);
}

TEST(ConnectTo, EmptyFieldsMatchAnything) {
    auto r = parse_connect_to("::127.0.0.1:");
    EXPECT_EQ(r.host, "");
    EXPECT_EQ(r.port, 0);
    EXPECT_EQ(r.connect_host, "127.0.0.1");
    EXPECT_EQ(r.connect_port, 0);
}

TEST(ConnectTo, Ipv6InBrackets) {
    auto r = parse_connect_to("[::1]:443:[::1]:9000");
    EXPECT_EQ(r.host, "::1");
    EXPECT_EQ(r.connect_host, "::1");
    EXPECT_EQ(r.connect_port, 9000);
}

TEST(ConnectTo, RejectsGarbage) {
    EXPECT_THROW(parse_connect_to("api.openai.com"), std::invalid_argument);
    EXPECT_THROW(parse_connect_to("a:99999:b:1"), std::invalid_argument);
    EXPECT_THROW(parse_connect_to("a:443:b:x"), std::invalid_argument);
    EXPECT_THROW(parse_connect_to("[::1:443:b:1"), std::invalid_argument);
}

TEST(HttpUtil, DropsHopByHopAndConnectionListedFields) {
    boost::beast::http::fields f;
    f.insert("Host", "api.openai.com");
    f.insert("Connection", "keep-alive, X-Secret-Hop");
    f.insert("X-Secret-Hop", "1");
    f.insert("Proxy-Connection", "keep-alive");
    f.insert("Proxy-Authorization", "Basic abc");
    f.insert("Keep-Alive", "timeout=5");
    f.insert("TE", "trailers");
    f.insert("Transfer-Encoding", "chunked");
    f.insert("Upgrade", "websocket");
    f.insert("Authorization", "Bearer sk-test");
    f.insert("Content-Type", "application/json");
    auto h = proxy::end_to_end_headers(f);
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[0].first, "Host");
    EXPECT_EQ(h[1].first, "Authorization");
    EXPECT_EQ(h[2].first, "Content-Type");
}

TEST(HttpUtil, ConnectionListsWithSpacesEmptyItemsAndSeveralFields) {
    boost::beast::http::fields f;
    f.insert("Connection", " ,x-one ,\t,X-Two");
    f.insert("Connection", "close");
    f.insert("Connection", "X-Three");
    f.insert("X-One", "1");
    f.insert("X-Two", "2");
    f.insert("X-Three", "3");
    f.insert("X-Kept", "4");
    auto h = proxy::end_to_end_headers(f);
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0].first, "X-Kept");
}

namespace {
struct connect_target {
    bool ok = false;
    std::string host;
    std::uint16_t port = 0;
};
connect_target parse_target(std::string_view s) {
    connect_target t;
    t.ok = proxy::parse_connect_target(s, t.host, t.port);
    return t;
}
}  // namespace

TEST(HttpUtil, ConnectTargets) {
    auto t = parse_target("api.openai.com:443");
    EXPECT_TRUE(t.ok);
    EXPECT_EQ(t.host, "api.openai.com");
    EXPECT_EQ(t.port, 443);
    t = parse_target("[::1]:8080");
    EXPECT_TRUE(t.ok);
    EXPECT_EQ(t.host, "::1");
    EXPECT_EQ(t.port, 8080);
    t = parse_target("127.0.0.1:65535");
    EXPECT_TRUE(t.ok);
    EXPECT_EQ(t.port, 65535);
    t = parse_target("h:1");
    EXPECT_TRUE(t.ok);
    EXPECT_EQ(t.port, 1);
}

TEST(HttpUtil, ConnectTargetsRejected) {
    for (const char* bad : {"api.openai.com",   // missing port
                            "api.openai.com:",  // empty port
                            ":443",             // empty host
                            "h:0",
                            "h:65536",
                            "h:99999",
                            "h:-1",
                            "h:+1",
                            "h:x",
                            "::1:443",  // bare IPv6
                            "[::1]",
                            "[::1:443",
                            "[]:443",
                            "[v1.x]:443",
                            "user@h:443",
                            "user:pw@h:443",  // userinfo
                            "h/x:443",
                            "h x:443",
                            "h:443/",
                            "",
                            ":"}) {
        auto t = parse_target(bad);
        EXPECT_FALSE(t.ok) << bad;
    }
}

TEST(HttpUtil, RequestHeadScanFindsTheEndAndRefusesBareLf) {
    using proxy::head_scan;
    auto done = proxy::scan_request_head("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 0);
    EXPECT_EQ(done.state, head_scan::status::complete);
    EXPECT_EQ(done.length, 27u);
    EXPECT_EQ(proxy::scan_request_head("GET / HTTP/1.1\r\nHost: a\r\n", 0).state,
              head_scan::status::need_more);
    // Resumed near the end of what was scanned: an end split over two reads is found.
    EXPECT_EQ(proxy::scan_request_head("GET / HTTP/1.1\r\n\r\n", 15).state,
              head_scan::status::complete);
    EXPECT_EQ(proxy::scan_request_head("\r\n\r\nGET / HTTP/1.1\r\n\r\n", 0).length, 22u);
    EXPECT_EQ(proxy::scan_request_head("GET / HTTP/1.1\nHost: a", 0).state, head_scan::status::bad);
    EXPECT_EQ(proxy::scan_request_head("GET / HTTP/1.1\r\nHost: a\n", 0).state,
              head_scan::status::bad);
}

TEST(HttpUtil, RequestHeadProblems) {
    const std::string start = "POST http://a/ HTTP/1.1\r\n";
    EXPECT_EQ(proxy::request_head_problem(start + "Host: a\r\nX-A:\t1 2\t\r\n\r\n"), "");
    EXPECT_EQ(proxy::request_head_problem(start + "X-A: \x80\xff\r\n\r\n"), "");  // obs-text
    EXPECT_NE(proxy::request_head_problem(start + "X-A: a\r\n b\r\n\r\n").find("folding"),
              std::string::npos);
    EXPECT_NE(proxy::request_head_problem(start + " X-A: a\r\n\r\n").find("folding"),
              std::string::npos);
    EXPECT_NE(proxy::request_head_problem(start + "X-A : a\r\n\r\n").find("whitespace"),
              std::string::npos);
    EXPECT_NE(proxy::request_head_problem(start + "X-A\t: a\r\n\r\n").find("whitespace"),
              std::string::npos);
    EXPECT_NE(proxy::request_head_problem(start + "X-A: a\rb\r\n\r\n").find("CR"),
              std::string::npos);
    EXPECT_NE(proxy::request_head_problem(start + std::string("X-A: a\0b\r\n\r\n", 12)), "");
    EXPECT_NE(proxy::request_head_problem(start + std::string("X-\0: a\r\n\r\n", 10)), "");
    EXPECT_NE(proxy::request_head_problem(start + "X-A: \x7f\r\n\r\n"), "");
    EXPECT_NE(proxy::request_head_problem(start + "no colon\r\n\r\n"), "");
    EXPECT_NE(proxy::request_head_problem("POST http://a/\x01 HTTP/1.1\r\n\r\n"), "");
}

TEST(HttpUtil, TransferCodingsInWireOrderOverSeveralFields) {
    boost::beast::http::fields f;
    f.insert("Transfer-Encoding", "gzip ,\tIdentity;q=1");
    f.insert("X-Other", "1");
    f.insert("Transfer-Encoding", ", CHUNKED");
    EXPECT_EQ(proxy::transfer_codings(f),
              (std::vector<std::string>{"gzip", "identity", "chunked"}));
    boost::beast::http::fields none;
    EXPECT_TRUE(proxy::transfer_codings(none).empty());
}

TEST(HttpUtil, ErrorJsonIsOpenAiShaped) {
    auto body = proxy::error_json("upstream_tls_verification", "bad \"cert\"");
    EXPECT_NE(body.find("\"code\":\"upstream_tls_verification\""), std::string::npos);
    EXPECT_NE(body.find("\"message\":\"bad \\\"cert\\\"\""), std::string::npos);
}

TEST(HttpUtil, BodylessResponses) {
    EXPECT_TRUE(proxy::response_has_no_body("HEAD", 200));
    EXPECT_TRUE(proxy::response_has_no_body("GET", 204));
    EXPECT_TRUE(proxy::response_has_no_body("GET", 304));
    EXPECT_FALSE(proxy::response_has_no_body("GET", 200));
}

TEST(Flow, CapturedBodyKeepsPrefixAndCountsAll) {
    captured_body b;
    b.append("hello ", 8);
    b.append("world", 8);
    EXPECT_EQ(b.data, "hello wo");
    EXPECT_EQ(b.total, 11u);
    EXPECT_TRUE(b.truncated);
}

TEST(Flow, CapturedBodyAtItsLimit) {
    constexpr std::size_t limit = 1000;
    const std::string bytes(limit + 1, 'b');
    // One append of limit - 1, limit and limit + 1 bytes.
    for (std::size_t n : {limit - 1, limit, limit + 1}) {
        SCOPED_TRACE(n);
        captured_body b;
        b.append(std::string_view(bytes).substr(0, n), limit);
        EXPECT_EQ(b.data, bytes.substr(0, std::min(n, limit)));
        EXPECT_EQ(b.total, n);
        EXPECT_EQ(b.truncated, n > limit);
    }
    // Appends that reach the limit exactly, then go one byte past it.
    captured_body b;
    b.append(std::string_view(bytes).substr(0, limit - 3), limit);
    b.append(std::string_view(bytes).substr(0, 3), limit);
    EXPECT_EQ(b.data.size(), limit);
    EXPECT_EQ(b.total, limit);
    EXPECT_FALSE(b.truncated) << "a body exactly at the limit is kept whole";
    b.append("", limit);
    EXPECT_FALSE(b.truncated) << "an empty append changes nothing";
    b.append("x", limit);
    EXPECT_EQ(b.data, bytes.substr(0, limit));
    EXPECT_EQ(b.total, limit + 1);
    EXPECT_TRUE(b.truncated);
    // An append that straddles the limit keeps its prefix up to the limit.
    captured_body s;
    s.append(std::string(limit - 2, 'a'), limit);
    s.append("bcd", limit);
    EXPECT_EQ(s.data, std::string(limit - 2, 'a') + "bc");
    EXPECT_EQ(s.total, limit + 1);
    EXPECT_TRUE(s.truncated);
    // A zero limit keeps nothing; only an empty body is whole.
    captured_body z;
    z.append("", 0);
    EXPECT_FALSE(z.truncated);
    z.append("a", 0);
    EXPECT_EQ(z.data, "");
    EXPECT_EQ(z.total, 1u);
    EXPECT_TRUE(z.truncated);
}

TEST(Flow, EventStreamIsTheContentTypeInAnyCaseWithParameters) {
    EXPECT_TRUE(is_event_stream({{"Content-Type", "text/event-stream"}}));
    EXPECT_TRUE(is_event_stream({{"content-type", " Text/Event-Stream; charset=utf-8"}}));
    EXPECT_TRUE(is_event_stream({{"X-A", "b"}, {"CONTENT-TYPE", "\ttext/event-stream"}}));
    EXPECT_FALSE(is_event_stream({}));
    EXPECT_FALSE(is_event_stream({{"Content-Type", "application/json"}}));
    EXPECT_FALSE(is_event_stream({{"Content-Type", "text/event"}}));
    EXPECT_FALSE(is_event_stream({{"Accept", "text/event-stream"}}));
    // The first Content-Type decides, as find_header does.
    EXPECT_FALSE(is_event_stream(
        {{"Content-Type", "application/json"}, {"Content-Type", "text/event-stream"}}));
}

TEST(Flow, UrlOmitsDefaultPortAndBracketsIpv6) {
    request_head r{"GET", "https", "api.openai.com", 443, "/v1/models", 11, {}};
    EXPECT_EQ(r.url(), "https://api.openai.com/v1/models");
    r.port = 8443;
    EXPECT_EQ(r.url(), "https://api.openai.com:8443/v1/models");
    r.host = "::1";
    EXPECT_EQ(r.authority(), "[::1]:8443");
}

TEST(SchemeUpgrader, UpgradesHttpAndMarksResponse) {
    flow f;
    f.request = {"GET", "http", "api.openai.com", 80, "/v1/models", 11, {}};
    addons::scheme_upgrader up;
    up.on_request_headers(f);
    EXPECT_EQ(f.request.scheme, "https");
    EXPECT_EQ(f.request.port, 443);
    f.response = response_head{200, "OK", 11, {}};
    test::run_hook(up.on_response_headers(f));
    ASSERT_EQ(f.response->headers.size(), 1u);
    EXPECT_EQ(f.response->headers[0].first, "X-Llm_proxy-scheme-upgraded");
    EXPECT_EQ(f.response->headers[0].second, "true");
}

TEST(SchemeUpgrader, LeavesHttpsAlone) {
    flow f;
    f.request = {"GET", "https", "api.openai.com", 443, "/", 11, {}};
    addons::scheme_upgrader up;
    up.on_request_headers(f);
    f.response = response_head{200, "OK", 11, {}};
    test::run_hook(up.on_response_headers(f));
    EXPECT_TRUE(f.response->headers.empty());
    EXPECT_TRUE(f.tags.empty());
}

namespace {

// A read buffer of exactly `capacity` bytes (a fresh flat_buffer allocates exactly what is
// reserved) holding `held` distinct bytes, starting `offset` bytes into its storage (as after
// a consumed head).
boost::beast::flat_buffer idle_buffer(std::size_t capacity, std::size_t held,
                                      std::size_t offset = 0) {
    boost::beast::flat_buffer b(128 * 1024);
    b.reserve(capacity);
    EXPECT_EQ(b.capacity(), capacity);
    auto room = b.prepare(offset + held);
    auto* p = static_cast<char*>(room.data());
    for (std::size_t i = 0; i < offset + held; ++i) {
        p[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
    }
    b.commit(offset + held);
    b.consume(offset);
    EXPECT_EQ(b.capacity(), capacity);
    return b;
}

std::string held_bytes(const boost::beast::flat_buffer& b) {
    return {static_cast<const char*>(b.data().data()), b.size()};
}

}  // namespace

// "Before waiting for the next request a buffer of more than 16 KiB capacity holding at most
// 4 KiB is shrunk back to 4 KiB": capacity 16 KiB - 1 / 16 KiB / 16 KiB + 1, held bytes
// 4 KiB - 1 / 4 KiB / 4 KiB + 1. The held bytes survive exactly, as does the maximum size.
TEST(ShrinkIdleBuffer, ShrinksOnlyAboveSixteenKibHoldingAtMostFourKib) {
    constexpr std::size_t kib = 1024;
    struct edge {
        std::size_t capacity, held;
        bool shrinks;
    };
    const edge edges[] = {
        {16 * kib - 1, 100, false},
        {16 * kib, 100, false},
        {16 * kib + 1, 100, true},
        {16 * kib + 1, 0, true},
        {16 * kib + 1, 4 * kib - 1, true},
        {16 * kib + 1, 4 * kib, true},
        {16 * kib + 1, 4 * kib + 1, false},
        {16 * kib, 4 * kib, false},
        {128 * kib, 4 * kib, true},
        {128 * kib, 4 * kib + 1, false},
        {128 * kib, 0, true},
        {128 * kib, 64 * kib, false},
    };
    for (auto e : edges) {
        for (std::size_t offset : {std::size_t{0}, std::size_t{5000}}) {
            if (offset + e.held > e.capacity) {
                continue;
            }
            SCOPED_TRACE(testing::Message() << "capacity " << e.capacity << ", holding " << e.held
                                            << " at offset " << offset);
            auto b = idle_buffer(e.capacity, e.held, offset);
            const std::string before = held_bytes(b);
            const void* storage = b.data().data();
            proxy::shrink_idle_buffer(b);
            EXPECT_EQ(held_bytes(b), before);
            EXPECT_EQ(b.size(), e.held);
            EXPECT_EQ(b.max_size(), 128 * kib);
            if (e.shrinks) {
                EXPECT_EQ(b.capacity(), 4 * kib);
            } else {
                EXPECT_EQ(b.capacity(), e.capacity);
                EXPECT_EQ(b.data().data(), storage) << "left alone, not copied";
            }
            // Shrinking again changes nothing; the buffer still takes a full 4 KiB read.
            proxy::shrink_idle_buffer(b);
            EXPECT_EQ(held_bytes(b), before);
            EXPECT_GE(b.capacity(), 4 * kib);
        }
    }
}

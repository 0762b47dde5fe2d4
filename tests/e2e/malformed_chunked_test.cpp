// Malformed chunked requests are refused: a 400 with a JSON error body, then the connection is
// closed, at once (the proxy runs with --idle-timeout 300 and the client waits 30 s at most),
// and nothing the client sent after the bad body reaches the upstream as a request of its own.
// Covered: Transfer-Encoding on an HTTP/1.0 request (RFC 9112 section 6.1: faulty framing),
// chunk sizes that overflow 64 bits (one of them wraps around to 5), a negative size, a "0x"
// prefix, and a bare LF ending the chunk-size line.
#include <algorithm>
#include <vector>

#include "framing_fixture.hpp"

namespace llm_proxy::test {

namespace {

enum class malformed_kind {
    te_on_http10,
    size_17_hex_digits,  // FFFFFFFFFFFFFFFFF1
    size_2pow64_plus_5,  // 10000000000000005: 5 once it wraps around 64 bits
    size_negative,       // -5
    size_0x_prefix,      // 0x5
    bare_lf,             // 5\nhello...
};

struct malformed_row {
    bool https;
    malformed_kind kind;
    send_timing timing;
};

const char* kind_name(malformed_kind k) {
    switch (k) {
        case malformed_kind::te_on_http10:
            return "transferEncodingOnHttp10";
        case malformed_kind::size_17_hex_digits:
            return "size17HexDigits";
        case malformed_kind::size_2pow64_plus_5:
            return "size2pow64plus5";
        case malformed_kind::size_negative:
            return "sizeNegative";
        case malformed_kind::size_0x_prefix:
            return "size0xPrefix";
        case malformed_kind::bare_lf:
            return "bareLf";
    }
    return "?";
}

// The chunked body sent after the head.
std::string body_of(malformed_kind k) {
    switch (k) {
        case malformed_kind::te_on_http10:
            return "5\r\nhello\r\n0\r\n\r\n";
        case malformed_kind::size_17_hex_digits:
            return "FFFFFFFFFFFFFFFFF1\r\nhello\r\n0\r\n\r\n";
        case malformed_kind::size_2pow64_plus_5:
            return "10000000000000005\r\nhello\r\n0\r\n\r\n";
        case malformed_kind::size_negative:
            return "-5\r\nhello\r\n0\r\n\r\n";
        case malformed_kind::size_0x_prefix:
            return "0x5\r\nhello\r\n0\r\n\r\n";
        case malformed_kind::bare_lf:
            return "5\nhello\r\n0\r\n\r\n";
    }
    return {};
}

std::string row_name(const malformed_row& r) {
    return std::string(r.https ? "https_" : "http_") + kind_name(r.kind) +
           (r.timing == send_timing::together ? "_oneWrite" : "_headFirst");
}

// Test names and failure messages show the row by its name.
void PrintTo(const malformed_row& r, std::ostream* os) {
    *os << row_name(r);
}

std::vector<malformed_row> rows() {
    std::vector<malformed_row> out;
    for (bool https : {true, false}) {
        for (auto kind : {malformed_kind::te_on_http10, malformed_kind::size_17_hex_digits,
                          malformed_kind::size_2pow64_plus_5, malformed_kind::size_negative,
                          malformed_kind::size_0x_prefix, malformed_kind::bare_lf}) {
            for (auto timing : {send_timing::together, send_timing::head_first}) {
                out.push_back({https, kind, timing});
            }
        }
    }
    return out;
}

}  // namespace

class MalformedChunked : public framing_suite,
                         public ::testing::WithParamInterface<malformed_row> {};

TEST_P(MalformedChunked, RefusedWith400ThenClosedAndNothingSmuggled) {
    const auto& row = GetParam();
    auto proxy = env().start_proxy({"simple"});
    auto& up = env().upstream();
    up.reset_stats();
    // 30 s per read: far below the proxy's idle (300 s) and body read (60 s) timeouts.
    auto c = connect(*proxy, row.https ? "https://api.openai.com" : "http://api.openai.com",
                     std::chrono::seconds(30));
    const std::string path = "/sink?id=" + unique_id("malformed");
    const std::string smuggled_path = "/echo?id=" + unique_id("smuggled");
    const unsigned version = row.kind == malformed_kind::te_on_http10 ? 10 : 11;
    const std::string head = make_head("POST", c.target(path), c.host_header(),
                                       {{"Transfer-Encoding", "chunked"}}, version);
    // What follows the body: a request of its own if the body's end were misread.
    const std::string rest =
        body_of(row.kind) + make_head("GET", c.target(smuggled_path), c.host_header());
    // The proxy may refuse before it has read everything: later writes may fail.
    if (row.timing == send_timing::together) {
        c.try_send(head + rest);
    } else {
        c.try_send(head);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        c.try_send(rest);
    }

    raw_response r;
    try {
        r = c.read_final_response();
    } catch (const connection_timeout& e) {
        FAIL() << "no answer within 30 s (the proxy waits for more bytes): " << e.what();
    } catch (const connection_closed& e) {
        FAIL() << "the connection was closed without a 400: " << e.what();
    }
    EXPECT_EQ(r.status, 400u) << r.body.substr(0, 500);
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error") && j["error"].is_object())
        << "not a JSON error body: " << r.body.substr(0, 500);
    EXPECT_TRUE(c.peer_closed(std::chrono::seconds(30)))
        << "the connection stays open after the 400";
    EXPECT_EQ(c.pending(), "") << "more answers after the 400";

    const auto stats = up.stats();
    const auto seen = sorted_requests_seen(stats);
    EXPECT_EQ(std::find(seen.begin(), seen.end(), "GET " + smuggled_path), seen.end())
        << "bytes after the malformed body reached the upstream as a request";
    EXPECT_EQ(stats["by_path"].value("/sink", 0), 0)
        << "the upstream got the malformed request as a completed one";
    EXPECT_EQ(stats.value("bad_requests", -1), 0)
        << "the upstream failed to parse what the proxy sent: "
        << stats.value("last_bad_request", "");
}

INSTANTIATE_TEST_SUITE_P(Kinds, MalformedChunked, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<malformed_row>& info) {
                             return row_name(info.param);
                         });

}  // namespace llm_proxy::test

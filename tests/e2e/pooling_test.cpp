// Pooled upstream connections stay in sync. After a chunked upload whose head reached the proxy
// before its body, and after an upstream response followed by bytes it never announced, every
// later request on the same and on other client connections gets its own answer, and the
// upstream sees exactly the requests the clients sent. The proxies run with --threads 1: one
// pool, so a connection left out of sync would be handed to the next request.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <vector>

#include "framing_fixture.hpp"
#include "support/raw_upstream.hpp"

namespace llm_proxy::test {

namespace {

constexpr std::uint64_t MiB = 1024 * 1024;

const char* origin_of(bool https) {
    return https ? "https://api.openai.com" : "http://api.openai.com";
}

struct poison_row {
    bool https;
    std::uint64_t size;
};

std::string row_name(const poison_row& r) {
    return std::string(r.https ? "https_" : "http_") +
           (r.size >= MiB ? std::to_string(r.size / MiB) + "MiB" : std::to_string(r.size));
}

// Test names and failure messages show the row by its name.
void PrintTo(const poison_row& r, std::ostream* os) {
    *os << row_name(r);
}

std::vector<poison_row> poison_rows() {
    std::vector<poison_row> rows;
    for (std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{65535},
                               std::uint64_t{65536}, std::uint64_t{65537}, MiB, 20 * MiB}) {
        rows.push_back({true, size});
    }
    rows.push_back({false, 65536});
    rows.push_back({false, MiB});
    return rows;
}

// POST /echo?id=<id> with a small Content-Length body: the answer must be this request's own.
void expect_own_echo_post(proxied_connection& c, const std::string& id, const std::string& body) {
    const std::string path = "/echo?id=" + id;
    c.send(make_head("POST", c.target(path), c.host_header(),
                     {{"Content-Length", std::to_string(body.size())}}) +
           body);
    raw_response r = c.read_final_response();
    ASSERT_EQ(r.status, 200u) << "POST " << path << ": " << r.body.substr(0, 500);
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "POST " << path << ": " << r.body.substr(0, 500);
    EXPECT_EQ(j.value("target", ""), path) << "POST " << path << " got another request's answer";
    EXPECT_EQ(j.value("body", ""), body);
}

}  // namespace

class UpstreamPoisoning : public framing_suite, public ::testing::WithParamInterface<poison_row> {};

TEST_P(UpstreamPoisoning, ChunkedHeadFirstUploadLeavesThePooledConnectionInSync) {
    const auto& row = GetParam();
    auto proxy = env().start_proxy({"simple"});
    auto& up = env().upstream();
    up.reset_stats();
    std::vector<std::string> sent;  // "METHOD target" of every request the clients made

    auto a = connect(*proxy, origin_of(row.https));
    upload_spec spec;
    spec.size = row.size;
    spec.seed = next_seed();
    spec.framing = body_framing::chunked;
    spec.chunk_size = 16 * 1024;
    const std::string path = "/sink?id=" + unique_id("upload");
    sent.push_back("POST " + path);
    const auto out = upload(a, spec, send_timing::head_first, false, path);
    expect_sink_received(out, path);
    ASSERT_TRUE(out.response.keep_alive());

    // The same client connection, then a second client (the upstream connection is pooled
    // and handed to it), then the first again.
    auto id = unique_id("a");
    sent.push_back("GET /echo?id=" + id);
    expect_own_echo(a, id);
    {
        auto b = connect(*proxy, origin_of(row.https));
        id = unique_id("b");
        sent.push_back("GET /echo?id=" + id);
        expect_own_echo(b, id);
        id = unique_id("b");
        sent.push_back("POST /echo?id=" + id);
        expect_own_echo_post(b, id, "second client body");
    }
    id = unique_id("a");
    sent.push_back("GET /echo?id=" + id);
    expect_own_echo(a, id);

    auto stats = up.stats();
    std::sort(sent.begin(), sent.end());
    EXPECT_EQ(sorted_requests_seen(stats), sent)
        << "the upstream parsed other requests than the clients sent";
    EXPECT_EQ(stats.value("bad_requests", -1), 0)
        << "the upstream failed to parse what the proxy sent: "
        << stats.value("last_bad_request", "");
}

INSTANTIATE_TEST_SUITE_P(Sizes, UpstreamPoisoning, ::testing::ValuesIn(poison_rows()),
                         [](const ::testing::TestParamInfo<poison_row>& info) {
                             return row_name(info.param);
                         });

class UpstreamHygiene : public framing_suite, public ::testing::WithParamInterface<bool> {};

TEST_P(UpstreamHygiene, BytesPastAResponseNeverBecomeAnotherRequestsAnswer) {
    const bool https = GetParam();
    auto proxy = env().start_proxy({"simple"});
    auto& up = env().upstream();
    up.reset_stats();
    std::optional<proxied_connection> a;
    a.emplace(proxy->host(), proxy->port(), origin_of(https), env().proxy_ca());
    for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        a->send(
            make_head("GET", a->target("/overlong?id=" + unique_id("overlong")), a->host_header()));
        const raw_response r = a->read_final_response();
        EXPECT_EQ(r.status, 200u);
        EXPECT_EQ(r.body, "hello");
        EXPECT_FALSE(r.header("X-Smuggled").has_value());
        if (!r.keep_alive()) {
            // Closing the client connection is a fair answer too; go on with a new one.
            a.emplace(proxy->host(), proxy->port(), origin_of(https), env().proxy_ca());
        }
        expect_own_echo(*a, unique_id("a"));
        auto b = connect(*proxy, origin_of(https));
        expect_own_echo(b, unique_id("b"));
        expect_own_echo(b, unique_id("b"));
        expect_own_echo(*a, unique_id("a"));
    }
    EXPECT_EQ(up.stats().value("bad_requests", -1), 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, UpstreamHygiene, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                             return std::string(info.param ? "https" : "http");
                         });

// ---- The retry on a fresh connection (architecture.md, Life of a flow, step 10): a request
// that finds its pooled connection dead is sent again on a new one only when its whole body is
// in memory, that is when the body is no longer than its capture: max(the addons'
// request_capture_limit, 256 KiB). `simple` asks for no capture (256 KiB is the bound),
// dir_logger for --max-body-log (default 4 MiB).

namespace {

// The upstream of the keep-alive race: every request is answered with
// raw_upstream::echo_response, except a request whose target contains "/drop" arriving on a
// connection that has already served one: that request is read whole, then the connection is
// closed without an answer (a FIN, nothing left unread), as by a server that closed an idle
// connection just as the proxy reused it.
void drop_reused_connections(raw_upstream& up) {
    up.set_policy([](const strict_request& r, std::size_t nth) {
        if (nth > 0 && r.target.find("/drop") != std::string::npos) {
            return raw_upstream::reply{"", true};
        }
        return raw_upstream::reply{raw_upstream::echo_response(r)};
    });
}

constexpr std::size_t KiB = 1024;
constexpr std::size_t replay_limit = 256 * KiB;  // the engine's replay buffer
constexpr std::size_t max_body_log = 4 * MiB;    // dir_logger's default --max-body-log

struct retry_row {
    bool dir_logger;  // else simple
    std::size_t bound;
    long delta;  // -1, 0, +1: the body is bound + delta bytes
    bool chunked;
    bool retried() const { return delta <= 0; }
    std::size_t size() const { return static_cast<std::size_t>(static_cast<long>(bound) + delta); }
};

std::string retry_row_name(const retry_row& r) {
    std::string bound = r.bound >= MiB ? std::to_string(r.bound / MiB) + "MiB"
                                       : std::to_string(r.bound / KiB) + "KiB";
    const char* delta = r.delta < 0 ? "_minus1" : r.delta > 0 ? "_plus1" : "";
    return std::string(r.dir_logger ? "dir_logger_" : "simple_") + bound + delta +
           (r.chunked ? "_chunked" : "_length");
}

void PrintTo(const retry_row& r, std::ostream* os) {
    *os << retry_row_name(r);
}

std::vector<retry_row> retry_rows() {
    std::vector<retry_row> rows;
    for (bool dir_logger : {false, true}) {
        for (bool chunked : {false, true}) {
            for (long delta : {-1L, 0L, 1L}) {
                rows.push_back(
                    {dir_logger, dir_logger ? max_body_log : replay_limit, delta, chunked});
            }
        }
    }
    return rows;
}

// `size` bytes that do not repeat with a power-of-two period.
std::string retry_body(std::size_t size) {
    static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string body(size, ' ');
    for (std::size_t i = 0; i < size; ++i) {
        body[i] = alphabet[(i * 131 + i / 4099) % alphabet.size()];
    }
    return body;
}

// The chunked encoding of `body`: chunks of 16000 bytes (so encoded and decoded sizes differ).
std::string chunked_encoding(std::string_view body) {
    std::string out;
    constexpr std::size_t piece = 16000;
    for (std::size_t at = 0; at < body.size(); at += piece) {
        auto chunk = body.substr(at, piece);
        char size_line[32];
        std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
        out += size_line;
        out += chunk;
        out += "\r\n";
    }
    out += "0\r\n\r\n";
    return out;
}

std::vector<std::string> targets_of(const std::vector<strict_request>& requests) {
    std::vector<std::string> out;
    for (const auto& r : requests) {
        out.push_back(r.target);
    }
    return out;
}

}  // namespace

class PooledConnectionRetry : public framing_suite,
                              public ::testing::WithParamInterface<retry_row> {};

TEST_P(PooledConnectionRetry, OnlyABodyWithinItsCaptureIsReplayedOnAFreshConnection) {
    const auto& row = GetParam();
    raw_upstream up;
    drop_reused_connections(up);
    std::vector<std::string> args = {"--no-http-upgrader"};
    if (row.dir_logger) {
        auto more = env().kind_args(proxy_kind::dir_logger, env().fresh_dir("logs-retry"));
        args.insert(args.end(), more.begin(), more.end());
    } else {
        args.push_back("simple");
    }
    auto proxy = env().start_proxy(args);
    proxied_connection c(proxy->host(), proxy->port(),
                         "http://127.0.0.1:" + std::to_string(up.port()), env().proxy_ca(),
                         std::chrono::seconds(60));

    // A first exchange leaves its upstream connection in the pool (--threads 1: one pool).
    c.send(make_head("GET", c.target("/warm"), c.host_header()));
    const raw_response warm = c.read_final_response();
    ASSERT_EQ(warm.status, 200u) << warm.body;
    ASSERT_EQ(warm.body, "GET /warm 0");
    ASSERT_TRUE(warm.keep_alive());

    // The request under test reuses it; the upstream reads it whole and closes.
    const std::string body = retry_body(row.size());
    ASSERT_EQ(body.size(), row.bound + row.delta);
    const std::string path = "/drop?id=" + unique_id("drop");
    if (row.chunked) {
        c.send(
            make_head("POST", c.target(path), c.host_header(), {{"Transfer-Encoding", "chunked"}}) +
            chunked_encoding(body));
    } else {
        c.send(make_head("POST", c.target(path), c.host_header(),
                         {{"Content-Length", std::to_string(body.size())}}) +
               body);
    }
    const raw_response r = c.read_final_response();
    const auto conns = up.connections();
    ASSERT_GE(conns.size(), 1u);
    // The pooled connection got the warm-up and then the whole request before it closed.
    ASSERT_EQ(targets_of(conns[0].requests), (std::vector<std::string>{"/warm", path}));
    EXPECT_TRUE(conns[0].requests[1].body == body)
        << "the dead connection got " << conns[0].requests[1].body.size() << " body bytes, not the "
        << body.size() << " sent";
    EXPECT_TRUE(conns[0].closed_here);
    EXPECT_EQ(conns[0].pending.size(), 0u) << "bytes after the request on the dead connection";
    if (row.retried()) {
        // Replayed once on a new connection, whose answer reaches the client.
        EXPECT_EQ(r.status, 200u) << r.body.substr(0, 500);
        EXPECT_EQ(r.header("X-Echo-Target").value_or(""), path);
        EXPECT_EQ(r.body, "POST " + path + " " + std::to_string(body.size()));
        EXPECT_FALSE(r.header("X-Llm_proxy-Error").has_value());
        ASSERT_EQ(conns.size(), 2u) << "the request was not retried on one fresh connection";
        ASSERT_EQ(targets_of(conns[1].requests), std::vector<std::string>{path});
        EXPECT_TRUE(conns[1].requests[0].body == body)
            << "the retry carried " << conns[1].requests[0].body.size() << " body bytes, not the "
            << body.size() << " sent";
    } else {
        // Not replayable: 502 upstream_reset (architecture.md, Errors), no second connection.
        EXPECT_EQ(r.status, 502u) << r.body.substr(0, 500);
        EXPECT_EQ(r.header("X-Llm_proxy-Error").value_or(""), "upstream_reset");
        EXPECT_EQ(r.header("Content-Type").value_or(""), "application/json");
        auto j = nlohmann::json::parse(r.body, nullptr, false);
        ASSERT_TRUE(j.is_object()) << r.body;
        EXPECT_EQ(j["error"].value("code", ""), "upstream_reset") << r.body;
        EXPECT_EQ(j["error"].value("type", ""), "llm_proxy_error") << r.body;
        EXPECT_EQ(conns.size(), 1u) << "a request longer than its capture was sent again";
    }
    // The whole request body was read: the client connection stays open and serves the next
    // request (on a live upstream connection).
    EXPECT_TRUE(r.keep_alive());
    const std::string next = "/after?id=" + unique_id("after");
    c.send(make_head("GET", c.target(next), c.host_header()));
    const raw_response after = c.read_final_response();
    EXPECT_EQ(after.status, 200u) << after.body;
    EXPECT_EQ(after.body, "GET " + next + " 0");
    // Nothing more reached the upstream: the request under test went out once, or twice when
    // retried, and the dead connection saw nothing after it.
    std::size_t sent = 0;
    for (const auto& conn : up.connections()) {
        sent += static_cast<std::size_t>(
            std::count_if(conn.requests.begin(), conn.requests.end(),
                          [&](const strict_request& q) { return q.target == path; }));
    }
    EXPECT_EQ(sent, row.retried() ? 2u : 1u);
}

INSTANTIATE_TEST_SUITE_P(Bounds, PooledConnectionRetry, ::testing::ValuesIn(retry_rows()),
                         [](const ::testing::TestParamInfo<retry_row>& info) {
                             return retry_row_name(info.param);
                         });

}  // namespace llm_proxy::test

// Pooled upstream connections stay in sync. After a chunked upload whose head reached the proxy
// before its body, and after an upstream response followed by bytes it never announced, every
// later request on the same and on other client connections gets its own answer, and the
// upstream sees exactly the requests the clients sent. The proxies run with --threads 1: one
// pool, so a connection left out of sync would be handed to the next request.
#include <algorithm>
#include <optional>
#include <vector>

#include "framing_fixture.hpp"

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

}  // namespace llm_proxy::test

// A client that breaks off its upload (a Content-Length body stopped halfway, a chunked body
// stopped in the middle of a chunk) and closes: the upstream never gets a completed request
// (it sees the body end early), the dir_logger record says client_aborted, and the proxy goes
// on serving.
#include <algorithm>
#include <vector>

#include "framing_fixture.hpp"

namespace llm_proxy::test {

namespace {

enum class abort_kind { content_length_half, chunked_mid_chunk };

struct abort_row {
    bool https;
    abort_kind kind;
    send_timing timing;
};

std::string row_name(const abort_row& r) {
    return std::string(r.https ? "https_" : "http_") +
           (r.kind == abort_kind::content_length_half ? "lengthHalfway" : "chunkedMidChunk") +
           (r.timing == send_timing::together ? "_oneWrite" : "_headFirst");
}

// Test names and failure messages show the row by its name.
void PrintTo(const abort_row& r, std::ostream* os) {
    *os << row_name(r);
}

std::vector<abort_row> rows() {
    std::vector<abort_row> out;
    for (bool https : {true, false}) {
        for (auto kind : {abort_kind::content_length_half, abort_kind::chunked_mid_chunk}) {
            for (auto timing : {send_timing::together, send_timing::head_first}) {
                out.push_back({https, kind, timing});
            }
        }
    }
    return out;
}

}  // namespace

class ClientAbort : public framing_suite, public ::testing::WithParamInterface<abort_row> {};

TEST_P(ClientAbort, UpstreamNeverGetsACompletedRequest) {
    const auto& row = GetParam();
    const auto log_dir = env().fresh_dir("abort-logs");
    auto proxy = env().start_proxy(env().kind_args(proxy_kind::dir_logger, log_dir));
    auto& up = env().upstream();
    up.reset_stats();
    const char* origin = row.https ? "https://api.openai.com" : "http://api.openai.com";
    auto c = connect(*proxy, origin);
    const std::string path = "/sink?id=" + unique_id("abort");

    std::string head;
    std::string partial;
    const std::uint64_t seed = next_seed();
    if (row.kind == abort_kind::content_length_half) {
        head = make_head("POST", c.target(path), c.host_header(),
                         {{"Content-Length", std::to_string(1024 * 1024)}});
        partial = make_body(512 * 1024, seed);
    } else {
        head =
            make_head("POST", c.target(path), c.host_header(), {{"Transfer-Encoding", "chunked"}});
        const std::string data = make_body(16 * 1024 + 8 * 1024, seed);
        // One whole 16 KiB chunk, then the size line of another and half of its data.
        partial = encode_chunk(std::string_view(data).substr(0, 16 * 1024)) + "4000\r\n" +
                  data.substr(16 * 1024);
    }
    if (row.timing == send_timing::together) {
        c.send(head + partial);
    } else {
        c.send(head);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        c.send(partial);
    }
    // The request has reached the upstream before the client goes away.
    const std::string request_line = "POST " + path;
    auto stats = wait_stats(up, [&](const nlohmann::json& s) {
        auto seen = sorted_requests_seen(s);
        return std::find(seen.begin(), seen.end(), request_line) != seen.end();
    });
    auto seen = sorted_requests_seen(stats);
    EXPECT_NE(std::find(seen.begin(), seen.end(), request_line), seen.end())
        << "the upstream never saw the request head";
    c.close();  // abrupt: no more body, no TLS close_notify

    stats = wait_stats(
        up, [](const nlohmann::json& s) { return s.value("incomplete_bodies", 0) >= 1; });
    EXPECT_GE(stats.value("incomplete_bodies", 0), 1)
        << "the upstream did not see the body end early";
    EXPECT_EQ(stats["by_path"].value("/sink", 0), 0)
        << "the upstream got a completed request although the client never finished it";
    EXPECT_EQ(stats.value("bad_requests", -1), 0)
        << "the upstream failed to parse what the proxy sent: "
        << stats.value("last_bad_request", "");

    auto records = read_records(log_dir, 1, std::chrono::seconds(30));
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["request"].value("url", ""), "https://api.openai.com" + path);
    ASSERT_TRUE(records[0].contains("error")) << records[0].dump(2);
    EXPECT_EQ(records[0]["error"].value("kind", ""), "client_aborted") << records[0].dump(2);

    // The proxy goes on serving.
    auto d = connect(*proxy, origin);
    expect_own_echo(d, unique_id("after-abort"));
}

INSTANTIATE_TEST_SUITE_P(Kinds, ClientAbort, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<abort_row>& info) {
                             return row_name(info.param);
                         });

}  // namespace llm_proxy::test

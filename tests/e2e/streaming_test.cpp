// Streaming: SSE events relayed as they arrive, large bodies intact with bounded memory,
// client disconnects cancel the upstream request.
#include <atomic>
#include <thread>

#include "e2e_fixture.hpp"
#include "support/fake_upstream/pattern.hpp"

namespace llm_proxy::test {

class Streaming : public e2e_test {};

namespace {
const std::string stream_request =
    R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]})";

std::int64_t sent_at_us(const sse_event& e) {
    return nlohmann::json::parse(e.data)["sent_at_us"].get<std::int64_t>();
}
std::int64_t received_us(const sse_event& e) {
    return std::chrono::duration_cast<std::chrono::microseconds>(e.received.time_since_epoch())
        .count();
}
}  // namespace

TEST_F(Streaming, SseEventsArriveAsTheyAreSent) {
    start_dir_logger();
    for (const char* url : {"https://api.openai.com/v1/chat/completions",
                            "http://api.openai.com/v1/chat/completions"}) {
        auto client = proxied_client();
        auto result = read_sse_stream(client, url,
                                      {{"Content-Type", "application/json"},
                                       {"X-Fake-Events", "6"},
                                       {"X-Fake-Interval-Ms", "150"}},
                                      stream_request);
        ASSERT_EQ(result.status, 200u) << url;
        ASSERT_EQ(result.events.size(), 7u) << url;  // 6 chunks + [DONE]
        EXPECT_EQ(result.events.back().data, "[DONE]");
        for (std::size_t i = 0; i + 2 < result.events.size(); ++i) {
            // Each event reaches the client before the upstream even wrote the next one (150 ms
            // later): nothing is buffered. An ordering, not a latency bound, so a loaded
            // machine cannot break it.
            EXPECT_LT(received_us(result.events[i]), sent_at_us(result.events[i + 1]))
                << url << " event " << i;
            EXPECT_GE(received_us(result.events[i]) + 5000, sent_at_us(result.events[i]))
                << url << " event " << i;
        }
        auto spread_ms = (received_us(result.events[5]) - received_us(result.events[0])) / 1000.0;
        EXPECT_GT(spread_ms, 600.0) << url;  // 5 intervals of 150 ms, not one burst
    }
    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    for (auto& rec : records) {
        auto body = rec["response"]["body"].get<std::string>();
        EXPECT_NE(body.find("tok5"), std::string::npos);
        EXPECT_NE(body.find("data: [DONE]"), std::string::npos);
    }
}

TEST_F(Streaming, LargeDownloadIsIntactAndMemoryStaysBounded) {
    start_dir_logger();
#ifdef LLM_PROXY_SANITIZED
    // Instrumented code is ~20x slower, and ASan's allocator quarantine makes RSS meaningless:
    // the sanitizer build checks integrity on a smaller body; the release build checks memory.
    constexpr std::uint64_t size = 32ull * 1024 * 1024;
    constexpr bool check_rss = false;
#else
    constexpr std::uint64_t size = 512ull * 1024 * 1024;
    constexpr bool check_rss = true;
#endif
    long rss_before = proxy_->rss_kib();
    for (const char* chunked : {"0", "1"}) {
        auto client = proxied_client(std::chrono::seconds(60));
        std::uint64_t offset = 0;
        std::uint64_t mismatches = 0;
        long peak_rss = 0;
        bool done = client.stream(
            "GET",
            "https://api.openai.com/download?bytes=" + std::to_string(size) + "&chunked=" + chunked,
            {}, {}, [](unsigned status, const header_list&) { ASSERT_EQ(status, 200u); },
            [&](std::string_view chunk) {
                if (pattern_mismatch(chunk.data(), chunk.size(), offset) != chunk.size()) {
                    ++mismatches;
                }
                offset += chunk.size();
                if ((offset & ((64 << 20) - 1)) < chunk.size()) {
                    peak_rss = std::max(peak_rss, proxy_->rss_kib());
                }
                return true;
            });
        EXPECT_TRUE(done);
        EXPECT_EQ(offset, size);
        EXPECT_EQ(mismatches, 0u);
        // Half a GiB went through; the proxy grew by far less (the log keeps only a capped
        // prefix of the body).
        if (check_rss) {
            EXPECT_GT(peak_rss, 0);
            EXPECT_LT(peak_rss - rss_before, 48 * 1024) << "chunked=" << chunked;
        }
    }
    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0]["response"]["body_truncated"], true);
    EXPECT_EQ(records[0]["response"]["body_size"], size);
}

TEST_F(Streaming, LargeUploadIsRelayedIntact) {
    start_proxy({"simple"});
    std::string body(12 * 1024 * 1024, '\0');
    fill_pattern(body.data(), body.size(), 0);
    for (auto& c : body) {
        c = static_cast<char>('a' + (static_cast<unsigned char>(c) % 26));  // JSON-safe text
    }
    auto client = proxied_client(std::chrono::seconds(60));
    auto res = client.post("https://api.openai.com/echo", body, {{"Content-Type", "text/plain"}});
    ASSERT_EQ(res.status, 200u);
    auto echo = nlohmann::json::parse(res.body);
    EXPECT_EQ(echo["body_length"], body.size());
    EXPECT_TRUE(echo["body"].get<std::string>() == body);
}

TEST_F(Streaming, ClientDisconnectCancelsTheUpstreamRequest) {
    start_proxy({"simple"});
    auto client = proxied_client();
    int chunks = 0;
    bool completed = client.stream(
        "GET", "https://api.openai.com/sse-forever?interval_ms=50", {}, {},
        [](unsigned, const header_list&) {}, [&](std::string_view) { return ++chunks < 3; });
    EXPECT_FALSE(completed);
    // The proxy notices at its next write and closes the upstream connection.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (upstream_->stats()["sse_client_gone"] == 0 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(upstream_->stats()["sse_client_gone"], 1);
}

TEST_F(Streaming, CurlStreamsWithNoBuffering) {
    start_dir_logger();
    // curl -N prints each event as it arrives; the proxy must not hold them back.
    auto start = std::chrono::steady_clock::now();
    auto r =
        curl({"-N", "--cacert", proxy_ca_cert().string(), "-H", "Content-Type: application/json",
              "-H", "X-Fake-Events: 3", "-H", "X-Fake-Interval-Ms: 100", "-d", stream_request,
              "https://api.openai.com/v1/chat/completions"});
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("tok2"), std::string::npos);
    EXPECT_NE(r.out.find("data: [DONE]"), std::string::npos);
    EXPECT_GT(elapsed, std::chrono::milliseconds(200));
}

}  // namespace llm_proxy::test

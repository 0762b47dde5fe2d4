// A 512 MiB chunked upload streams through the proxy: it reaches the upstream intact and the
// proxy's peak memory stays far below the body size (it never buffers the body).
#include "framing_fixture.hpp"

namespace llm_proxy::test {

class LargeUpload : public framing_suite {};

TEST_F(LargeUpload, HalfAGibibyteChunkedUploadStreamsInFlatMemory) {
#ifdef LLM_PROXY_SANITIZED
    // Instrumented code is ~20x slower and ASan's quarantine makes RSS meaningless: the
    // sanitizer build checks integrity on a smaller body; the release build checks memory.
    constexpr std::uint64_t size = 32ull * 1024 * 1024;
    constexpr bool check_memory = false;
#else
    constexpr std::uint64_t size = 512ull * 1024 * 1024;
    constexpr bool check_memory = true;
#endif
    constexpr long peak_limit_kib = 200 * 1024;
    // A proxy of its own, so its peak resident set is this upload's.
    auto proxy = env().start_proxy({"simple"});
    auto c = connect(*proxy, "https://api.openai.com", std::chrono::seconds(60));
    upload_spec spec;
    spec.size = size;
    spec.seed = next_seed();
    spec.framing = body_framing::chunked;
    spec.chunk_size = 64 * 1024;
    spec.write_size = 256 * 1024;
    const std::string path = "/sink?id=" + unique_id("large");
    const auto out = upload(c, spec, send_timing::head_first, false, path);
    expect_sink_received(out, path);
    const long peak = proxy->peak_rss_kib();
    ASSERT_GT(peak, 0);
    RecordProperty("proxy_peak_rss_kib", std::to_string(peak));
    if (check_memory) {
        EXPECT_LT(peak, peak_limit_kib)
            << "peak RSS " << peak / 1024 << " MiB for a " << size / (1024 * 1024) << " MiB upload";
    }
    ASSERT_TRUE(out.response.keep_alive());
    expect_own_echo(c, unique_id("after-large"));
}

}  // namespace llm_proxy::test

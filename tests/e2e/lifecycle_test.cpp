// Start-up and shutdown: signals drain in-flight flows, logs are flushed, exit code 0.
#include <csignal>
#include <future>

#include "e2e_fixture.hpp"

namespace llm_proxy::test {

class Lifecycle : public e2e_test {};

TEST_F(Lifecycle, SigtermLetsInFlightRequestsFinishAndFlushesLogs) {
    start_dir_logger();
    auto pending = std::async(std::launch::async, [this] {
        auto client = proxied_client();
        return client.get("https://api.openai.com/slow?ms=1500");
    });
    // Let the request get in flight (the upstream holds it for 1.5 s), then ask the proxy to stop.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto code = proxy_->stop(SIGTERM, std::chrono::seconds(15));
    auto r = pending.get();
    EXPECT_EQ(r.status, 200u);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0);
    auto records = wait_for_records(1, std::chrono::milliseconds(100));
    ASSERT_EQ(records.size(), 1u);  // written before exit
    EXPECT_EQ(records[0]["response"]["status"], 200);
}

TEST_F(Lifecycle, SigintWithIdleKeepAliveConnectionsExitsPromptly) {
    start_proxy({"simple"});
    auto client = proxied_client();
    ASSERT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
    // The client keeps its connection open; shutdown must not wait for it.
    auto start = std::chrono::steady_clock::now();
    auto code = proxy_->stop(SIGINT, std::chrono::seconds(10));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(Lifecycle, ListenAddressInUseIsAClearError) {
    start_proxy({"simple"});
    auto all = base_args();
    all.insert(all.begin(), LLM_PROXY_BINARY);
    all.insert(all.end(), {"--listen", "127.0.0.1:" + std::to_string(proxy_->port()), "simple"});
    auto r = run_command(all, std::chrono::seconds(20));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("cannot listen"), std::string::npos) << r.err;
}

}  // namespace llm_proxy::test

// The web view in a real browser: tests/e2e/web/browser_check.js drives Debian's headless
// chromium with puppeteer-core (both from .ci/install-deps) against the real binary. Skipped,
// naming what is missing, without them. Screenshots go to $LLM_PROXY_WEB_SCREENSHOTS (e.g.
// docs/images) when set, else to the test's temporary directory.

#include <unistd.h>

#include <cstdlib>

#include "e2e_fixture.hpp"
#include "support/node_sdk.hpp"
#include "support/web_kit.hpp"

namespace llm_proxy::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class WebBrowser : public e2e_test {};

TEST_F(WebBrowser, PageShowsLiveFlowsConversationsAndNeverRecordMarkup) {
    const char* chromium = std::getenv("CHROMIUM") ? std::getenv("CHROMIUM") : "/usr/bin/chromium";
    if (::access(chromium, X_OK) != 0) {
        GTEST_SKIP() << "chromium is not installed (" << chromium << "): run .ci/install-deps";
    }
    if (auto missing = missing_node_packages({"puppeteer-core", "https-proxy-agent"});
        !missing.empty()) {
        GTEST_SKIP() << missing;
    }
    start_proxy({"simple", "--web", "127.0.0.1:0"});
    auto port = wait_for_web_port(proxy_->process());
    ASSERT_NE(port, 0) << proxy_->stderr_text();
    fs::path shots = std::getenv("LLM_PROXY_WEB_SCREENSHOTS")
                         ? std::getenv("LLM_PROXY_WEB_SCREENSHOTS")
                         : (work_ / "shots").string();
    fs::create_directories(shots);
    auto script = fs::path(TEST_SUPPORT_DIR) / ".." / "e2e" / "web" / "browser_check.js";
    auto r = run_node_script(
        script, {web_url(port, "/"), proxy_->url(), shots.string()},
        {{"NODE_EXTRA_CA_CERTS", proxy_ca_cert().string()}, {"CHROMIUM", chromium}}, 120s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\nproxy:\n" << proxy_->stderr_text();
    EXPECT_NE(r.out.find("OK"), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(shots / "web-flows.png"));
    EXPECT_TRUE(fs::exists(shots / "web-conversation.png"));
}

}  // namespace llm_proxy::test

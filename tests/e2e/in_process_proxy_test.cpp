// The in-process proxy of the addon API tests: several in one process, one after the other and
// at the same time, each stopping promptly and leaving the process's signal handling as it was.

#include <csignal>

#include "addon_api_fixture.hpp"

namespace llm_proxy::test {
namespace {

// The handler installed for `sig` (SIG_DFL, SIG_IGN or a function).
void (*disposition(int sig))(int) {
    struct sigaction current {};
    ::sigaction(sig, nullptr, &current);
    return current.sa_handler;
}

TEST_F(addon_api_test, InProcessProxiesRunInSequenceAndSideBySide) {
    const auto sigint = disposition(SIGINT);
    const auto sigterm = disposition(SIGTERM);
    for (int round = 0; round < 3; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        auto a = std::make_unique<in_process_proxy>(std::make_shared<addon_chain>(), pki(),
                                                    upstream().port());
        auto b = std::make_unique<in_process_proxy>(std::make_shared<addon_chain>(), pki(),
                                                    upstream().port(),
                                                    in_process_proxy_options{.threads = 1});
        EXPECT_NE(a->port(), b->port());
        for (auto* p : {a.get(), b.get()}) {
            auto client = p->make_client();
            auto r = client.get("https://api.openai.com/echo?round=" + std::to_string(round));
            EXPECT_EQ(r.status, 200u);
            EXPECT_TRUE(p->running());
        }
        // One stops while the other keeps serving, with a client connection still open.
        auto idle = b->make_client();
        EXPECT_EQ(idle.get("https://api.openai.com/echo?idle").status, 200u);
        const auto t0 = std::chrono::steady_clock::now();
        b.reset();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3))
            << "stopping a proxy with an idle client connection took too long";
        EXPECT_EQ(a->make_client().get("https://api.openai.com/echo?still").status, 200u);
        a->stop();
        EXPECT_FALSE(a->running());
        a.reset();
    }
    EXPECT_TRUE(disposition(SIGINT) == sigint) << "a stopped proxy left its SIGINT handler behind";
    EXPECT_TRUE(disposition(SIGTERM) == sigterm);
}

}  // namespace
}  // namespace llm_proxy::test

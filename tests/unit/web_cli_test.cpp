// --web and --web-token on the command line: a bad address, or a non-loopback one without a
// token, is refused with exit status 2 before anything starts.

#include <gtest/gtest.h>

#include "cli_run.hpp"

namespace llm_proxy::cli {
namespace {

TEST(WebCli, BadOrUnguardedAddressesAreRefused) {
    EXPECT_TRUE(test::exits_2_with({"simple", "--web", "nonsense:1"},
                                   "--web: 'nonsense' is not an IP address"));
    EXPECT_TRUE(test::exits_2_with({"simple", "--web", "127.0.0.1:99999"}, "--web: bad port"));
    EXPECT_TRUE(test::exits_2_with({"simple", "--web", "0.0.0.0:0"},
                                   "is not a loopback address: the view shows prompts"));
    EXPECT_TRUE(test::exits_2_with({"web", "/nonexistent-dir", "--web", "0.0.0.0:0"},
                                   "is not a loopback address"));
    EXPECT_TRUE(test::exits_2_with(
        {"web", "/nonexistent-dir", "--web", "0.0.0.0:0", "--proxy-auth", "nocolon"},
        "--proxy-auth: "));
}

}  // namespace
}  // namespace llm_proxy::cli

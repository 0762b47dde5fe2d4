#pragma once
// Runs the llm_proxy command line in the test process (cli::run_cli) and captures what it
// prints: for the tests of flags that must be refused with exit status 2 and a message.

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace llm_proxy::cli::test {

struct cli_outcome {
    int exit_code = -1;
    std::string out;  // standard output
    std::string err;  // standard error
};

// `llm_proxy args...`, run in this process; stdout and stderr are captured (file descriptors 1
// and 2, so std::cout, std::cerr and spdlog alike).
cli_outcome run_cli_captured(std::vector<std::string> args);

// Passes when `llm_proxy args...` exits with status 2 and its standard error contains
// `message`; the failure shows the status and everything it printed.
testing::AssertionResult exits_2_with(std::vector<std::string> args, std::string_view message);

}  // namespace llm_proxy::cli::test

#include "cli_run.hpp"

#include "cli/app.hpp"

namespace llm_proxy::cli::test {

cli_outcome run_cli_captured(std::vector<std::string> args) {
    args.insert(args.begin(), "llm_proxy");
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    cli_outcome r;
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    r.exit_code = run_cli(static_cast<int>(argv.size()), argv.data());
    r.err = testing::internal::GetCapturedStderr();
    r.out = testing::internal::GetCapturedStdout();
    return r;
}

testing::AssertionResult exits_2_with(std::vector<std::string> args, std::string_view message) {
    std::string line = "llm_proxy";
    for (const auto& a : args) {
        line += " " + a;
    }
    auto r = run_cli_captured(std::move(args));
    if (r.exit_code == 2 && r.err.find(message) != std::string::npos) {
        return testing::AssertionSuccess();
    }
    return testing::AssertionFailure()
           << "`" << line << "` exited with " << r.exit_code << " (expected 2 with \"" << message
           << "\" on stderr)\n--- stderr:\n"
           << r.err << "--- stdout:\n"
           << r.out;
}

}  // namespace llm_proxy::cli::test

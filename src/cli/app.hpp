#pragma once

namespace llm_proxy::cli {
// Parses the command line and runs the chosen subcommand. Returns the exit code:
// 0 success, 2 bad command line or configuration, 1 runtime failure.
int run_cli(int argc, char** argv);
}  // namespace llm_proxy::cli

#pragma once

namespace llm_proxy::cli {
// Parses the command line and runs the chosen subcommand. Returns the exit code:
// 0 success (including --help), 2 bad command line, bad configuration or a failed start.
int run_cli(int argc, char** argv);
}  // namespace llm_proxy::cli

#include <iostream>

#include "cli/options.hpp"

namespace llm_proxy::cli {

void add_version_command(CLI::App& app, cli_state& state) {
    auto* cmd =
        app.add_subcommand("version", "Print the version, build type, OpenSSL and Boost versions");
    cmd->callback([&state] {
        state.run = [] {
            std::cout << version_text() << "\n";
            return 0;
        };
    });
}

}  // namespace llm_proxy::cli

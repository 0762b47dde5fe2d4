#include "cli/options.hpp"

namespace llm_proxy::cli {

void add_simple_command(CLI::App& app, cli_state& state) {
    auto* cmd = app.add_subcommand("simple", "Proxy requests without logging the traffic");
    cmd->callback([&state] {
        state.run = [&state] { return run_proxy(state.global, [](addon_chain&) {}); };
    });
}

}  // namespace llm_proxy::cli

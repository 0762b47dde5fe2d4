#include "cli/dir_logger_options.hpp"
#include "cli/options.hpp"

namespace llm_proxy::cli {

void add_dir_logger_command(CLI::App& app, cli_state& state) {
    auto opts = std::make_shared<dir_logger_options>();
    opts->output = "/tmp/llm_proxy";
    auto* cmd = app.add_subcommand(
        "dir_logger",
        "Proxy requests and write each request/response pair as <output>/<flow-id>.json");
    add_dir_logger_options(cmd, *opts, "Directory to write logs");
    cmd->callback([&state, opts] {
        state.run = [&state, opts] {
            return run_proxy(state.global,
                             [opts](addon_chain& chain) { chain.add(make_dir_logger(*opts)); });
        };
    });
}

}  // namespace llm_proxy::cli

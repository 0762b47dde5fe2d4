#include "cli/subcommand.hpp"

namespace llm_proxy::cli {

namespace {
// The records themselves are added for every proxying subcommand with an output directory;
// dir_logger is the one that writes them by default.
const subcommand_registration dir_logger{[] {
    subcommand s;
    s.name = "dir_logger";
    s.description =
        "Proxy requests and write each request/response pair as <output>/<flow-id>.json";
    s.order = 20;
    s.setup = [](CLI::App&, dir_logger_options&) -> addon_factory { return [](addon_chain&) {}; };
    s.default_output = "/tmp/llm_proxy";
    s.output_help = "Directory to write logs";
    return s;
}()};
}  // namespace

}  // namespace llm_proxy::cli

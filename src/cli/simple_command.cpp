#include "cli/subcommand.hpp"

namespace llm_proxy::cli {

namespace {
const subcommand_registration simple{[] {
    subcommand s;
    s.name = "simple";
    s.description = "Proxy requests without logging the traffic (unless -o/--output is given)";
    s.order = 10;
    s.setup = [](CLI::App&, dir_logger_options&) -> addon_factory { return [](addon_chain&) {}; };
    return s;
}()};
}  // namespace

}  // namespace llm_proxy::cli

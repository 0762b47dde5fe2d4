#include <iostream>

#include "cli/subcommand.hpp"

namespace llm_proxy::cli {

namespace {
const subcommand_registration version{[] {
    subcommand s;
    s.name = "version";
    s.description = "Print the version, build type, OpenSSL and Boost versions";
    s.order = 90;
    s.run = [] {
        std::cout << version_text() << "\n";
        return 0;
    };
    return s;
}()};
}  // namespace

}  // namespace llm_proxy::cli

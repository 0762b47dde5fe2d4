#pragma once
// The OTLP exporter's settings from the command line and the standard OpenTelemetry variables
// (docs/observability.md lists them). Flags win over variables.

#include <functional>
#include <optional>
#include <string>

#include "cli/options.hpp"
#include "llm_proxy/otlp/exporter.hpp"

namespace llm_proxy::cli {

// Reads one environment variable (nullopt: unset). std::getenv in the binary; a map in tests.
using env_reader = std::function<std::optional<std::string>(const char*)>;
env_reader process_env();

// nullopt: no endpoint is set, nothing is exported. Throws std::invalid_argument with a
// message for the user (exit code 2).
std::optional<otlp::exporter_options> make_otlp_options(const global_options& g,
                                                        const env_reader& env);

}  // namespace llm_proxy::cli

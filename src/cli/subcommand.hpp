#pragma once
// One place to add a subcommand: a file src/cli/<name>_command.cpp describes it (name, help,
// its own options, the addons it adds) and registers it with a static `subcommand_registration`.
// app.cpp builds the command line from the registry. Every proxying subcommand also gets the
// record options (-o/--output DIR and the dir_logger flags): with an output directory set, each
// flow is written there as JSON.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "cli/dir_logger_options.hpp"
#include "cli/options.hpp"

namespace llm_proxy::cli {

struct subcommand {
    std::string name;
    std::vector<std::string> aliases;  // other names accepted on the command line
    std::string description;
    std::string footer;
    int order = 100;  // position in --help (smaller first)

    // A proxying subcommand: `setup` adds its options to `cmd` and returns what adds its addons
    // once the command line is parsed (the record options in `records` are known by then).
    std::function<addon_factory(CLI::App& cmd, dir_logger_options& records)> setup;
    std::string default_output;  // records written by default here ("": none)
    std::string output_help =
        "Also write each request/response pair as <output>/<flow-id>.json "
        "(default: no records)";

    // Any other subcommand: what it runs.
    std::function<int()> run;
    // Or, for one with options of its own: adds them to `cmd` and returns what it runs once
    // the command line is parsed (the global options are filled in by then).
    std::function<std::function<int()>(CLI::App& cmd, const global_options& global)> command;
};

// Called by the static registration object of each subcommand file.
struct subcommand_registration {
    explicit subcommand_registration(subcommand s);
};

// Every registered subcommand, in help order.
std::vector<const subcommand*> registered_subcommands();

}  // namespace llm_proxy::cli

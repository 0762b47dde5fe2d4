#include <iostream>
#include <stdexcept>

#include "cli/subcommand.hpp"
#include "llm_proxy/addons/api_auditor.hpp"

namespace llm_proxy::cli {

namespace {

struct auditor_options {
    std::string budget;
};

addon_factory setup_auditor(CLI::App& cmd, dir_logger_options&) {
    auto opts = std::make_shared<auditor_options>();
    cmd.add_option("--budget", opts->budget,
                   "USD this run may spend on LLM calls; once reached, further LLM requests get "
                   "429 and are not sent")
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
                auto m = llm::money::parse(v);
                return m && *m > llm::money{} ? "" : "must be a positive amount of USD";
            },
            "USD"));
    return [opts](addon_chain& chain) {
        std::shared_ptr<const addons::llm_observer> observer;
        for (const auto& a : chain.addons()) {
            if (auto o = std::dynamic_pointer_cast<const addons::llm_observer>(a)) {
                observer = o;
            }
        }
        if (!observer) {
            throw std::invalid_argument("apiAuditor reads LLM calls: it cannot run with --no-llm");
        }
        std::optional<llm::money> budget;
        if (!opts->budget.empty()) {
            budget = llm::money::parse(opts->budget);
        }
        chain.add(std::make_shared<addons::api_auditor>(observer, budget, std::cout));
    };
}

const subcommand_registration api_auditor{[] {
    subcommand s;
    s.name = "apiAuditor";
    s.aliases = {"audit"};
    s.description =
        "Proxy requests and print each LLM call's tokens and cost, with running "
        "totals and a summary at exit";
    s.footer =
        "Every LLM API call (OpenAI, Anthropic, Google and hosts given with --llm-host) is\n"
        "printed with its model, tokens and cost; Ctrl-C prints a table per model. With\n"
        "--budget, requests are answered 429 once the run's spend reaches it. See\n"
        "docs/usage-and-cost.md.";
    s.order = 25;
    s.setup = setup_auditor;
    return s;
}()};

}  // namespace

}  // namespace llm_proxy::cli

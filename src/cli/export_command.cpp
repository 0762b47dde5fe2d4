// llm_proxy export DIR... --format F -o OUT: recorded traffic as fine-tuning datasets, HAR and
// provider-neutral JSONL; llm_proxy export --check FILE --format F validates such a file.

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/prices_source.hpp"
#include "cli/subcommand.hpp"
#include "llm_proxy/export/check.hpp"
#include "llm_proxy/export/export_run.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::cli {

namespace {

namespace fs = std::filesystem;

struct export_cli {
    std::vector<std::string> inputs;
    std::string format;
    std::string output;
    std::string check;
    std::vector<std::string> hosts;
    std::string model;
    std::string status;
    std::string since;
    std::string until;
    std::vector<std::string> providers;
    bool dedupe = false;
    bool longest = false;
    std::optional<double> split;
    std::uint64_t seed = 0;
    bool progress = true;
};

int run_check(const export_cli& o, exporter::format f) {
    exporter::check_result r;
    try {
        r = exporter::check_file(expand_home(o.check), f);
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy export: " << e.what() << "\n";
        return 2;
    }
    for (const auto& p : r.problems) {
        std::cout << o.check << ":" << p.line << ": " << p.message << "\n";
    }
    if (r.problem_count > r.problems.size()) {
        std::cout << o.check << ": " << (r.problem_count - r.problems.size())
                  << " more problems not shown\n";
    }
    const char* unit = f == exporter::format::har ? "entries" : "lines";
    if (r.problem_count == 0) {
        std::cout << o.check << ": " << r.items << " " << unit << ", no problems ("
                  << exporter::to_string(f) << ")\n";
        return 0;
    }
    std::cout << o.check << ": " << r.problem_count << " problem"
              << (r.problem_count == 1 ? "" : "s") << " in " << r.items << " " << unit << " ("
              << exporter::to_string(f) << ")\n";
    return 1;
}

// The options of an export, or std::invalid_argument with what is wrong.
exporter::export_options make_options(const export_cli& o, exporter::format f,
                                      const global_options& g, const llm::host_map& hosts,
                                      const loaded_prices& prices) {
    exporter::export_options x;
    x.format = f;
    if (o.inputs.empty()) {
        throw std::invalid_argument("give record directories or files to export (or --check FILE)");
    }
    for (const auto& in : o.inputs) {
        auto p = expand_home(in);
        std::error_code ec;
        if (!fs::is_directory(p, ec) && !fs::is_regular_file(p, ec)) {
            throw std::invalid_argument(in + ": no such file or directory");
        }
        x.inputs.push_back(p);
    }
    if (o.output.empty()) {
        throw std::invalid_argument("-o/--output FILE is required (- for standard output)");
    }
    x.output = o.output == "-" ? fs::path("-") : expand_home(o.output);
    if (x.output != "-") {
        auto dir = x.output.parent_path();
        std::error_code ec;
        if (!dir.empty() && !fs::is_directory(dir, ec)) {
            throw std::invalid_argument("-o " + o.output + ": no such directory " + dir.string());
        }
        if (fs::is_directory(x.output, ec)) {
            throw std::invalid_argument("-o " + o.output + " is a directory: give a file name");
        }
    }
    bool dataset = f == exporter::format::openai_chat || f == exporter::format::anthropic;
    if (!dataset && (o.dedupe || o.longest || o.split)) {
        throw std::invalid_argument(std::string("--dedupe, --longest and --split clean "
                                                "fine-tuning datasets: not with --format ") +
                                    exporter::to_string(f));
    }
    if (o.split) {
        if (!(*o.split > 0 && *o.split < 1)) {
            throw std::invalid_argument("--split " + std::to_string(*o.split) +
                                        ": the training fraction must be between 0 and 1");
        }
        if (x.output == "-") {
            throw std::invalid_argument("--split writes two files: -o needs a file name");
        }
    }
    x.dedupe = o.dedupe;
    x.longest = o.longest;
    x.split = o.split;
    x.seed = o.seed;
    auto& s = x.selection;
    s.llm_only = f != exporter::format::har;
    for (const auto& h : o.hosts) {
        s.hosts.push_back(to_lower(h));
    }
    if (!o.model.empty()) {
        try {
            s.model = std::regex(o.model, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
            throw std::invalid_argument("--model '" + o.model + "': not a regular expression (" +
                                        e.what() + ")");
        }
    }
    for (const auto& p : o.providers) {
        s.providers.push_back(*llm::provider_from_string(p));  // checked by CLI11
    }
    s.since = llm::parse_time_bound(o.since, "--since");
    s.until = llm::parse_time_bound(o.until, "--until");
    // A HAR shows every flow unless asked otherwise; a dataset only calls that answered.
    s.status = exporter::status_filter::parse(
        o.status.empty() ? (f == exporter::format::har ? "all" : "ok") : o.status);
    x.read.prices = prices.table.get();
    x.read.hosts = &hosts;
    (void)g;
    return x;
}

int run_export_command(const export_cli& o, const global_options& g) {
    auto f = exporter::format_from_string(o.format);
    if (!f) {
        std::cerr << "llm_proxy export: --format is required: openai-chat, anthropic, har or "
                     "jsonl\n";
        return 2;
    }
    if (!o.check.empty()) {
        if (!o.inputs.empty() || !o.output.empty()) {
            std::cerr << "llm_proxy export: --check FILE validates a file: no record inputs "
                         "or -o with it\n";
            return 2;
        }
        return run_check(o, *f);
    }
    llm::host_map hosts;
    loaded_prices prices;
    exporter::export_options x;
    try {
        for (const auto& spec : g.llm_hosts) {
            if (auto problem = llm::parse_host_mapping(spec, hosts)) {
                throw std::invalid_argument("--llm-host '" + spec + "': " + *problem);
            }
        }
        prices = load_prices(g.prices_file);
        x = make_options(o, *f, g, hosts, prices);
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy export: " << e.what() << "\n";
        return 2;
    }
    x.progress = o.progress && ::isatty(STDERR_FILENO) == 1;
    try {
        auto summary = exporter::run_export(x);
        std::cerr << summary.text();
    } catch (const std::invalid_argument& e) {
        std::cerr << "llm_proxy export: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy export: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

const subcommand_registration export_registration{[] {
    subcommand s;
    s.name = "export";
    s.description = "Recorded traffic as fine-tuning datasets, HAR or provider-neutral JSONL";
    s.footer =
        "Formats: openai-chat (OpenAI chat fine-tuning JSONL), anthropic (Bedrock Claude\n"
        "fine-tuning JSONL), har (HAR 1.2), jsonl (one provider-neutral line per LLM call).\n"
        "Reads records one at a time (also records without an llm object and those of the\n"
        "original Go tool). By default a dataset takes only successful, complete answers and a\n"
        "HAR every flow. --since is inclusive, --until exclusive. What cannot be mapped into\n"
        "the format is skipped and counted in the summary on standard error.\n"
        "  llm_proxy export ~/llm_logs --format openai-chat -o train.jsonl --dedupe --longest\n"
        "  llm_proxy export --check train.jsonl --format openai-chat\n"
        "See docs/export.md.";
    s.order = 45;
    s.command = [](CLI::App& cmd, const global_options& g) -> std::function<int()> {
        auto o = std::make_shared<export_cli>();
        cmd.add_option("inputs", o->inputs, "Record directories or files");
        cmd.add_option("--format", o->format, "openai-chat, anthropic, har or jsonl")
            ->check(CLI::IsMember({"openai-chat", "anthropic", "har", "jsonl"}));
        cmd.add_option("-o,--output", o->output,
                       "The file to write (- for standard output); with --split, the name the "
                       "train and validation files are made from");
        cmd.add_option("--check", o->check,
                       "Validate FILE against the rules of --format instead of exporting; "
                       "exit 1 when it has problems");
        cmd.add_option("--host", o->hosts,
                       "Only flows to this host (host or host:port; repeatable)")
            ->allow_extra_args(false);
        cmd.add_option("--model", o->model,
                       "Only calls whose request or response model matches this regular "
                       "expression");
        cmd.add_option("--provider", o->providers,
                       "Only calls to openai, anthropic or google "
                       "(repeatable)")
            ->check(CLI::IsMember({"openai", "anthropic", "google"}))
            ->allow_extra_args(false);
        cmd.add_option("--status", o->status,
                       "ok (a 2xx, complete answer; default for datasets), all (default for "
                       "har), or codes and classes such as 200,429,5xx");
        cmd.add_option("--since", o->since, "Only flows that started at or after this time");
        cmd.add_option("--until", o->until, "Only flows that started before this time");
        cmd.add_flag("--dedupe", o->dedupe, "Write identical examples once");
        cmd.add_flag("--longest", o->longest,
                     "Of the requests of one conversation, keep only the longest (a request "
                     "whose messages a later one extends is dropped)");
        cmd.add_option("--split", o->split,
                       "Write FRACTION of the examples to OUT.train.jsonl, the rest to "
                       "OUT.validation.jsonl (e.g. 0.9)");
        cmd.add_option("--seed", o->seed, "Seed of --split (the same seed, the same split)")
            ->capture_default_str();
        cmd.add_flag("!--no-progress", o->progress, "No progress bar on a terminal");
        return [o, &g] { return run_export_command(*o, g); };
    };
    return s;
}()};

}  // namespace

}  // namespace llm_proxy::cli

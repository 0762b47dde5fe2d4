// llm_proxy report DIR...: requests, tokens, cost, errors and latency of recorded traffic.

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/prices_source.hpp"
#include "cli/subcommand.hpp"
#include "llm_proxy/llm/report.hpp"

namespace llm_proxy::cli {

namespace {

namespace fs = std::filesystem;

struct report_options {
    std::vector<std::string> inputs;
    std::string by = "model";
    std::string format = "table";
    std::string since;
    std::string until;
    bool progress = true;
};

// Every *.json file and *.jsonl segment under the inputs (directories are walked; hidden files
// skipped).
std::vector<fs::path> record_files(const std::vector<std::string>& inputs) {
    std::vector<fs::path> out;
    for (const auto& in : inputs) {
        auto path = expand_home(in);
        std::error_code ec;
        if (fs::is_directory(path, ec)) {
            for (auto it = fs::recursive_directory_iterator(
                     path, fs::directory_options::skip_permission_denied, ec);
                 !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
                const auto& p = it->path();
                if (it->is_regular_file(ec) &&
                    (p.extension() == ".json" || p.extension() == ".jsonl") &&
                    !p.filename().string().starts_with(".")) {
                    out.push_back(p);
                }
            }
            std::sort(out.begin(), out.end());
        } else if (fs::is_regular_file(path, ec)) {
            out.push_back(path);
        } else {
            throw std::invalid_argument(in + ": no such file or directory");
        }
    }
    return out;
}

int run_report(const report_options& o, const global_options& g) {
    llm::group_by by = o.by == "provider" ? llm::group_by::provider
                       : o.by == "host"   ? llm::group_by::host
                       : o.by == "day"    ? llm::group_by::day
                       : o.by == "status" ? llm::group_by::status
                                          : llm::group_by::model;
    std::vector<fs::path> files;
    std::optional<std::chrono::system_clock::time_point> since, until;
    llm::host_map hosts;
    loaded_prices prices;
    try {
        since = llm::parse_time_bound(o.since, "--since");
        until = llm::parse_time_bound(o.until, "--until");
        for (const auto& spec : g.llm_hosts) {
            if (auto problem = llm::parse_host_mapping(spec, hosts)) {
                throw std::invalid_argument("--llm-host '" + spec + "': " + *problem);
            }
        }
        prices = load_prices(g.prices_file);
        files = record_files(o.inputs);
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy report: " << e.what() << "\n";
        return 2;
    }
    llm::read_options ro;
    ro.prices = prices.table.get();
    ro.hosts = &hosts;
    llm::report rep(by);
    bool bar = o.progress && ::isatty(STDERR_FILENO) == 1;
    std::uint64_t skipped = 0;
    std::string text;
    for (std::size_t i = 0; i < files.size(); ++i) {
        if (bar && (i % 500 == 0 || i + 1 == files.size())) {
            std::fprintf(stderr, "\rreading records %zu/%zu (%zu%%)", i + 1, files.size(),
                         (i + 1) * 100 / files.size());
        }
        auto add = [&](const std::string& text) {
            auto j = nlohmann::json::parse(text, nullptr, false);
            auto row = j.is_discarded() ? std::nullopt : llm::read_record(j, ro);
            if (!row) {
                ++skipped;
                return;
            }
            if ((since && row->time < *since) || (until && row->time >= *until)) {
                return;
            }
            rep.add(*row);
        };
        if (files[i].extension() == ".jsonl") {
            llm::for_each_segment_line(files[i],
                                       [&](const std::string& line, std::uint64_t) { add(line); });
            continue;
        }
        std::ifstream in(files[i], std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        add(ss.str());
    }
    if (bar) {
        std::fprintf(stderr, "\r\033[K");
    }
    if (skipped > 0) {
        std::cerr << "llm_proxy report: skipped " << skipped
                  << " files that are not llm_proxy records\n";
    }
    std::cout << (o.format == "json" ? rep.json() : o.format == "csv" ? rep.csv() : rep.table());
    return 0;
}

const subcommand_registration report{[] {
    subcommand s;
    s.name = "report";
    s.description = "Requests, tokens, cost, errors and latency of recorded traffic";
    s.footer =
        "Reads the records of dir_logger (and any proxying subcommand's --output), also those\n"
        "written before records had an llm object and by the original Go tool: their calls\n"
        "are reassembled from the bodies and priced. --since is inclusive, --until exclusive\n"
        "(a bare date means 00:00 UTC). See docs/usage-and-cost.md.";
    s.order = 40;
    s.command = [](CLI::App& cmd, const global_options& g) -> std::function<int()> {
        auto o = std::make_shared<report_options>();
        cmd.add_option("dirs", o->inputs, "Record directories or files")->required();
        cmd.add_option("--by", o->by, "Group by model, provider, host, day or status")
            ->check(CLI::IsMember({"model", "provider", "host", "day", "status"}))
            ->capture_default_str();
        cmd.add_option("--format", o->format, "table, json or csv")
            ->check(CLI::IsMember({"table", "json", "csv"}))
            ->capture_default_str();
        cmd.add_option("--since", o->since, "Only flows that started at or after this time");
        cmd.add_option("--until", o->until, "Only flows that started before this time");
        cmd.add_flag("!--no-progress", o->progress, "No progress bar on a terminal");
        return [o, &g] { return run_report(*o, g); };
    };
    return s;
}()};

}  // namespace

}  // namespace llm_proxy::cli

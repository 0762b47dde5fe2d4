// llm_proxy web DIR...: the web view over record directories, without proxying.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "cli/prices_source.hpp"
#include "cli/subcommand.hpp"
#include "cli/web_view.hpp"
#include "llm_proxy/web/flow_detail.hpp"

namespace llm_proxy::cli {

namespace {

constexpr std::size_t max_records = 200000;

struct web_cli {
    std::vector<std::string> inputs;
};

int wait_for_signal() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

int run_web(const web_cli& o, const global_options& g) {
    llm::host_map hosts;
    loaded_prices prices;
    web::server_options options;
    std::vector<std::filesystem::path> inputs;
    try {
        for (const auto& spec : g.llm_hosts) {
            if (auto problem = llm::parse_host_mapping(spec, hosts)) {
                throw std::invalid_argument("--llm-host '" + spec + "': " + *problem);
            }
        }
        prices = load_prices(g.prices_file);
        check_web_options(g);
        options = make_web_options(g.web.empty() ? "127.0.0.1:8081" : g.web, g);
        for (const auto& in : o.inputs) {
            inputs.push_back(expand_home(in));
        }
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy web: " << e.what() << "\n";
        return 2;
    }
    spdlog::set_default_logger(spdlog::stderr_color_mt("llm_proxy_web"));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    options.live = false;
    options.read.prices = prices.table.get();
    options.read.hosts = &hosts;
    // Block the signals before any thread starts, so only sigwait takes them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    try {
        auto store = std::make_shared<web::flow_store>(max_records, 0);
        auto n = web::load_records(inputs, *store, options.read);
        std::cerr << "llm_proxy web: " << n << " records"
                  << (n > max_records ? " (the newest " + std::to_string(max_records) + " shown)"
                                      : std::string())
                  << "\n";
        auto server = start_web_server(store, std::move(options));
        wait_for_signal();
        server->stop();
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy web: " << e.what() << "\n";
        return 2;
    }
    return 0;
}

const subcommand_registration web{[] {
    subcommand s;
    s.name = "web";
    s.description = "Serve the web view over record directories (no proxying)";
    s.footer =
        "Shows the records of dir_logger (*.json files and *.jsonl segments), also those of\n"
        "the original Go tool, in the browser, at --web HOST:PORT (default 127.0.0.1:8081).\n"
        "Loopback only unless --web-token is given.\n"
        "See docs/web.md.";
    s.order = 45;
    s.command = [](CLI::App& cmd, const global_options& g) -> std::function<int()> {
        auto o = std::make_shared<web_cli>();
        cmd.add_option("dirs", o->inputs, "Record directories or files")->required();
        return [o, &g] { return run_web(*o, g); };
    };
    return s;
}()};

}  // namespace

}  // namespace llm_proxy::cli

#include "cli/options.hpp"
#include "llm_proxy/addons/dir_logger.hpp"
#include "llm_proxy/record/record_writer.hpp"
#include "llm_proxy/util/ids.hpp"

#include <iostream>

namespace llm_proxy::cli {

namespace {
struct dir_logger_options {
    std::string output = "/tmp/llm_proxy";
    bool no_log_connection_stats = false;
    bool no_log_req_headers = false;
    bool no_log_req_body = false;
    bool no_log_resp_headers = false;
    bool no_log_resp_body = false;
    std::vector<std::string> filter_req_headers = record::default_filtered_headers();
    std::vector<std::string> filter_resp_headers = record::default_filtered_headers();
    std::size_t max_body_log = 4 * 1024 * 1024;
};

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out;
}
}  // namespace

void add_dir_logger_command(CLI::App& app, cli_state& state) {
    auto opts = std::make_shared<dir_logger_options>();
    auto* cmd = app.add_subcommand(
        "dir_logger",
        "Proxy requests and write each request/response pair as <output>/<flow-id>.json");
    cmd->add_option("-o,--output", opts->output, "Directory to write logs")->capture_default_str();
    cmd->add_flag("--no-log-connection-stats", opts->no_log_connection_stats,
                  "Don't log connection stats");
    cmd->add_flag("--no-log-req-headers", opts->no_log_req_headers, "Don't log request headers");
    cmd->add_flag("--no-log-req-body", opts->no_log_req_body, "Don't log request body");
    cmd->add_flag("--no-log-resp-headers", opts->no_log_resp_headers, "Don't log response headers");
    cmd->add_flag("--no-log-resp-body", opts->no_log_resp_body, "Don't log response body");
    cmd->add_option("--filter-req-headers", opts->filter_req_headers,
                    "Comma list of request headers left out of the log (still proxied); replaces "
                    "the default list: " +
                        join(record::default_filtered_headers()))
        ->delimiter(',');
    cmd->add_option("--filter-resp-headers", opts->filter_resp_headers,
                    "Comma list of response headers left out of the log (still proxied); replaces "
                    "the default list")
        ->delimiter(',');
    cmd->add_option("--max-body-log", opts->max_body_log,
                    "Largest body kept per request and per response in a record (bytes; K/M/G "
                    "suffixes); longer ones are cut and marked body_truncated")
        ->transform(CLI::AsSizeValue(false))
        ->capture_default_str();
    cmd->callback([&state, opts] {
        state.run = [&state, opts] {
            return run_proxy(state.global, [opts](addon_chain& chain) {
                record::record_options ro;
                ro.log_connection_stats = !opts->no_log_connection_stats;
                ro.log_request_headers = !opts->no_log_req_headers;
                ro.log_request_body = !opts->no_log_req_body;
                ro.log_response_headers = !opts->no_log_resp_headers;
                ro.log_response_body = !opts->no_log_resp_body;
                std::erase(opts->filter_req_headers, std::string());
                std::erase(opts->filter_resp_headers, std::string());
                ro.filter_request_headers = opts->filter_req_headers;
                ro.filter_response_headers = opts->filter_resp_headers;
                ro.max_body_log = opts->max_body_log;
                auto writer = std::make_shared<record::record_writer>(expand_home(opts->output), ro,
                                                                      make_uuid());
                chain.add(std::make_shared<addons::dir_logger>(writer, opts->max_body_log));
            });
        };
    });
}

}  // namespace llm_proxy::cli

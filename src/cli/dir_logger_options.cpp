#include "cli/dir_logger_options.hpp"

#include "cli/options.hpp"
#include "llm_proxy/addons/dir_logger.hpp"
#include "llm_proxy/record/record_writer.hpp"
#include "llm_proxy/util/ids.hpp"

namespace llm_proxy::cli {

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out;
}

void add_dir_logger_options(CLI::App* cmd, dir_logger_options& o, const std::string& output_help) {
    cmd->add_option("-o,--output", o.output, output_help)->capture_default_str();
    cmd->add_flag("--no-log-connection-stats", o.no_log_connection_stats,
                  "Don't log connection stats");
    cmd->add_flag("--no-log-req-headers", o.no_log_req_headers, "Don't log request headers");
    cmd->add_flag("--no-log-req-body", o.no_log_req_body, "Don't log request body");
    cmd->add_flag("--no-log-resp-headers", o.no_log_resp_headers, "Don't log response headers");
    cmd->add_flag("--no-log-resp-body", o.no_log_resp_body, "Don't log response body");
    cmd->add_option("--filter-req-headers", o.filter_req_headers,
                    "Comma list of request headers left out of the log (still proxied); replaces "
                    "the default list: " +
                        join(record::default_filtered_headers()))
        ->delimiter(',');
    cmd->add_option("--filter-resp-headers", o.filter_resp_headers,
                    "Comma list of response headers left out of the log (still proxied); replaces "
                    "the default list")
        ->delimiter(',');
    cmd->add_option("--max-body-log", o.max_body_log,
                    "Largest body kept per request and per response in a record (bytes; K/M/G "
                    "suffixes); longer ones are cut and marked body_truncated")
        ->transform(CLI::AsSizeValue(false))
        ->capture_default_str();
    cmd->add_option("--record-queue-mib", o.record_queue_mib,
                    "Memory for finished flows waiting to be written (MiB); when it is full, new "
                    "requests wait until the writer catches up (0: unbounded)")
        ->check(CLI::Range(0, 1 << 20))
        ->capture_default_str();
    cmd->add_option("--fsync", o.fsync,
                    "When records reach the disk: none (when the kernel flushes them), record "
                    "(each record fsync'd before the client gets the response's last bytes), "
                    "interval (the file system synced every --fsync-interval seconds)")
        ->check(CLI::IsMember({"none", "record", "interval"}))
        ->capture_default_str();
    cmd->add_option("--format", o.format,
                    "Record layout: json (one <flow-id>.json file per record) or jsonl (one "
                    "line per record in segment files, rotated by --rotate-mib and "
                    "--rotate-minutes)")
        ->check(CLI::IsMember({"json", "jsonl"}))
        ->capture_default_str();
    cmd->add_option("--rotate-mib", o.rotate_mib, "Start a new JSONL segment past this size")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 20))
        ->capture_default_str();
    cmd->add_option("--rotate-minutes", o.rotate_minutes,
                    "Start a new JSONL segment at the first record after this many minutes")
        ->check(CLI::Range(0.01, 525600.0))
        ->capture_default_str();
    cmd->add_option("--fsync-interval", o.fsync_interval_s,
                    "Seconds between syncs with --fsync interval")
        ->check(CLI::Range(0.001, 3600.0))
        ->capture_default_str();
}

std::shared_ptr<addon> make_dir_logger(dir_logger_options& o) {
    record::record_options ro;
    ro.log_connection_stats = !o.no_log_connection_stats;
    ro.log_request_headers = !o.no_log_req_headers;
    ro.log_request_body = !o.no_log_req_body;
    ro.log_response_headers = !o.no_log_resp_headers;
    ro.log_response_body = !o.no_log_resp_body;
    std::erase(o.filter_req_headers, std::string());
    std::erase(o.filter_resp_headers, std::string());
    ro.filter_request_headers = o.filter_req_headers;
    ro.filter_response_headers = o.filter_resp_headers;
    ro.max_body_log = o.max_body_log;
    record::durability_options durability;
    durability.mode = record::parse_fsync_mode(o.fsync).value_or(record::fsync_mode::none);
    durability.interval = std::chrono::milliseconds(
        std::max<std::int64_t>(1, static_cast<std::int64_t>(o.fsync_interval_s * 1000)));
    record::segment_options segments;
    segments.jsonl = o.format == "jsonl";
    segments.rotate_bytes = o.rotate_mib << 20;
    segments.rotate_interval = std::chrono::seconds(
        std::max<std::int64_t>(1, static_cast<std::int64_t>(o.rotate_minutes * 60)));
    auto writer = std::make_shared<record::record_writer>(
        expand_home(o.output), ro, make_uuid(), o.record_queue_mib << 20, durability, segments);
    return std::make_shared<addons::dir_logger>(writer, o.max_body_log);
}

}  // namespace llm_proxy::cli

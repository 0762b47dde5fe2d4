#pragma once
// The dir_logger flags, shared by `dir_logger` and `cache --output`.

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/record/record_writer.hpp"

namespace llm_proxy::cli {

struct dir_logger_options {
    std::string output;
    bool no_log_connection_stats = false;
    bool no_log_req_headers = false;
    bool no_log_req_body = false;
    bool no_log_resp_headers = false;
    bool no_log_resp_body = false;
    std::vector<std::string> filter_req_headers = record::default_filtered_headers();
    std::vector<std::string> filter_resp_headers = record::default_filtered_headers();
    std::size_t max_body_log = 4 * 1024 * 1024;
    std::size_t record_queue_mib = record::record_writer::default_max_queue_bytes >> 20;
    std::string fsync = "none";  // none | record | interval
    double fsync_interval_s = 1;
    std::string format = "json";  // json (a file per record) | jsonl (segments)
    std::uint64_t rotate_mib = 64;
    double rotate_minutes = 60;
};

// Adds the flags to `cmd`. `output_help` describes -o/--output for this command.
void add_dir_logger_options(CLI::App* cmd, dir_logger_options& o, const std::string& output_help);

// The dir_logger addon writing to o.output.
std::shared_ptr<addon> make_dir_logger(dir_logger_options& o);

std::string join(const std::vector<std::string>& v);

}  // namespace llm_proxy::cli

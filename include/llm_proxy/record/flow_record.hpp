#pragma once
// The traffic log record (schema "v2", see docs/log-format.md) built from a finished flow.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llm_proxy/flow.hpp"

namespace llm_proxy::record {

// Credential headers kept out of logs by default (matched case-insensitively).
const std::vector<std::string>& default_filtered_headers();

struct record_options {
    bool log_connection_stats = true;
    bool log_request_headers = true;
    bool log_request_body = true;
    bool log_response_headers = true;
    bool log_response_body = true;
    std::vector<std::string> filter_request_headers = default_filtered_headers();
    std::vector<std::string> filter_response_headers = default_filtered_headers();
    std::size_t max_body_log = 4 * 1024 * 1024;
};

// "content-type" -> "Content-Type" (Go's canonical MIME header key, as the original tool wrote).
std::string canonical_header_name(std::string_view name);

// The record as JSON text: pretty-printed with two-space indentation, keys sorted, a newline
// at the end. What the record writer saves; every string in it is valid UTF-8 (bytes that
// are not become U+FFFD).
// layout::line: the same record as one line of JSON (no whitespace, then "\n") with one more
// member, "id" (the flow id), for JSONL segments.
enum class record_layout { file, line };
std::string render_record(const flow& f, const record_options& options, const std::string& proxy_id,
                          record_layout layout = record_layout::file);
// The same, appended to `out`.
void append_record(std::string& out, const flow& f, const record_options& options,
                   const std::string& proxy_id, record_layout layout = record_layout::file);

// The same record as a JSON tree: render_record's text, parsed. For tests and tools; the
// proxy itself only renders.
nlohmann::json make_record(const flow& f, const record_options& options,
                           const std::string& proxy_id);

}  // namespace llm_proxy::record

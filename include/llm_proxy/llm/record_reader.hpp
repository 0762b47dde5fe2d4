#pragma once
// Reads what `report` and `export` need from a record file: the flow's time, host,
// status, latency and its LLM call. A record without an "llm" object (written before it
// existed, or by the original Go tool) gets one computed from its bodies with the same
// parsers and prices the proxy uses live.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "llm_proxy/llm/recognise.hpp"
#include "llm_proxy/llm/summary.hpp"

namespace llm_proxy::llm {

class price_table;

struct record_row {
    std::chrono::system_clock::time_point time{};
    std::string day;  // "YYYY-MM-DD" (UTC)
    std::string host;
    std::string method;
    unsigned status = 0;     // 0: no response
    std::string error_kind;  // "" when the flow did not fail
    std::optional<double> duration_ms;
    std::optional<summary> llm;  // nullopt: not an LLM call
    bool computed = false;       // llm was computed from the bodies, not read from the record
};

struct read_options {
    const price_table* prices = nullptr;  // for records without an "llm" object
    const host_map* hosts = nullptr;
};

// What computing a record's call needs from it, bodies decoded (base64 undone).
struct record_bodies {
    std::string_view request_body;
    bool has_response = false;
    std::string_view response_body;
    bool response_complete = true;  // not cut at the capture limit, and the flow did not fail
    bool cache_hit = false;         // tags.cache == "HIT"
};

// The call a record describes, computed from its bodies as the proxy does live: nullopt when
// the request is not an LLM API call. `host` and `target` as in the request URL.
std::optional<summary> compute_call(std::string_view host, std::string_view target,
                                    std::string_view method,
                                    std::chrono::system_clock::time_point at,
                                    const record_bodies& bodies, const read_options& options);

// nullopt when `record` is not an llm_proxy traffic record.
std::optional<record_row> read_record(const nlohmann::json& record, const read_options& options);

// "2026-11-27T05:23:07.123456Z" (or with an offset, or a bare date) to a time point.
std::optional<std::chrono::system_clock::time_point> parse_timestamp(std::string_view text);
// A --since/--until value: nullopt when empty; throws std::invalid_argument naming `flag`
// when it is no timestamp.
std::optional<std::chrono::system_clock::time_point> parse_time_bound(const std::string& text,
                                                                      const char* flag);

// Each record line of a JSONL segment (dir_logger --format jsonl) with its 1-based line
// number. Empty lines are skipped, and so is a last line without its newline (cut by a writer
// that was killed). False when the file cannot be opened.
bool for_each_segment_line(const std::filesystem::path& file,
                           const std::function<void(const std::string&, std::uint64_t)>& fn);
// The same with the byte offset where each line starts; reading stops when `fn` returns false.
bool for_each_segment_line_at(
    const std::filesystem::path& file,
    const std::function<bool(const std::string&, std::uint64_t line, std::uint64_t offset)>& fn);
// The record line of a segment that starts at byte `offset` (as for_each_segment_line_at gave
// it): nullopt when the file cannot be read there or the line has no newline.
std::optional<std::string> read_segment_line(const std::filesystem::path& file,
                                             std::uint64_t offset);

}  // namespace llm_proxy::llm

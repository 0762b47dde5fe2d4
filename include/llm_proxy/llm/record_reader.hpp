#pragma once
// Reads what `report` (and later `export`) needs from a record file: the flow's time, host,
// status, latency and its LLM call. A record without an "llm" object (written before it
// existed, or by the original Go tool) gets one computed from its bodies with the same
// parsers and prices the proxy uses live.

#include <chrono>
#include <filesystem>
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

// nullopt when `record` is not an llm_proxy traffic record.
std::optional<record_row> read_record(const nlohmann::json& record, const read_options& options);

// "2026-11-27T05:23:07.123456Z" (or with an offset, or a bare date) to a time point.
std::optional<std::chrono::system_clock::time_point> parse_timestamp(std::string_view text);

}  // namespace llm_proxy::llm

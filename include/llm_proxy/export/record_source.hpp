#pragma once
// Record files read for export, one at a time: the inputs are walked without listing them
// first, each file is parsed (simdjson) into a view of the flow, and the flow's LLM call is
// taken from its "llm" object or, for records written before it existed (and by the original
// Go tool), computed from its bodies. Memory holds one record.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/llm/record_reader.hpp"
#include "llm_proxy/llm/summary.hpp"

namespace llm_proxy::exporter {

// Calls `fn` with every record file of `inputs`: a file as given, a directory's *.json files
// and *.jsonl segments (recursively, hidden files skipped) in directory order; each once when
// inputs overlap (the same path twice, a path under a directory also given). Throws
// std::invalid_argument naming an input that is neither a file nor a directory.
void for_each_record_file(const std::vector<std::filesystem::path>& inputs,
                          const std::function<void(const std::filesystem::path&)>& fn);
// How many files for_each_record_file would visit (for the progress bar).
std::uint64_t count_record_files(const std::vector<std::filesystem::path>& inputs);

struct body_view {
    std::string_view text;  // as in the record: base64 text when `base64`
    bool base64 = false;
    bool truncated = false;
    bool decode_error = false;
    std::optional<std::uint64_t> wire_size;  // body_size (with truncated)
};

struct header_field {
    std::string_view name;
    std::string_view value;
};

// One record. Views point into the parsed record and stay valid until the next read.
struct flow_view {
    std::string id;  // the record's "id", else the file name without ".json"
    std::string_view timestamp;
    std::chrono::system_clock::time_point time{};
    std::string_view method;
    std::string_view url;
    std::string_view proto;
    std::string host;  // "host[:port]" of the URL
    std::string target;
    bool request_headers_logged = false;
    std::vector<header_field> request_headers;
    body_view request_body;
    bool has_response = false;
    unsigned status = 0;
    bool response_headers_logged = false;
    std::vector<header_field> response_headers;
    body_view response_body;
    std::string_view error_kind;  // "" when the flow did not fail
    std::string_view error_message;
    std::optional<double> duration_ms;
    std::string_view client_address;
    bool tunnel = false;  // a blind tunnel's record
    std::optional<llm::summary> llm;
    bool llm_computed = false;
    std::string llm_json;  // the record's own "llm" object as compact JSON ("" when computed)
};

// The text of a body: base64 decoded; nullopt when that fails.
std::optional<std::string> body_bytes(const body_view& b);

class record_source {
  public:
    explicit record_source(llm::read_options options);
    ~record_source();
    record_source(const record_source&) = delete;
    record_source& operator=(const record_source&) = delete;

    // Reads `file`; nullptr with `why_not` set when it cannot be read or is not an llm_proxy
    // record.
    const flow_view* read(const std::filesystem::path& file, std::string& why_not);
    // The same for record text already in memory. A record's own "id" member (JSONL lines
    // have one) wins over `id`.
    const flow_view* parse(std::string_view text, std::string id, std::string& why_not);
    // Every record of `file`: the one of a *.json file, or each line of a *.jsonl segment
    // (dir_logger --format jsonl; a last line without its newline, cut by a killed writer, is
    // left out). `fn` gets each flow, or nullptr and why it could not be read.
    void read_each(const std::filesystem::path& file,
                   const std::function<void(const flow_view*, const std::string& why_not)>& fn);

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace llm_proxy::exporter

#pragma once
// A flow's record for the web view: rendered from the live flow (headers filtered as in
// records) or read from its file, with the "llm" object computed for records written before
// it existed. And the record directories `llm_proxy web DIR...` serves.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "llm_proxy/llm/record_reader.hpp"
#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/web/flow_store.hpp"

namespace llm_proxy::web {

// The record of `e`; nullopt when it is gone (evicted detail, file removed). A live flow is
// rendered with `shown`'s header filters; one that gave up its detail is read from
// `records_dir` (see locate_record) when that holds it.
std::optional<nlohmann::json> flow_record(const flow_entry& e, const llm::read_options& options,
                                          const std::filesystem::path& records_dir = {},
                                          const record::record_options& shown = {});

// Where flow `id`'s record is in the records directory `dir` of a run: <dir>/<id>.json (one
// file per record), else the line of a *.jsonl segment there whose "id" is `id` (--format
// jsonl; the newest segments are read first); nullopt when neither holds it.
std::optional<disk_location> locate_record(const std::filesystem::path& dir, const std::string& id);

// The entry of the record at `at` (a flow no longer in the ring); nullopt when there is none.
std::optional<flow_entry> entry_from_disk(const disk_location& at,
                                          const llm::read_options& options);

// Adds every record of `inputs` (directories walked: *.json files and *.jsonl segments) to
// `store`; returns how many. Throws std::invalid_argument for an input that does not exist.
std::size_t load_records(const std::vector<std::filesystem::path>& inputs, flow_store& store,
                         const llm::read_options& options);

}  // namespace llm_proxy::web

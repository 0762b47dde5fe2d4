#pragma once
// `llm_proxy export`: reads record files one at a time, selects, converts, cleans and writes
// them, and sums up what it did.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "llm_proxy/export/formats.hpp"
#include "llm_proxy/export/selection.hpp"
#include "llm_proxy/llm/record_reader.hpp"

namespace llm_proxy::exporter {

struct export_options {
    std::vector<std::filesystem::path> inputs;
    exporter::format format = exporter::format::openai_chat;
    std::filesystem::path output;  // "-": standard output
    exporter::selection selection;
    bool dedupe = false;
    bool longest = false;
    std::optional<double> split;  // the training fraction, in (0, 1)
    std::uint64_t seed = 0;
    bool progress = false;  // a progress bar on standard error
    llm::read_options read;
};

struct export_summary {
    exporter::format format = exporter::format::openai_chat;
    std::uint64_t files = 0;                       // files read
    std::uint64_t written = 0;                     // examples, lines or HAR entries
    std::map<std::string, std::uint64_t> skipped;  // by reason
    std::map<std::string, std::uint64_t> notes;    // what was left out on purpose
    std::vector<std::pair<std::filesystem::path, std::uint64_t>> outputs;  // lines per file
    std::vector<std::uint64_t> tokens;  // input + output tokens of each example written
    std::uint64_t without_usage = 0;    // examples written whose call reported no usage

    std::uint64_t skipped_total() const;
    // The summary printed at the end: what was written where, skipped by reason, notes, and
    // tokens per example (min / median / max).
    std::string text() const;
};

// The file names --split writes for output `out`: "data.jsonl" gives "data.train.jsonl" and
// "data.validation.jsonl".
std::pair<std::filesystem::path, std::filesystem::path> split_paths(
    const std::filesystem::path& out);

// Runs the export. Throws std::invalid_argument for an input that does not exist,
// std::runtime_error when an output cannot be written. Outputs are written to temporary
// files renamed into place at the end, so a failed export leaves no half file.
export_summary run_export(const export_options& options);

}  // namespace llm_proxy::exporter

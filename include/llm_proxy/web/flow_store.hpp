#pragma once
// The flows the web view shows (--web, `llm_proxy web DIR`): a bounded ring of compact
// summaries, newest last. Live, workers push small summaries (a short lock, no I/O, no
// rendering) and keep the finished flow for its detail; the web thread copies what it serves
// out under the same lock and renders outside it. Read from record directories, each entry
// points at its record on disk instead.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/flow.hpp"
#include "llm_proxy/web/stream_timeline.hpp"

namespace llm_proxy::web {

// Where a flow's record is on disk: a *.json file (line 0) or a line of a *.jsonl segment.
struct disk_location {
    std::filesystem::path file;
    std::uint64_t line = 0;
    std::uint64_t offset = 0;  // of a segment's line: the byte where it starts
};

struct flow_entry {
    std::string id;
    std::uint64_t version = 0;  // the store's change counter at this entry's last change
    std::chrono::system_clock::time_point time{};
    std::string method;
    std::string host;  // host[:port]
    std::string path;
    unsigned status = 0;     // 0: no response (yet)
    bool done = false;       // false: in flight
    std::string error_kind;  // "" when the flow did not fail
    std::optional<double> duration_ms;
    std::optional<double> ttft_ms;  // time to the first token (LLM calls), else to the head
    std::string model;
    std::optional<std::uint64_t> input_tokens;
    std::optional<std::uint64_t> output_tokens;
    std::optional<double> cost_usd;
    std::shared_ptr<const flow> live;  // the finished flow (live view), for its detail
    // When a streamed (SSE) response's pieces arrived (live view); null for other flows.
    std::shared_ptr<const stream_timeline> timeline;
    std::optional<disk_location> disk;
};

// The summary the API lists: {"id", "time", "method", "host", "path", "status", "state"
// ("in_flight", "done" or "error"), "error", "duration_ms", "ttft_ms", "model",
// "input_tokens", "output_tokens", "cost_usd"} (absent values null).
nlohmann::json summary_json(const flow_entry& e);

class flow_store {
  public:
    // Keeps the last `capacity` flows, and the finished flows of the newest of them while
    // their captured bodies take at most `body_budget` bytes.
    explicit flow_store(std::size_t capacity = 1000, std::size_t body_budget = 256 << 20);

    // Live: a request head arrived / its response head / the flow finished.
    void started(const flow& f);
    void response_started(const flow& f);
    void finished(const std::shared_ptr<const flow>& f);
    // The arrival timeline of flow `id`'s streamed response (before finished()).
    void set_timeline(const std::string& id, std::shared_ptr<const stream_timeline> t);
    // From disk (appended: the caller does not add an id twice).
    void add(flow_entry e);

    // Copies, oldest first, of the entries changed after `version`, and the current version.
    std::vector<flow_entry> changed_since(std::uint64_t version, std::uint64_t& now) const;
    std::optional<flow_entry> find(const std::string& id) const;
    std::size_t size() const;

    // Where the records of this run are written (dir_logger, -o): a flow that left the ring,
    // or gave up its detail, is read from there. Set before the store is shared.
    void set_records_dir(std::filesystem::path dir) { records_dir_ = std::move(dir); }
    const std::filesystem::path& records_dir() const { return records_dir_; }

  private:
    // What leaves the ring with an overwritten or trimmed entry, released after the lock.
    struct released {
        std::vector<std::shared_ptr<const flow>> flows;
        std::shared_ptr<const stream_timeline> timeline;
    };

    // The entry of `id`, searched newest first (a live flow's entry is near the newest); null
    // when it is not in the ring.
    flow_entry* lookup(std::string_view id);
    const flow_entry* lookup(std::string_view id) const;
    // The slot of a new entry: a new one until the ring is full, then the oldest entry's (its
    // flow and timeline moved to `out`, its strings' memory reused).
    flow_entry& next_slot(released& out);
    void set_live(flow_entry& e, std::shared_ptr<const flow> f, released& out);
    // Over the budget, the oldest finished flows give up their detail (their summary stays).
    void keep_budget(released& out);

    std::filesystem::path records_dir_;
    mutable std::mutex mutex_;
    std::size_t capacity_;
    std::size_t body_budget_;
    std::size_t body_bytes_ = 0;
    std::uint64_t version_ = 0;
    // A ring without a node per entry or an index: ring_[n % capacity_] is the n-th entry
    // added (n counted from 0), count_ of them so far; the newest `capacity_` are kept.
    std::vector<flow_entry> ring_;
    std::uint64_t count_ = 0;
    // No entry older than this (by n) keeps its flow: where keep_budget starts.
    std::uint64_t oldest_live_ = 0;
};

}  // namespace llm_proxy::web

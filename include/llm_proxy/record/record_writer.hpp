#pragma once
// Writes flow records as <dir>/<flow-id>.json (or JSONL segment lines) on a thread of its own,
// in batches (batch_window): atomically (temporary file + rename), mode 0600, never half a
// file. close() drains the queue. The queue is bounded
// in bytes: wait_for_room() holds new requests while it is full (backpressure), and a record
// is never dropped. --fsync (durability_options) says when records reach the disk itself.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "llm_proxy/flow.hpp"
#include "llm_proxy/record/flow_record.hpp"

namespace llm_proxy::record {

// When records are flushed to the disk (docs/reliability.md, "Durability"):
//  none:     by the kernel, when it chooses (a killed proxy loses nothing written; a crash of
//            the machine may lose the last seconds);
//  record:   each record file and its directory entry are fsync'd, and a response's last
//            bytes reach the client only once its record is on disk;
//  interval: the file system is synced (syncfs) at most `interval` after a record is written.
enum class fsync_mode { none, record, interval };

struct durability_options {
    fsync_mode mode = fsync_mode::none;
    std::chrono::milliseconds interval{1000};
};

// How records are laid out (dir_logger --format): one file per record (json), or lines of
// JSONL segment files rotated by size and age (jsonl).
struct segment_options {
    bool jsonl = false;
    std::uint64_t rotate_bytes = 64ull << 20;       // --rotate-mib
    std::chrono::seconds rotate_interval{60 * 60};  // --rotate-minutes
};

class segment_writer;

// "none" | "record" | "interval"; nullopt for anything else.
std::optional<fsync_mode> parse_fsync_mode(std::string_view text);

class record_writer {
  public:
    // Creates `dir` (and parents) if missing; throws std::runtime_error if it cannot, or if
    // the directory is not writable. `max_queue_bytes` bounds the flows waiting to be written
    // (their approximate memory, see queued_bytes(); 0: unbounded).
    // Temporary files that an interrupted proxy left in `dir` (older than a minute) are removed.
    record_writer(std::filesystem::path dir, record_options options, std::string proxy_id,
                  std::size_t max_queue_bytes = default_max_queue_bytes,
                  durability_options durability = {}, segment_options segments = {});
    virtual ~record_writer();
    record_writer(const record_writer&) = delete;
    record_writer& operator=(const record_writer&) = delete;

    static constexpr std::size_t default_max_queue_bytes = 16 * 1024 * 1024;

    // Queues a finished flow; the record is built and written on the writer thread. After
    // close() the record is written on the caller's thread instead. Never refuses a flow: the
    // bound is kept by wait_for_room(), so the queue exceeds it by at most the flows that were
    // in progress when it filled.
    // With fsync_mode::record, a flow written by write_now() that then ended without an error
    // is not written again.
    void submit(std::shared_ptr<const flow> f);
    // Writes the flow's record on the writer thread and returns once it is on disk (or has
    // failed, which is reported like any record). For a response whose end is held
    // (fsync_mode::record); the flow must not change until this returns.
    boost::asio::awaitable<void> write_now(const flow& f);
    // Returns when the queue is below its bound (at once, usually); polls while it is full.
    boost::asio::awaitable<void> wait_for_room();
    // Writes everything queued, then stops the thread. Idempotent.
    void close();

    std::uint64_t written() const;
    std::uint64_t failed() const;
    // Flows submitted and not written (or failed) yet.
    std::uint64_t queued() const;
    // Their approximate memory: bodies, head fields, the LLM answer, and a fixed overhead.
    std::size_t queued_bytes() const { return queued_bytes_.load(std::memory_order_relaxed); }
    std::size_t max_queue_bytes() const { return max_queue_bytes_; }
    // Times a request had to wait for room (each counted once).
    std::uint64_t waits() const { return waits_.load(std::memory_order_relaxed); }
    const std::filesystem::path& directory() const { return dir_; }
    const record_options& options() const { return options_; }
    fsync_mode fsync() const { return durability_.mode; }
    // File system syncs done for fsync_mode::interval.
    std::uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }

    // How long the writer thread lets records gather before it writes them: under load one
    // wake-up and (for JSONL) one append serve many records instead of one each. A record
    // reaches its file at most this much later; write_now() and close() do not wait.
    static constexpr std::chrono::milliseconds batch_window{5};
    // The most bytes of JSONL lines appended at once.
    static constexpr std::size_t max_append_bytes = 256 * 1024;

  protected:
    // Called on the writer thread before each record is rendered (tests wait here to hold the
    // writer).
    virtual void before_write(const flow&) {}

  private:
    void drain();
    void remove_stale_temporaries();
    // Renders and saves one record now; false when it failed.
    bool write_one(const flow& f);
    // JSONL: renders the batch's records into lines_ and appends them max_append_bytes at a
    // time; releases each flow once rendered.
    void write_lines(std::vector<std::shared_ptr<const flow>>& batch);
    // The first `bytes` of lines_ (the lines of the first `records` of lines_ids_) to the
    // segment in one append; counts them written or failed.
    void append_lines(std::size_t bytes, std::size_t records);
    void count(bool ok);
    std::string write_file(const flow& f, bool durable);
    std::string append_line(const flow& f);
    void schedule_sync();  // writer thread
    void sync_now();

    std::filesystem::path dir_;
    record_options options_;
    std::string proxy_id_;

    mutable std::mutex mutex_;
    // Flows waiting for the writer thread. One drain() task is posted when the queue stops
    // being empty and takes the whole batch: under load, no post (an allocation and maybe a
    // wake-up) per record.
    std::vector<std::shared_ptr<const flow>> queue_;
    bool drain_posted_ = false;
    bool closing_ = false;
    std::uint64_t written_ = 0;
    std::uint64_t failed_ = 0;
    std::uint64_t queued_ = 0;
    std::size_t max_queue_bytes_;
    std::atomic<std::size_t> queued_bytes_{0};
    std::atomic<std::uint64_t> waits_{0};
    durability_options durability_;
    // --format jsonl: the open segment (null: one file per record). Its own lock: late flows
    // after close() are written on their callers' threads.
    std::unique_ptr<segment_writer> segments_;
    std::mutex segment_mutex_;
    // fsync_mode::record: ids of flows written by write_now, until their on_flow_done.
    std::unordered_set<std::string> written_early_;
    // fsync_mode::interval, on the writer thread only.
    bool dirty_ = false;
    bool sync_armed_ = false;
    std::chrono::steady_clock::time_point last_sync_{};
    std::atomic<std::uint64_t> syncs_{0};
    // Only drain() touches it; swapped with queue_, so neither allocates once warm.
    std::vector<std::shared_ptr<const flow>> batch_;
    // write_lines(): rendered lines not appended yet, and their flows' ids (for the report of
    // a failed append). Writer thread only.
    std::string lines_;
    std::vector<std::string> lines_ids_;
    boost::asio::thread_pool pool_{1};
    boost::asio::steady_timer sync_timer_{pool_};
    boost::asio::steady_timer batch_timer_{pool_};  // batch_window; writer thread only
    // Serializes close() so concurrent callers never join the pool twice.
    std::mutex close_mutex_;
    bool joined_ = false;
};

}  // namespace llm_proxy::record

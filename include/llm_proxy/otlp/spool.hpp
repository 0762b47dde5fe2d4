#pragma once
// Batches the collector has not taken yet (it was down, or answered 429/5xx), oldest first,
// bounded in bytes. On disk (one file per batch in a private directory, written whole) they
// survive a restart and are sent then; without a directory they are kept in memory only.
// Past the bound the oldest batches are dropped and counted. Used by one thread.

#include <cstdint>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>

namespace llm_proxy::otlp {

class spool {
  public:
    // `dir` empty: memory only. A directory another process holds (its lock) is not shared:
    // this spool then keeps to memory and says so in problem().
    spool(std::filesystem::path dir, std::uint64_t max_bytes);
    ~spool();
    spool(const spool&) = delete;
    spool& operator=(const spool&) = delete;

    struct batch {
        std::string body;       // the POST body
        std::size_t spans = 0;  // spans it holds
        bool protobuf = false;  // the body's encoding: protobuf, else JSON
        bool gzip = false;      // ...compressed with gzip
    };
    // Adds a batch at the end. Returns false when it could not be kept (larger than the
    // bound, or the file could not be written: problem() says why; the batch is dropped and
    // counted).
    bool push(const batch& b);
    // The oldest batch (read from disk), or nullopt when none is left. A file that cannot be
    // read is dropped and counted.
    std::optional<batch> front();
    // Removes the oldest batch (after the collector took it).
    void pop();

    bool empty() const { return entries_.empty(); }
    std::size_t batches() const { return entries_.size(); }
    std::size_t spans() const { return spans_; }
    std::uint64_t bytes() const { return bytes_; }
    // Spans dropped to keep the bound or lost to a write error.
    std::uint64_t dropped_spans() const { return dropped_spans_; }
    bool on_disk() const { return !dir_.empty(); }
    const std::filesystem::path& directory() const { return dir_; }
    // The last problem met ("" when none); reset by the caller after reporting it.
    std::string problem;

  private:
    struct entry {
        std::uint64_t seq = 0;
        std::size_t spans = 0;
        bool protobuf = false;
        bool gzip = false;
        std::uint64_t bytes = 0;
        std::string body;  // memory only
    };
    std::filesystem::path path_of(const entry& e) const;
    void drop_front();

    std::filesystem::path dir_;
    std::uint64_t max_bytes_;
    int lock_fd_ = -1;
    std::deque<entry> entries_;
    std::uint64_t next_seq_ = 1;
    std::uint64_t bytes_ = 0;
    std::size_t spans_ = 0;
    std::uint64_t dropped_spans_ = 0;
};

}  // namespace llm_proxy::otlp

#pragma once
// dir_logger --format jsonl: records as lines appended to segment files
// <dir>/llm_proxy-<UTC start>-<proxy id>-<n>.jsonl, rotated by size and age. Lines are
// written by appends of whole lines, each taken back (the file truncated) when it fails, so a
// segment holds whole lines only; a proxy killed in the middle of a write can leave a cut last
// line, which the next start removes (repair_segments). Not thread-safe: the record writer
// serialises the calls.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "llm_proxy/record/record_writer.hpp"

namespace llm_proxy::record {

class segment_writer {
  public:
    segment_writer(std::filesystem::path dir, std::string proxy_id, segment_options options,
                   bool durable);
    ~segment_writer();
    segment_writer(const segment_writer&) = delete;
    segment_writer& operator=(const segment_writer&) = delete;

    // Appends whole lines (each ending with '\n') in one go, all or none; "" or the error.
    // With `durable` they are on disk (fdatasync, and the directory once per new segment) when
    // it returns.
    std::string append(std::string_view lines);
    void close();

    const std::filesystem::path& current() const { return path_; }

  private:
    std::string open_next();
    bool must_rotate(std::size_t next) const;

    std::filesystem::path dir_;
    std::string proxy_id_;
    segment_options options_;
    bool durable_;
    int fd_ = -1;
    std::filesystem::path path_;
    std::uint64_t bytes_ = 0;
    std::chrono::steady_clock::time_point opened_{};
    unsigned sequence_ = 0;
};

// Cuts a last line without its '\n' off the segments (*.jsonl) in `dir` that were last
// written more than `quiet_for` ago (younger ones may be another running proxy's). Returns
// how many were repaired.
std::size_t repair_segments(const std::filesystem::path& dir,
                            std::chrono::seconds quiet_for = std::chrono::seconds(60));

}  // namespace llm_proxy::record

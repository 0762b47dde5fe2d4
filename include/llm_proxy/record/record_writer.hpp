#pragma once
// Writes flow records as <dir>/<flow-id>.json on a thread of its own: atomically (temporary
// file + rename), mode 0600, never half a file. close() drains the queue.

#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "llm_proxy/flow.hpp"
#include "llm_proxy/record/flow_record.hpp"

namespace llm_proxy::record {

class record_writer {
  public:
    // Creates `dir` (and parents) if missing; throws std::runtime_error if it cannot, or if
    // the directory is not writable.
    record_writer(std::filesystem::path dir, record_options options, std::string proxy_id);
    ~record_writer();
    record_writer(const record_writer&) = delete;
    record_writer& operator=(const record_writer&) = delete;

    // Queues a finished flow; the record is built and written on the writer thread. After
    // close() the record is written on the caller's thread instead.
    void submit(std::shared_ptr<const flow> f);
    // Writes everything queued, then stops the thread. Idempotent.
    void close();

    std::uint64_t written() const;
    std::uint64_t failed() const;
    // Flows submitted and not written (or failed) yet.
    std::uint64_t queued() const;
    const std::filesystem::path& directory() const { return dir_; }

  private:
    void drain();
    void write_one(const flow& f);

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
    // Only drain() touches it; swapped with queue_, so neither allocates once warm.
    std::vector<std::shared_ptr<const flow>> batch_;
    boost::asio::thread_pool pool_{1};
    // Serializes close() so concurrent callers never join the pool twice.
    std::mutex close_mutex_;
    bool joined_ = false;
};

}  // namespace llm_proxy::record

#pragma once
// Writes flow records as <dir>/<flow-id>.json on a thread of its own: atomically (temporary
// file + rename), mode 0600, never half a file. close() drains the queue.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

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

    // Queues a finished flow; the record is built and written on the writer thread.
    void submit(std::shared_ptr<const flow> f);
    // Writes everything queued, then stops the thread. Idempotent.
    void close();

    std::uint64_t written() const;
    std::uint64_t failed() const;
    const std::filesystem::path& directory() const { return dir_; }

  private:
    void run();
    void write_one(const flow& f);

    std::filesystem::path dir_;
    record_options options_;
    std::string proxy_id_;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<const flow>> queue_;
    bool writer_idle_ = false;  // the writer thread waits on cv_ (guarded by mutex_)
    bool closing_ = false;
    std::uint64_t written_ = 0;
    std::uint64_t failed_ = 0;
    std::thread thread_;
    // Serializes close() so concurrent callers never join the thread twice.
    std::mutex close_mutex_;
};

}  // namespace llm_proxy::record

#pragma once
// A record writer whose writer thread waits before each record until open() is called: tests
// hold the writer to see what waits for it (backpressure, a held response end).

#include <condition_variable>
#include <mutex>

#include "llm_proxy/record/record_writer.hpp"

namespace llm_proxy::test {

class gated_writer : public record::record_writer {
  public:
    using record::record_writer::record_writer;
    ~gated_writer() override {
        open();
        close();  // before this class is gone: the writer thread calls before_write
    }
    void open() {
        std::lock_guard lock(m_);
        open_ = true;
        cv_.notify_all();
    }

    // True once the writer thread waits at the gate (it has taken its batch from the queue).
    bool held() {
        std::lock_guard lock(m_);
        return held_;
    }

  protected:
    void before_write(const flow&) override {
        std::unique_lock lock(m_);
        if (!open_) {
            held_ = true;
        }
        cv_.wait(lock, [this] { return open_; });
    }

  private:
    std::mutex m_;
    std::condition_variable cv_;
    bool open_ = false;
    bool held_ = false;
};

}  // namespace llm_proxy::test

#pragma once
#include <memory>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/record/record_writer.hpp"

namespace llm_proxy::addons {

// Writes every finished (or failed) flow as <output>/<flow-id>.json through a record_writer,
// so disk and JSON work stay off the event loop.
class dir_logger : public addon {
  public:
    explicit dir_logger(std::shared_ptr<record::record_writer> writer, std::size_t max_body_log);
    std::string_view name() const override { return "dir_logger"; }
    std::size_t request_capture_limit(const flow&) const override { return max_body_log_; }
    std::size_t response_capture_limit(const flow&) const override { return max_body_log_; }
    // The finished flow goes to the writer thread as it is (shared, not copied).
    void on_flow_done(const std::shared_ptr<const flow>& f) override;
    // --fsync record: a response's last bytes wait until its record is on disk.
    bool holds_response_end() const override;
    boost::asio::awaitable<void> before_response_end(const flow& f) override;
    // New requests wait while the writer's queue is full (--record-queue-mib).
    boost::asio::awaitable<void> wait_for_capacity() override;
    void close() override;
    const std::shared_ptr<record::record_writer>& writer() const { return writer_; }

  private:
    std::shared_ptr<record::record_writer> writer_;
    std::size_t max_body_log_;
};

}  // namespace llm_proxy::addons

#include "llm_proxy/addons/dir_logger.hpp"

namespace llm_proxy::addons {

dir_logger::dir_logger(std::shared_ptr<record::record_writer> writer, std::size_t max_body_log)
    : writer_(std::move(writer)), max_body_log_(max_body_log) {}

void dir_logger::on_flow_done(const std::shared_ptr<const flow>& f) {
    writer_->submit(f);
}

bool dir_logger::holds_response_end() const {
    return writer_->fsync() == record::fsync_mode::record;
}

boost::asio::awaitable<void> dir_logger::before_response_end(const flow& f) {
    co_await writer_->write_now(f);
}

boost::asio::awaitable<void> dir_logger::wait_for_capacity() {
    co_await writer_->wait_for_room();
}

void dir_logger::close() {
    writer_->close();
}

}  // namespace llm_proxy::addons

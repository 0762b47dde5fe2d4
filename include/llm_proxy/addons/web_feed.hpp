#pragma once
#include <cstddef>
#include <memory>
#include <string_view>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/web/flow_store.hpp"

namespace llm_proxy::addons {

// Feeds the web view (--web): a small summary when a request starts and when its response
// head arrives, the finished flow when it is done, and for a streamed (SSE) response the
// arrival timeline of its pieces, kept with the flow as it passes. Each is a short push into
// the store's bounded ring; rendering happens on the web thread, when a browser asks.
class web_feed : public addon {
  public:
    web_feed(std::shared_ptr<web::flow_store> store, std::size_t body_limit)
        : store_(std::move(store)), body_limit_(body_limit) {}
    std::string_view name() const override { return "web"; }
    std::size_t request_capture_limit(const flow&) const override { return body_limit_; }
    std::size_t response_capture_limit(const flow&) const override { return body_limit_; }
    void on_request_headers(flow& f) override { store_->started(f); }
    boost::asio::awaitable<void> on_response_headers(flow& f) override;
    void on_response_body(flow& f, std::string_view piece) override;
    void on_response_end(flow& f) override { hand_over_timeline(f); }
    void on_error(flow& f) override { hand_over_timeline(f); }
    void on_flow_done(const std::shared_ptr<const flow>& f) override { store_->finished(f); }

  private:
    void hand_over_timeline(flow& f);

    std::shared_ptr<web::flow_store> store_;
    flow_slot<std::shared_ptr<web::stream_timeline>> timelines_;
    std::size_t body_limit_;
};

}  // namespace llm_proxy::addons

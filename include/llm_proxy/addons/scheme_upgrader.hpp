#pragma once
#include "llm_proxy/addon.hpp"

namespace llm_proxy::addons {

// Sends plain-HTTP requests upstream over HTTPS (port 80 becomes 443) and marks the response
// with "X-Llm_proxy-scheme-upgraded: true", as the original tool did.
class scheme_upgrader : public addon {
  public:
    std::string_view name() const override { return "scheme_upgrader"; }
    void on_request_headers(flow& f) override;
    boost::asio::awaitable<void> on_response_headers(flow& f) override;
};

}  // namespace llm_proxy::addons

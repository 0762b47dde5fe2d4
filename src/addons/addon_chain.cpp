#include "llm_proxy/addon.hpp"

#include <algorithm>

namespace llm_proxy {

void addon_chain::add(std::shared_ptr<addon> a) {
    addons_.push_back(std::move(a));
}

std::size_t addon_chain::body_capture_limit() const {
    std::size_t n = 0;
    for (const auto& a : addons_) {
        n = std::max(n, a->body_capture_limit());
    }
    return n;
}

bool addon_chain::needs_request_body(const flow& f) const {
    return std::any_of(addons_.begin(), addons_.end(),
                       [&f](const auto& a) { return a->needs_request_body(f); });
}

void addon_chain::on_request_headers(flow& f) {
    for (auto& a : addons_) {
        a->on_request_headers(f);
    }
}

boost::asio::awaitable<void> addon_chain::on_request(flow& f) {
    for (auto& a : addons_) {
        co_await a->on_request(f);
        if (f.answered_locally) {
            break;
        }
    }
}

void addon_chain::on_response_headers(flow& f) {
    for (auto& a : addons_) {
        a->on_response_headers(f);
    }
}

void addon_chain::on_response_body(flow& f, std::string_view chunk) {
    for (auto& a : addons_) {
        a->on_response_body(f, chunk);
    }
}

void addon_chain::on_response_end(flow& f) {
    for (auto& a : addons_) {
        a->on_response_end(f);
    }
}

void addon_chain::on_error(flow& f) {
    for (auto& a : addons_) {
        a->on_error(f);
    }
}

void addon_chain::close() {
    for (auto& a : addons_) {
        a->close();
    }
}

}  // namespace llm_proxy

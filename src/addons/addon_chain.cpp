#include <spdlog/spdlog.h>

#include <algorithm>

#include "llm_proxy/addon.hpp"

namespace llm_proxy {

namespace {

// Records an exception that escaped addon `a`'s hook on flow `f`.
void contain(flow& f, const addon& a, std::string_view hook) {
    std::string what = "unknown exception";
    try {
        throw;
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
    }
    f.addon_failure =
        "addon " + std::string(a.name()) + " failed in " + std::string(hook) + ": " + what;
    f.tags["addon_failure"] = f.addon_failure;
    spdlog::error("flow {}: {}", f.id, f.addon_failure);
}

template <class Limit>
std::size_t largest(const std::vector<std::shared_ptr<addon>>& addons, Limit limit) {
    std::size_t n = 0;
    for (const auto& a : addons) {
        n = std::max(n, limit(*a));
    }
    return n;
}

// Runs hook(a) for each addon until one throws.
template <class Hook>
bool each(const std::vector<std::shared_ptr<addon>>& addons, flow& f, std::string_view name,
          Hook hook) {
    for (auto& a : addons) {
        try {
            hook(*a);
        } catch (...) {
            contain(f, *a, name);
            return false;
        }
    }
    return true;
}

}  // namespace

void addon_chain::add(std::shared_ptr<addon> a) {
    addons_.push_back(std::move(a));
}

std::size_t addon_chain::request_buffer_limit(const flow& f) const {
    return largest(addons_, [&f](const addon& a) { return a.request_buffer_limit(f); });
}

std::size_t addon_chain::request_capture_limit(const flow& f) const {
    return largest(addons_, [&f](const addon& a) { return a.request_capture_limit(f); });
}

std::size_t addon_chain::response_capture_limit(const flow& f) const {
    return largest(addons_, [&f](const addon& a) { return a.response_capture_limit(f); });
}

bool addon_chain::on_request_headers(flow& f) {
    return each(addons_, f, "on_request_headers", [&f](addon& a) {
        if (!f.answered_locally) {
            a.on_request_headers(f);
        }
    });
}

boost::asio::awaitable<bool> addon_chain::on_request(flow& f) {
    for (auto& a : addons_) {
        if (f.answered_locally) {
            break;
        }
        try {
            co_await a->on_request(f);
        } catch (...) {
            contain(f, *a, "on_request");
            co_return false;
        }
    }
    co_return true;
}

boost::asio::awaitable<bool> addon_chain::on_response_headers(flow& f) {
    for (auto& a : addons_) {
        try {
            co_await a->on_response_headers(f);
        } catch (...) {
            contain(f, *a, "on_response_headers");
            co_return false;
        }
    }
    co_return true;
}

bool addon_chain::on_response_body(flow& f, std::string_view chunk) {
    return each(addons_, f, "on_response_body",
                [&f, chunk](addon& a) { a.on_response_body(f, chunk); });
}

void addon_chain::on_response_end(flow& f) {
    for (auto& a : addons_) {
        try {
            a->on_response_end(f);
        } catch (...) {
            contain(f, *a, "on_response_end");
        }
    }
}

void addon_chain::on_error(flow& f) {
    for (auto& a : addons_) {
        try {
            a->on_error(f);
        } catch (...) {
            contain(f, *a, "on_error");
        }
    }
}

void addon_chain::on_flow_done(const std::shared_ptr<const flow>& f) {
    for (auto& a : addons_) {
        try {
            a->on_flow_done(f);
        } catch (const std::exception& e) {
            spdlog::error("flow {}: addon {} failed in on_flow_done: {}", f->id, a->name(),
                          e.what());
        } catch (...) {
            spdlog::error("flow {}: addon {} failed in on_flow_done", f->id, a->name());
        }
    }
}

bool addon_chain::holds_response_end() const {
    return std::any_of(addons_.begin(), addons_.end(),
                       [](const auto& a) { return a->holds_response_end(); });
}

boost::asio::awaitable<void> addon_chain::before_response_end(flow& f) {
    for (auto& a : addons_) {
        if (!a->holds_response_end()) {
            continue;
        }
        try {
            co_await a->before_response_end(f);
        } catch (...) {
            contain(f, *a, "before_response_end");
        }
    }
}

boost::asio::awaitable<void> addon_chain::wait_for_capacity() {
    for (auto& a : addons_) {
        std::string failure;
        try {
            co_await a->wait_for_capacity();
        } catch (const std::exception& e) {
            failure = e.what();
        } catch (...) {
            failure = "unknown exception";
        }
        if (!failure.empty()) {
            spdlog::error("addon {} failed in wait_for_capacity: {}", a->name(), failure);
        }
    }
}

void addon_chain::close() {
    for (auto& a : addons_) {
        a->close();
    }
}

}  // namespace llm_proxy

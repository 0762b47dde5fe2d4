#include "addon_api_fixture.hpp"

#include <stdexcept>

#include "support/body_stream.hpp"

namespace llm_proxy::test {

// --- recorder

void recorder::note(const flow& f, std::string event) {
    std::lock_guard lock(mutex_);
    auto& list = events_[f.id];
    if (event == "on_response_body" && !list.empty() && list.back() == event) {
        return;
    }
    list.push_back(std::move(event));
}

void recorder::on_request_headers(flow& f) {
    note(f, "on_request_headers");
}

boost::asio::awaitable<void> recorder::on_request(flow& f) {
    note(f, "on_request");
    co_return;
}

boost::asio::awaitable<void> recorder::on_response_headers(flow& f) {
    note(f, "on_response_headers");
    co_return;
}

void recorder::on_response_body(flow& f, std::string_view) {
    note(f, "on_response_body");
}

void recorder::on_response_end(flow& f) {
    note(f, "on_response_end");
}

void recorder::on_error(flow& f) {
    note(f, "on_error");
}

void recorder::on_flow_done(const std::shared_ptr<const flow>& f) {
    note(*f, "on_flow_done");
    {
        std::lock_guard lock(mutex_);
        done_.push_back(f);
    }
    cv_.notify_all();
}

std::vector<std::shared_ptr<const flow>> recorder::wait_done(std::size_t n,
                                                             std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return done_.size() >= n; });
    return done_;
}

std::shared_ptr<const flow> recorder::wait_flow(std::string_view target,
                                                std::chrono::milliseconds timeout) {
    std::shared_ptr<const flow> found;
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] {
        for (const auto& f : done_) {
            if (f->request.target.starts_with(target)) {
                found = f;
                return true;
            }
        }
        return false;
    });
    if (!found) {
        ADD_FAILURE() << name_ << ": no finished flow for " << target;
    }
    return found;
}

std::vector<std::string> recorder::events(const std::string& id) const {
    std::lock_guard lock(mutex_);
    auto it = events_.find(id);
    return it == events_.end() ? std::vector<std::string>{} : it->second;
}

// --- thrower

void thrower::maybe_throw(const flow& f, std::string_view hook) const {
    if (hook == hook_ && f.request.target.find(trigger_) != std::string::npos) {
        throw std::runtime_error("boom in " + std::string(hook));
    }
}

boost::asio::awaitable<void> thrower::on_request(flow& f) {
    maybe_throw(f, "on_request");
    co_return;
}

boost::asio::awaitable<void> thrower::on_response_headers(flow& f) {
    maybe_throw(f, "on_response_headers");
    co_return;
}

void thrower::on_response_body(flow& f, std::string_view) {
    if (f.response_bytes > after_bytes_) {
        maybe_throw(f, "on_response_body");
    }
}

// --- drop_sse_event

void drop_sse_event::on_data(std::string_view in, std::string& out) {
    pending_.append(in);
    std::size_t at = 0;
    for (;;) {
        auto end = pending_.find("\n\n", at);
        if (end == std::string::npos) {
            break;
        }
        std::string_view event(pending_.data() + at, end + 2 - at);
        if (event.find(needle_) == std::string_view::npos) {
            out.append(event);
        }
        at = end + 2;
    }
    pending_.erase(0, at);
}

void drop_sse_event::on_end(std::string& out) {
    out.append(pending_);
    pending_.clear();
}

std::string upper(std::string s) {
    for (auto& c : s) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return s;
}

// --- fixture

struct addon_api_test::env {
    temp_dir work{"llm_proxy_addon_api"};
    test_pki pki = make_test_pki(work / "pki");
    fake_upstream upstream{pki};
};

std::unique_ptr<addon_api_test::env> addon_api_test::env_;

void addon_api_test::SetUpTestSuite() {
    if (!env_) {
        env_ = std::make_unique<env>();
    }
}

void addon_api_test::TearDownTestSuite() {
    env_.reset();
}

fake_upstream& addon_api_test::upstream() {
    SetUpTestSuite();
    return env_->upstream;
}

const test_pki& addon_api_test::pki() {
    SetUpTestSuite();
    return env_->pki;
}

in_process_proxy& addon_api_test::start(std::vector<std::shared_ptr<addon>> addons,
                                        in_process_proxy_options options) {
    auto chain = std::make_shared<addon_chain>();
    for (auto& a : addons) {
        chain->add(std::move(a));
    }
    proxy_ =
        std::make_unique<in_process_proxy>(chain, pki(), upstream().port(), std::move(options));
    return *proxy_;
}

std::size_t addon_api_test::upstream_requests() {
    return upstream().stats().at("requests_seen").size();
}

nlohmann::json parse_json(std::string_view text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) {
        ADD_FAILURE() << "not JSON: " << text.substr(0, 500);
        return nullptr;
    }
    return j;
}

std::string echoed_header(const nlohmann::json& echo, std::string_view name) {
    if (!echo.is_object() || !echo.contains("headers")) {
        return {};
    }
    for (const auto& h : echo.at("headers")) {
        if (iequals(h.at(0).get<std::string>(), name)) {
            return h.at(1).get<std::string>();
        }
    }
    return {};
}

raw_response post_framed(proxied_connection& c, std::string_view path, std::string_view body,
                         bool chunked, const header_list& extra_headers) {
    header_list headers = extra_headers;
    if (chunked) {
        headers.emplace_back("Transfer-Encoding", "chunked");
    } else {
        headers.emplace_back("Content-Length", std::to_string(body.size()));
    }
    std::string bytes = make_head("POST", c.target(path), c.host_header(), headers);
    bytes += chunked ? encode_chunked(body, 16 * 1024) : std::string(body);
    c.send(bytes);
    return c.read_final_response();
}

}  // namespace llm_proxy::test

#include "http_guard.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <nlohmann/json.hpp>

namespace llm_proxy::web {

namespace http = boost::beast::http;

namespace {

constexpr const char* cookie_name = "llm_proxy_web";

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool same_secret(std::string_view a, const std::string& b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    auto q = target.find('?');
    if (q == std::string_view::npos) {
        return std::nullopt;
    }
    auto query = target.substr(q + 1);
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) {
            return std::string(eq == std::string_view::npos ? std::string_view()
                                                            : pair.substr(eq + 1));
        }
        if (amp == std::string_view::npos) {
            break;
        }
        query = query.substr(amp + 1);
    }
    return std::nullopt;
}

response json_error(const request& req, http::status status, const std::string& message) {
    response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = nlohmann::json{{"error", message}}.dump() + "\n";
    res.keep_alive(req.keep_alive());
    finish(res);
    return res;
}

void finish(response& res) {
    res.set("Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
            "form-action 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    if (res.find(http::field::cache_control) == res.end()) {
        res.set(http::field::cache_control, "no-store");
    }
    res.prepare_payload();
}

http_guard::http_guard(const std::string& bound, std::uint16_t port, std::string token,
                       std::shared_ptr<const proxy_credentials> credentials)
    : token_(std::move(token)), credentials_(std::move(credentials)) {
    if (credentials_ && !credentials_->enabled()) {
        credentials_.reset();
    }
    auto p = ":" + std::to_string(port);
    hosts_ = {"127.0.0.1" + p, "localhost" + p, "[::1]" + p};
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(bound, ec);
    if (!ec) {
        any_host_ = address.is_unspecified();
        hosts_.push_back(address.is_v6() ? "[" + lower(address.to_string()) + "]" + p
                                         : address.to_string() + p);
    }
}

bool http_guard::host_ok(const request& req) const {
    auto it = req.find(http::field::host);
    if (it == req.end()) {
        return false;
    }
    if (any_host_) {
        return true;
    }
    auto host = lower(std::string_view(it->value().data(), it->value().size()));
    return std::find(hosts_.begin(), hosts_.end(), host) != hosts_.end();
}

bool http_guard::credentials_ok(const request& req) const {
    if (!credentials_) {
        return false;
    }
    auto it = req.find(http::field::authorization);
    return it != req.end() &&
           credentials_->accepts(std::string_view(it->value().data(), it->value().size()));
}

bool http_guard::token_ok(const request& req, bool& from_query) const {
    from_query = false;
    if (token_.empty()) {
        return false;
    }
    std::string_view target(req.target().data(), req.target().size());
    if (auto t = query_param(target, "token"); t && same_secret(*t, token_)) {
        from_query = true;
        return true;
    }
    if (auto it = req.find(http::field::authorization); it != req.end()) {
        std::string_view v(it->value().data(), it->value().size());
        if (v.starts_with("Bearer ") && same_secret(v.substr(7), token_)) {
            return true;
        }
    }
    for (auto it = req.find(http::field::cookie);
         it != req.end() && it->name() == http::field::cookie; ++it) {
        std::string_view v(it->value().data(), it->value().size());
        std::string key = std::string(cookie_name) + "=";
        for (std::size_t pos = 0; pos < v.size();) {
            auto end = v.find(';', pos);
            auto part = v.substr(pos, end == std::string_view::npos ? v.npos : end - pos);
            while (part.starts_with(' ')) {
                part.remove_prefix(1);
            }
            if (part.starts_with(key) && same_secret(part.substr(key.size()), token_)) {
                return true;
            }
            if (end == std::string_view::npos) {
                break;
            }
            pos = end + 1;
        }
    }
    return false;
}

std::optional<response> http_guard::check(const request& req, bool& set_cookie) const {
    if (!host_ok(req)) {
        return json_error(req, http::status::forbidden,
                          "this Host is not the web view's address (DNS rebinding?)");
    }
    if (token_.empty() && !credentials_) {
        return std::nullopt;
    }
    if (token_ok(req, set_cookie) || credentials_ok(req)) {
        return std::nullopt;
    }
    if (!credentials_) {
        return json_error(req, http::status::unauthorized,
                          "a token is required: open the address printed at start");
    }
    auto res = json_error(req, http::status::unauthorized,
                          token_.empty() ? "the proxy's credentials are required"
                                         : "the proxy's credentials or the token are required");
    res.set(http::field::www_authenticate, "Basic realm=\"llm_proxy web view\", charset=\"UTF-8\"");
    return res;
}

std::string http_guard::cookie() const {
    return std::string(cookie_name) + "=" + token_ + "; Path=/; HttpOnly; SameSite=Strict";
}

}  // namespace llm_proxy::web

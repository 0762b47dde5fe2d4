#pragma once
// One OTLP/HTTP export: POST of a JSON body to the traces URL, over a fresh connection (plain,
// or TLS verified against the system's CAs plus --upstream-ca), with a deadline.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace llm_proxy::otlp {

struct target {
    std::string scheme;  // "http" or "https"
    std::string host;
    std::string port;
    std::string path;       // origin-form, e.g. "/v1/traces"
    std::string authority;  // the Host header
};
// Parses an http:// or https:// URL; nullopt when it is not one.
std::optional<target> parse_target(const std::string& url);

struct post_result {
    bool ok = false;         // 2xx
    bool retryable = false;  // network error, 408, 429, 502, 503, 504: try again later
    unsigned status = 0;     // 0: no answer
    std::string error;       // why it failed, for the log
    std::optional<std::chrono::seconds> retry_after;
};

struct post_options {
    std::vector<std::pair<std::string, std::string>> headers;
    std::string content_encoding;  // "" or "gzip": the body is already encoded so
    std::chrono::milliseconds timeout{10000};
};

boost::asio::awaitable<post_result> post(const target& t, boost::asio::ssl::context* tls,
                                         const std::string& body, const post_options& o);

}  // namespace llm_proxy::otlp

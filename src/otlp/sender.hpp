#pragma once
// OTLP/HTTP exports: POSTs of a JSON body to the traces URL over one kept-alive connection
// (plain, or TLS verified against the system's CAs plus --upstream-ca), with a deadline.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
    std::string content_type = "application/json";  // or "application/x-protobuf"
    std::string content_encoding;                   // "" or "gzip": the body is already so
    std::chrono::milliseconds timeout{10000};
};

// The exporter's link to the collector. A connection is opened by the first POST and kept for
// the next ones while the collector keeps it alive (and it was used within max_idle); a POST
// on a kept connection the collector has closed meanwhile is sent again, once, on a new one.
// Used from one coroutine at a time.
class connection {
  public:
    connection(const target& t, boost::asio::ssl::context* tls);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    boost::asio::awaitable<post_result> post(std::string_view body, const post_options& o);
    // Connections opened so far.
    std::uint64_t opened() const;

    static constexpr std::chrono::seconds max_idle{30};

    struct state;

  private:
    std::unique_ptr<state> state_;
};

}  // namespace llm_proxy::otlp

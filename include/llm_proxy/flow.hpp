#pragma once
// A flow: one request/response pair as it passes through the proxy.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_proxy {

// Header fields in wire order, names as received.
using header_list = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive ASCII comparison for header names.
bool iequals(std::string_view a, std::string_view b);

// First value of a header, or nullopt.
std::optional<std::string_view> find_header(const header_list& headers, std::string_view name);

// The first bytes of a body as seen on the wire (still content-encoded), up to a limit.
struct captured_body {
    std::string data;
    std::uint64_t total = 0;  // bytes seen on the wire, including those not kept
    bool truncated = false;   // total > data.size()

    void append(std::string_view chunk, std::size_t limit);
};

struct request_head {
    std::string method;
    std::string scheme;  // "http" or "https" (after addons such as the scheme upgrader)
    std::string host;    // without brackets for IPv6 literals
    std::uint16_t port = 0;
    std::string target;     // origin-form: path and query
    unsigned version = 11;  // 10 or 11
    header_list headers;

    // scheme://host[:port]target, port omitted when it is the scheme's default.
    std::string url() const;
    // host[:port] as it belongs in a Host header.
    std::string authority() const;
};

struct response_head {
    unsigned status = 0;
    std::string reason;
    unsigned version = 11;
    header_list headers;  // end-to-end headers: no framing (Content-Length, Transfer-Encoding)
    // The Content-Length the upstream announced; nullopt when it sent the body chunked or
    // close-delimited (a stream).
    std::optional<std::uint64_t> content_length{};
};

struct flow {
    std::string id;              // UUID v4
    std::string client_address;  // "ip:port"
    std::chrono::system_clock::time_point started_at{};
    std::chrono::steady_clock::time_point started{};
    std::chrono::steady_clock::duration duration{};

    request_head request;
    captured_body request_body;
    std::optional<response_head> response;
    captured_body response_body;

    // Set by an addon in on_request to answer without contacting the upstream.
    bool answered_locally = false;
    std::string local_response_body;
    // When not empty, the local body goes out in pieces ending at these offsets (chunked to
    // HTTP/1.1 clients, e.g. one SSE event per chunk) instead of with a Content-Length.
    std::vector<std::size_t> local_response_pieces;

    // Per-flow state of addons, released with the flow; keyed by addon name.
    std::map<std::string, std::shared_ptr<void>, std::less<>> addon_state;

    std::string error_kind;  // empty when the flow succeeded: "dns", "connect", "tls", ...
    std::string error;       // human readable detail

    std::uint64_t request_bytes = 0;   // body bytes received from the client
    std::uint64_t response_bytes = 0;  // body bytes sent to the client

    // Free-form annotations addons leave for each other (e.g. "scheme_upgraded" -> "true").
    std::map<std::string, std::string> tags;

    double duration_ms() const;
};

}  // namespace llm_proxy

#pragma once
// A small synchronous HTTP/1.1 client for the tests (Boost.Beast, blocking sockets, explicit
// timeouts). It talks to a server directly (plain or TLS) or through an HTTP proxy: absolute-form
// requests for http:// URLs, CONNECT + TLS (verified against the proxy's CA) for https:// URLs.
//
//   http_client client({.proxy_host = "127.0.0.1", .proxy_port = proxy.port(),
//                       .ca_file = proxy_ca.string()});
//   response r = client.request("POST", "https://api.openai.com/v1/chat/completions",
//                               {{"content-type", "application/json"}}, body);

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_proxy::test {

using header_list = std::vector<std::pair<std::string, std::string>>;

// scheme://[userinfo@]host[:port][/path][?query][#fragment]; only http and https.
struct parsed_url {
    std::string scheme;  // lower case
    std::string host;    // IPv6 without brackets
    std::uint16_t port = 0;
    std::string target;  // path + query, at least "/"

    bool is_https() const { return scheme == "https"; }
    bool is_ipv6() const { return host.find(':') != std::string::npos; }
    // host (bracketed when IPv6) + ":" + port: what CONNECT wants.
    std::string authority() const;
    // Like authority() but without the port when it is the scheme's default (Host header).
    std::string host_header() const;
};

// Throws std::invalid_argument on anything it does not understand.
parsed_url parse_url(std::string_view url);

struct client_options {
    // HTTP proxy to go through (plain HTTP). Unset: connect directly.
    std::optional<std::string> proxy_host{};
    std::uint16_t proxy_port = 0;
    // CA bundle for TLS verification (the proxy's CA when going through the proxy, the test CA
    // when talking to a TLS server directly). Empty: the system default paths.
    std::string ca_file{};
    // Timeout of each connect / TLS handshake / write / read step (in stream(): between chunks).
    std::chrono::milliseconds timeout{10000};
    // 10 (HTTP/1.0) or 11 (HTTP/1.1).
    unsigned http_version = 11;

    // Verify the server certificate chain and name.
    bool verify_peer = true;
    // Name for SNI and certificate verification instead of the URL host. An IP address is
    // verified against IP SANs and sent without SNI.
    std::optional<std::string> tls_host{};
    // Direct mode only: TCP-connect here instead of the URL's host/port (like curl --connect-to);
    // Host header, SNI and verification still use the URL.
    std::optional<std::string> connect_host{};
    std::uint16_t connect_port = 0;
    // Extra headers for the CONNECT request and for absolute-form requests to the proxy.
    header_list proxy_headers{};
    // ALPN protocols offered in the TLS handshake (empty: no ALPN extension).
    std::vector<std::string> alpn{"http/1.1"};
    // Retry once on a fresh connection when a reused keep-alive connection turns out to be
    // closed before any response byte arrived.
    bool retry_stale_connection = true;
};

struct response {
    unsigned status = 0;
    std::string reason;
    unsigned version = 11;
    header_list headers;  // in wire order, names as received
    std::string body;     // de-chunked, not decompressed

    // First value of the header (case-insensitive name).
    std::optional<std::string> header(std::string_view name) const;
    std::vector<std::string> header_values(std::string_view name) const;
};

// Thrown when the proxy answers CONNECT with a non-2xx status.
class proxy_connect_error : public std::runtime_error {
  public:
    proxy_connect_error(unsigned status, std::string body, header_list headers);
    unsigned status;
    std::string body;
    header_list headers;
};

// One connection at a time, reused (keep-alive) for requests to the same scheme/host/port.
// Network errors and timeouts are thrown as std::system_error (Beast/Asio error codes, e.g.
// boost::beast::error::timeout); the connection is closed after any error.
class http_client {
  public:
    explicit http_client(client_options options = {});
    ~http_client();
    http_client(http_client&&) noexcept;
    http_client& operator=(http_client&&) noexcept;

    // Body and headers are sent as given; Host is added unless present, Content-Length is set
    // unless Content-Length or Transfer-Encoding is present. "Transfer-Encoding: chunked" makes
    // the body go out chunked. Interim 1xx responses are skipped.
    response request(std::string_view method, std::string_view url, const header_list& headers = {},
                     std::string body = {});
    response get(std::string_view url, const header_list& headers = {}) {
        return request("GET", url, headers);
    }
    response post(std::string_view url, std::string body, const header_list& headers = {}) {
        return request("POST", url, headers, std::move(body));
    }

    using head_handler = std::function<void(unsigned status, const header_list& headers)>;
    // Returns false to abort: the socket is closed at once (a client disconnect).
    using chunk_handler = std::function<bool(std::string_view chunk)>;

    // Like request(), but hands body bytes to on_chunk as soon as they are read from the socket.
    // Returns true when the response completed, false when on_chunk aborted it.
    bool stream(std::string_view method, std::string_view url, const header_list& headers,
                std::string body, const head_handler& on_head, const chunk_handler& on_chunk);

    // Closes the current connection (no TLS close_notify).
    void close();
    bool connected() const;

    // Number of TCP connections opened so far (to check keep-alive reuse).
    std::size_t connections_opened() const;
    // PEM of the leaf certificate presented in the last TLS handshake ("" if none yet).
    std::string peer_certificate_pem() const;
    // ALPN protocol selected in the last TLS handshake.
    std::string negotiated_alpn() const;
    const client_options& options() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

struct sse_event {
    std::string event;                               // "event:" field ("" if absent)
    std::string data;                                // "data:" lines joined with '\n'
    std::chrono::system_clock::time_point received;  // arrival of the bytes completing it
};

// Incremental text/event-stream parser (data/event fields; comments and other fields ignored).
class sse_parser {
  public:
    // Returns the events completed by this chunk, stamped with `now`.
    std::vector<sse_event> feed(std::string_view chunk, std::chrono::system_clock::time_point now =
                                                            std::chrono::system_clock::now());
    // An event left without its terminating blank line at the end of the stream, if any.
    std::optional<sse_event> finish(
        std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  private:
    void process_line(std::string_view line, std::chrono::system_clock::time_point now,
                      std::vector<sse_event>& out);

    std::string pending_;
    std::string event_;
    std::string data_;
    bool has_data_ = false;
};

struct sse_stream_result {
    unsigned status = 0;
    header_list headers;
    std::vector<sse_event> events;
    std::string raw;  // the whole body as received
};

// Streams the response and parses SSE events as they arrive (POST if body is non-empty, else
// GET). read_sse returns only the events.
sse_stream_result read_sse_stream(http_client& client, std::string_view url,
                                  const header_list& headers = {}, std::string body = {});
std::vector<sse_event> read_sse(http_client& client, std::string_view url,
                                const header_list& headers = {}, std::string body = {});

}  // namespace llm_proxy::test

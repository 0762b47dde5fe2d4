#pragma once
// One blocking client connection through the proxy whose bytes and timing the test controls
// exactly, for framing and pooling tests. For an https origin it sends `CONNECT host:port`,
// reads the 200 and does a TLS handshake (SNI, certificate verified for the host against the
// proxy's CA file); for an http origin the requests use absolute-form targets. Nothing is added
// to what the test sends: heads, bodies and their framing are written as given.
//
//   proxied_connection c(proxy.host(), proxy.port(), "https://api.openai.com", ca_file);
//   c.send(make_head("GET", c.target("/v1/models"), c.host_header()));
//   raw_response r = c.read_final_response();
//
// Every read and write is bounded by the timeout given to the constructor (per operation: a
// stream that keeps moving is never cut off). A timeout throws connection_timeout, a connection
// that ends early throws connection_closed (both std::runtime_error), except where a function
// says it returns false.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "support/http_client.hpp"  // header_list

namespace llm_proxy::test {

class connection_timeout : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};
class connection_closed : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct raw_response {
    enum class body_framing { none, length, chunked, close };

    unsigned version = 11;  // 10 or 11
    unsigned status = 0;
    std::string reason;
    header_list headers;  // in wire order
    header_list trailers;
    body_framing framing = body_framing::none;
    std::string body;               // empty when the body went to a sink
    std::uint64_t body_length = 0;  // de-chunked body bytes, also with a sink

    std::optional<std::string> header(std::string_view name) const;
    // Whether the server lets the connection stay open after this response.
    bool keep_alive() const;
};

// "METHOD target HTTP/1.x\r\nHost: host\r\n<headers>\r\n" (version 10 or 11). Nothing else is
// added: framing headers are the caller's.
std::string make_head(std::string_view method, std::string_view target, std::string_view host,
                      const header_list& headers = {}, unsigned version = 11);

class proxied_connection {
  public:
    // origin: "https://host[:port]" or "http://host[:port]" (a path is ignored).
    proxied_connection(const std::string& proxy_host, std::uint16_t proxy_port,
                       std::string_view origin, const std::string& ca_file,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));
    ~proxied_connection();
    proxied_connection(const proxied_connection&) = delete;
    proxied_connection& operator=(const proxied_connection&) = delete;

    bool tls() const;
    // The request target for `path_and_query` on this connection: as is inside a tunnel,
    // "http://host[:port]/..." (absolute-form) otherwise.
    std::string target(std::string_view path_and_query) const;
    // The Host header value for the origin.
    std::string host_header() const;

    // Writes all of `bytes` (one write call: one TLS record up to 16 KiB each). Throws when the
    // peer is gone or the write does not complete within the timeout.
    void send(std::string_view bytes);
    // Like send(), but returns false instead of throwing.
    bool try_send(std::string_view bytes);
    // Writes the head, waits `delay`, then writes the body: the proxy reads the head alone.
    void send_head_then_body(std::string_view head, std::string_view body,
                             std::chrono::milliseconds delay = std::chrono::milliseconds(50));

    using body_sink = std::function<void(std::string_view)>;
    // Reads the next response, interim 1xx ones included. Body bytes go to `sink` when given
    // (then raw_response::body stays empty), else into raw_response::body. A HEAD request's
    // response (head_request) has no body. A close-delimited body ends at EOF.
    raw_response read_response(bool head_request = false, const body_sink& sink = {});
    // read_response(), skipping interim 1xx responses.
    raw_response read_final_response(bool head_request = false, const body_sink& sink = {});

    // True when the peer closes the connection (EOF, TLS close_notify or reset) within
    // `timeout`. Bytes arriving meanwhile are kept (see pending()).
    bool peer_closed(std::chrono::milliseconds timeout);
    // Bytes received but not yet consumed by a response.
    const std::string& pending() const;
    // Closes the socket at once (no close_notify): an abrupt client disconnect (a FIN).
    void close();
    // Closes the socket with SO_LINGER 0 (no close_notify): the peer gets a TCP reset.
    void reset();
    // Shuts the sending side down (a FIN, no close_notify); the socket stays open for reading.
    void half_close();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace llm_proxy::test

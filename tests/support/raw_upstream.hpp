#pragma once
// A plain-TCP upstream on loopback (port 0) for desync tests: it records every byte each
// connection brings, parses requests out of them strictly (RFC 9112: CRLF lines, token field
// names, no obs-fold, no control characters in values, one framing field at most, strict
// chunked) and answers each request it parses as its policy says: with bytes, and/or by
// closing the connection. Bytes it cannot parse stop its answers on that connection and are
// kept as `problem` and `pending`.
//
// The default responder echoes the request: 200 with "X-Echo-Target: <target>" and a body
// "<method> <target> <body length>", so a client can tell its own answer from another's.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/http_client.hpp"  // header_list
#include "support/threaded_listener.hpp"

namespace llm_proxy::test {

struct strict_request {
    std::string method;
    std::string target;
    std::string version;  // "HTTP/1.1"
    header_list headers;
    std::string body;
    std::string raw;  // the message's bytes as received
};

// Parses one request from the front of `bytes`. Returns the request and sets `used`; nullopt
// with `problem` empty when more bytes are needed, with `problem` set when the bytes are not
// one unambiguous request.
std::optional<strict_request> parse_strict_request(std::string_view bytes, std::size_t& used,
                                                   std::string& problem);

class raw_upstream {
  public:
    struct connection_log {
        std::string received;  // every byte, in order
        std::vector<strict_request> requests;
        std::string pending;  // bytes after the last parsed request
        std::string problem;  // why parsing stopped ("" while it goes on)
        bool closed_by_peer = false;
        bool closed_here = false;  // closed after a reply that said so
    };
    // Returns the bytes to answer `r` with (several responses, garbage, nothing: "").
    using responder = std::function<std::string(const strict_request& r)>;
    // What to do with one request: send `bytes` (may be ""), then with `close` close the
    // connection (a FIN) without reading or answering anything after the request.
    struct reply {
        std::string bytes;
        bool close = false;
    };
    // `nth` counts the requests that came before `r` on its connection.
    using policy = std::function<reply(const strict_request& r, std::size_t nth)>;
    raw_upstream();
    ~raw_upstream();
    raw_upstream(const raw_upstream&) = delete;
    raw_upstream& operator=(const raw_upstream&) = delete;

    std::uint16_t port() const { return listener_.port(); }
    void set_responder(responder r);
    void set_policy(policy p);
    static std::string echo_response(const strict_request& r);

    std::vector<connection_log> connections() const;
    // Waits until pred(connections()) holds or `timeout` passes; returns the last snapshot.
    std::vector<connection_log> wait_for(
        const std::function<bool(const std::vector<connection_log>&)>& pred,
        std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    // Writes `bytes` on the connection that parsed a request whose target contains `marker`
    // (bytes sent late, after its response). False if there is no such open connection.
    bool send_late(std::string_view marker, std::string_view bytes);

  private:
    void serve(int fd, std::size_t index);

    mutable std::mutex mutex_;
    std::vector<connection_log> logs_;
    policy policy_;
    threaded_listener listener_;  // last: its threads use the members above
};

}  // namespace llm_proxy::test

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

#include "llm_proxy/flow_error.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy {

// Header fields in wire order, names as received.
using header_list = std::vector<std::pair<std::string, std::string>>;

// First value of a header, or nullopt.
std::optional<std::string_view> find_header(const header_list& headers, std::string_view name);

// The Content-Type is text/event-stream (any case, parameters allowed): a streamed (SSE) body.
bool is_event_stream(const header_list& headers);

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

// Changes a body as it streams (e.g. drops one SSE event). The engine hands it the body piece
// by piece and sends what it appends to `out`; bytes it keeps back it may send with a later
// piece or at the end. Installed on one flow by an addon (flow::transform_*_body).
class body_transform {
  public:
    virtual ~body_transform() = default;
    virtual void on_data(std::string_view in, std::string& out) = 0;
    // The body ended: append what was kept back.
    virtual void on_end(std::string& out) { (void)out; }
};

// A CONNECT relayed blind (not intercepted), as recorded with --log-tunnels. The flow's
// request holds method CONNECT, host and port; no response.
struct tunnel_stats {
    std::string sni;                        // server name of the ClientHello, if one was read
    std::uint64_t bytes_from_client = 0;    // relayed client -> upstream
    std::uint64_t bytes_from_upstream = 0;  // relayed upstream -> client
    // client_closed, upstream_closed (who closed first), idle_timeout or error
    std::string end;
};

// A request the proxy refused before relaying it (400, 404, 407, 408, 431, 501): what it
// answered and what it had read. With the head parsed, the flow's request holds its method,
// version and fields as received (never Proxy-Authorization); without, raw_head holds the
// first bytes of the head.
struct rejection {
    unsigned status = 0;   // the status the proxy answered with
    std::string target;    // the request-target as received ("" when not parsed)
    std::string raw_head;  // the head's first bytes when it could not be parsed
    bool raw_head_truncated = false;
    static constexpr std::size_t max_raw_head = 2048;
};

struct flow;

namespace llm {
struct summary;
}

// Per-flow state of an addon, typed: declare one slot per kind of state (e.g. a member of the
// addon), then slot.emplace(f, ...) and slot.find(f). The state is released when the flow
// ends, before the finished flow is handed on (on_flow_done).
template <class T>
class flow_slot {
  public:
    T* find(const flow& f) const;
    template <class... Args>
    T& emplace(flow& f, Args&&... args) const;
};

struct flow {
    std::string id;              // UUID v4
    std::string client_address;  // "ip:port"
    std::chrono::system_clock::time_point started_at{};
    std::chrono::steady_clock::time_point started{};
    std::chrono::steady_clock::duration duration{};
    // From the start until the response head was there (read from the upstream, or built by
    // an addon's local answer); nullopt when there was none.
    std::optional<std::chrono::steady_clock::duration> time_to_first_byte;

    request_head request;
    // The request body as sent upstream (the client's, or what an addon replaced it with),
    // captured up to the largest limit the addons asked for this flow. Before on_request it
    // holds what the engine read for addons that asked to see the body.
    captured_body request_body;
    std::optional<response_head> response;
    // The response body as sent to the client (after any transform), captured likewise.
    captured_body response_body;

    // --- Changes addons make; the engine carries them out.

    // Answers without contacting the upstream; from on_request_headers or on_request. With
    // `pieces` (offsets where pieces end) the body goes out in pieces, chunked to HTTP/1.1
    // clients (e.g. one SSE event per chunk), instead of with a Content-Length.
    void reply(response_head head, std::string body, std::vector<std::size_t> pieces = {});
    void reply(unsigned status, header_list headers, std::string body);
    bool answered_locally = false;
    std::string local_response_body;
    std::vector<std::size_t> local_response_pieces;

    // Sends `body` upstream instead of the client's (from on_request; the engine reads and
    // drops the rest of the client's body and fixes the framing up). `by` names the addon in
    // the record (tag "request_body_changed_by").
    void replace_request_body(std::string body, std::string_view by);
    std::optional<std::string> request_body_replacement;
    // Transforms the request body as it streams (from on_request_headers or on_request) or the
    // response body (from on_response_headers); tagged like a replacement.
    void transform_request_body(std::shared_ptr<body_transform> t, std::string_view by);
    void transform_response_body(std::shared_ptr<body_transform> t, std::string_view by);
    std::vector<std::shared_ptr<body_transform>> request_transforms;
    std::vector<std::shared_ptr<body_transform>> response_transforms;

    flow_error error_kind = flow_error::none;  // why the flow failed (none: it did not)
    std::string error;                         // human readable detail
    // Set by the addon chain when a hook threw: "addon <name> failed in <hook>: <what>".
    std::string addon_failure;

    std::uint64_t request_bytes = 0;   // body bytes received from the client
    std::uint64_t response_bytes = 0;  // body bytes sent to the client

    // What the LLM observer understood of the call (nullptr: not an LLM API call). Set when
    // the response ends or the flow fails; the record's "llm" object.
    std::shared_ptr<const llm::summary> llm;

    // Set for a blind tunnel's record (--log-tunnels); such a flow only reaches on_flow_done.
    std::optional<tunnel_stats> tunnel;
    // Set for a refused request; such a flow only reaches on_error and on_flow_done.
    std::optional<rejection> rejected;

    // Free-form annotations addons leave for each other and for the record
    // (e.g. "scheme_upgraded" -> "true").
    std::map<std::string, std::string> tags;

    double duration_ms() const;

    // Addon state (see flow_slot); release_state() drops all of it.
    void* find_state(const void* slot) const;
    void put_state(const void* slot, std::shared_ptr<void> value);
    void release_state() { state_.clear(); }

  private:
    std::vector<std::pair<const void*, std::shared_ptr<void>>> state_;
};

// What a flow holds on the heap, roughly: the strings that grow with the traffic (bodies, head
// fields, tags, the LLM call's answers), and a fixed allowance for the rest (the flow itself,
// small strings, allocator overhead). Queues of flows are bounded by it.
std::size_t flow_footprint(const flow& f);

template <class T>
T* flow_slot<T>::find(const flow& f) const {
    return static_cast<T*>(f.find_state(this));
}

template <class T>
template <class... Args>
T& flow_slot<T>::emplace(flow& f, Args&&... args) const {
    auto value = std::make_shared<T>(std::forward<Args>(args)...);
    T& ref = *value;
    f.put_state(this, std::move(value));
    return ref;
}

}  // namespace llm_proxy

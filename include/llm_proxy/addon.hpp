#pragma once
// Addons watch and change flows. The engine calls the hooks in chain order on the connection's
// own thread; hooks must not block (hand slow work to another thread and co_await it in an
// awaitable hook). One addon instance serves every flow of every worker.
//
//   request side                         response side
//   on_request_headers  (rewrite, reply)  on_response_headers (status, headers, transform)
//   [body read up to request_buffer_limit] on_response_body    (each piece as sent)
//   on_request          (replace, reply)   on_response_end  |  on_error
//                                          on_flow_done        (the finished flow, immutable)
//
// An exception thrown by a hook is caught by the chain and logged with the addon's name; the
// flow then fails with `addon_error`: answered 500 with a JSON error when nothing was sent to
// the client yet, cut off otherwise. Every addon then gets on_error, and on_flow_done.

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/flow.hpp"

namespace llm_proxy {

class addon {
  public:
    virtual ~addon() = default;
    virtual std::string_view name() const = 0;

    // --- What the addon wants the engine to keep, per flow and direction. The flow keeps the
    // largest of all addons' limits; 0: nothing.

    // Request body bytes to read before on_request (so on_request sees the body in
    // flow.request_body); asked after on_request_headers. A longer body is handed over
    // truncated (flow.request_body.truncated) and streams on to the upstream.
    virtual std::size_t request_buffer_limit(const flow&) const { return 0; }
    // Request body bytes (as sent) to capture in flow.request_body; asked after
    // on_request_headers.
    virtual std::size_t request_capture_limit(const flow&) const { return 0; }
    // Response body bytes (as sent) to capture in flow.response_body; asked after
    // on_response_headers.
    virtual std::size_t response_capture_limit(const flow&) const { return 0; }

    // --- Request side.

    // The request head is known. May rewrite method, scheme, host, port, target and headers,
    // answer locally (flow.reply) or install a request body transform.
    virtual void on_request_headers(flow&) {}
    // The request is ready to go upstream (its body read up to request_buffer_limit). May
    // await, answer locally (flow.reply), replace the body (flow.replace_request_body) or
    // rewrite the head.
    virtual boost::asio::awaitable<void> on_request(flow&) { co_return; }

    // --- Response side.

    // The response head arrived from the upstream (or the local answer is built). May await,
    // set status, reason and headers (honoured), or install a response body transform.
    virtual boost::asio::awaitable<void> on_response_headers(flow&) { co_return; }
    // A piece of the response body as it goes to the client (after transforms; content
    // encoding as on the wire, chunk framing removed).
    virtual void on_response_body(flow&, std::string_view) {}
    // The response was relayed completely.
    virtual void on_response_end(flow&) {}
    // The flow failed: flow.error_kind / flow.error say why.
    virtual void on_error(flow&) {}
    // The flow is finished (after on_response_end or on_error), its addon state released; it
    // no longer changes and may be kept (e.g. queued for a writer thread) without a copy.
    virtual void on_flow_done(const std::shared_ptr<const flow>&) {}

    // --- Holding the response's end (durable records).

    // True when the addon must finish its work on a response before the client can see the
    // response complete (dir_logger --fsync record). When an addon of the chain says so, the
    // engine changes the order at the end of a response: once the whole response is in hand,
    // it runs on_response_end, then awaits before_response_end of each holding addon, and only
    // then writes the response's last bytes (or, without a body, its head). If that last write
    // fails, on_error follows on_response_end.
    virtual bool holds_response_end() const { return false; }
    virtual boost::asio::awaitable<void> before_response_end(const flow&) { co_return; }

    // --- Capacity.

    // Awaited before the engine handles each new request (not on CONNECT): an addon that
    // cannot take more flows right now (a full record queue) holds new requests here until it
    // can (backpressure; flows in progress go on). Must return once the proxy stops.
    virtual boost::asio::awaitable<void> wait_for_capacity() { co_return; }

    // Shutdown: flush everything.
    virtual void close() {}
};

// The ordered addons of one proxy instance, built once from the subcommand. Each hook runs the
// addons in order and contains their exceptions (see the top of this file): after one throws,
// the rest of that hook is skipped and flow.addon_failure says what happened.
class addon_chain {
  public:
    void add(std::shared_ptr<addon> a);
    const std::vector<std::shared_ptr<addon>>& addons() const { return addons_; }

    std::size_t request_buffer_limit(const flow& f) const;
    std::size_t request_capture_limit(const flow& f) const;
    std::size_t response_capture_limit(const flow& f) const;

    // Each returns false when an addon threw (the flow must fail with `addon_error`).
    bool on_request_headers(flow& f);
    boost::asio::awaitable<bool> on_request(flow& f);
    boost::asio::awaitable<bool> on_response_headers(flow& f);
    bool on_response_body(flow& f, std::string_view chunk);
    // Every addon gets these, whatever the others throw (a throw is logged and noted in the
    // flow's tags as "addon_failure"; the response is already complete).
    void on_response_end(flow& f);
    void on_error(flow& f);
    void on_flow_done(const std::shared_ptr<const flow>& f);
    // Whether an addon holds the response's end, and the holding addons' before_response_end
    // (each runs whatever the others throw).
    bool holds_response_end() const;
    boost::asio::awaitable<void> before_response_end(flow& f);
    // Every addon's wait_for_capacity, in order (an exception is logged and ends the wait).
    boost::asio::awaitable<void> wait_for_capacity();
    void close();

  private:
    std::vector<std::shared_ptr<addon>> addons_;
};

}  // namespace llm_proxy

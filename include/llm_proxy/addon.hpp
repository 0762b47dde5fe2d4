#pragma once
// Addons observe and shape flows. The engine calls the hooks in chain order on the
// connection's own thread; hooks must not block (hand slow work to another thread).

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "llm_proxy/flow.hpp"

namespace llm_proxy {

class addon {
  public:
    virtual ~addon() = default;
    virtual std::string_view name() const = 0;

    // How many body bytes of each direction this addon wants captured in the flow
    // (flow::request_body / flow::response_body). 0: none.
    virtual std::size_t body_capture_limit() const { return 0; }

    // True when the addon needs the complete request body of this flow before on_request
    // (e.g. a cache key); asked after on_request_headers. The engine then reads the body
    // before calling on_request, up to body_capture_limit: a longer body is handed over
    // truncated (flow.request_body.truncated) and streams on to the upstream. Otherwise
    // on_request runs as soon as the head is known and the body streams.
    virtual bool needs_request_body(const flow&) const { return false; }

    // The request head is known. May rewrite it (scheme, host, headers).
    virtual void on_request_headers(flow&) {}
    // The request is ready to go upstream. May answer directly by setting flow.response,
    // flow.local_response_body and flow.answered_locally; then no upstream request is made.
    virtual boost::asio::awaitable<void> on_request(flow&) { co_return; }
    // Response head received from upstream (or produced locally); may add headers.
    virtual void on_response_headers(flow&) {}
    // A piece of the response body, as sent to the client.
    virtual void on_response_body(flow&, std::string_view) {}
    // The response was relayed completely.
    virtual void on_response_end(flow&) {}
    // The flow failed: flow.error_kind / flow.error say why.
    virtual void on_error(flow&) {}
    // Shutdown: flush everything.
    virtual void close() {}
};

// The ordered addons of one proxy instance, built once from the subcommand.
class addon_chain {
  public:
    void add(std::shared_ptr<addon> a);
    const std::vector<std::shared_ptr<addon>>& addons() const { return addons_; }

    std::size_t body_capture_limit() const;
    bool needs_request_body(const flow& f) const;

    void on_request_headers(flow& f);
    boost::asio::awaitable<void> on_request(flow& f);
    void on_response_headers(flow& f);
    void on_response_body(flow& f, std::string_view chunk);
    void on_response_end(flow& f);
    void on_error(flow& f);
    void close();

  private:
    std::vector<std::shared_ptr<addon>> addons_;
};

}  // namespace llm_proxy

#pragma once
// Understands LLM API calls as they pass: recognises them by host and path, reassembles the
// answer and usage from the response body as it streams (never holding the raw stream), prices
// the call and leaves the result in flow.llm for the record, the verbose line and apiAuditor.
// With --inject-usage it asks the upstream for the usage of OpenAI chat streams that did not
// ask for it, and removes the extra usage chunk from what the client receives.

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/llm/parser.hpp"
#include "llm_proxy/llm/prices.hpp"
#include "llm_proxy/llm/recognise.hpp"

namespace llm_proxy::addons {

struct llm_observer_options {
    llm::host_map hosts;
    std::shared_ptr<const llm::price_table> prices;  // nullptr: calls are not priced
    bool inject_usage = false;
    // A compressed response is decoded as it passes, up to this many decoded bytes (a
    // decompression bomb stops there; the call is then marked incomplete).
    std::size_t max_decoded_body = 256u << 20;
};

class llm_observer : public addon {
  public:
    explicit llm_observer(llm_observer_options options);
    std::string_view name() const override { return "llm"; }

    // The API of a flow recognised as an LLM call (from on_request_headers on).
    const llm::endpoint* endpoint_of(const flow& f) const;

    std::size_t request_buffer_limit(const flow& f) const override;
    void on_request_headers(flow& f) override;
    boost::asio::awaitable<void> on_request(flow& f) override;
    boost::asio::awaitable<void> on_response_headers(flow& f) override;
    void on_response_body(flow& f, std::string_view chunk) override;
    void on_response_end(flow& f) override;
    void on_error(flow& f) override;

  private:
    struct state;
    void feed(flow& f, state& st, std::string_view decoded);
    void finish(flow& f, bool complete);
    void warn_unpriced(const std::string& model);

    llm_observer_options options_;
    flow_slot<state> slot_;
    std::mutex warned_mutex_;
    std::set<std::string> warned_;
};

// Adds "stream_options": {"include_usage": true} to an OpenAI chat request body that streams
// without it; nullopt when the body needs no change or cannot be changed safely.
std::optional<std::string> with_usage_requested(std::string_view body);

}  // namespace llm_proxy::addons

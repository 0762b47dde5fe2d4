#pragma once
// --inject-usage: the response side. Splits an OpenAI chat stream into its events, hands every
// event to the parser (`seen`), and drops the usage-only chunk ("choices": [] with "usage")
// that the client did not ask for; every other byte passes unchanged and in order.

#include <functional>
#include <string>
#include <string_view>

#include "llm_proxy/flow.hpp"

namespace llm_proxy::addons {

class usage_chunk_filter : public body_transform {
  public:
    explicit usage_chunk_filter(std::function<void(std::string_view)> seen)
        : seen_(std::move(seen)) {}
    void on_data(std::string_view in, std::string& out) override;
    void on_end(std::string& out) override;

    // The event (its lines, blank line included) is a chat chunk with usage and no choices.
    static bool is_usage_only(std::string_view event);

    // An unfinished event longer than this passes on as it is (it cannot be usage-only).
    static constexpr std::size_t max_pending = 1u << 20;

  private:
    // In an overlong event: where its blank line ends in `in` (the scan goes on from the
    // previous piece), or npos.
    std::size_t overlong_end(std::string_view in);
    void pass(std::string_view part, std::string& out);

    std::function<void(std::string_view)> seen_;
    std::string pending_;    // an unfinished event
    bool overlong_ = false;  // in an event longer than max_pending: passing it on as it comes
    // The scan of an overlong event across pieces: the next byte starts a line; the last one
    // was a CR (a LF next completes its CRLF).
    bool line_start_ = true;
    bool after_cr_ = false;
    // An event ended with a CR at the end of a piece: a LF first in the next one is its end.
    bool lf_may_end_ = false;
};

}  // namespace llm_proxy::addons

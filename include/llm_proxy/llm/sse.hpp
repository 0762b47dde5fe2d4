#pragma once
// An incremental server-sent events decoder following the WHATWG event stream rules: lines
// end at CRLF, LF or CR; "data" lines are joined with \n; an event is dispatched at a blank
// line (an event without data is not); comment lines (":...") and the "id" and "retry"
// fields are ignored; a leading UTF-8 BOM is skipped; an event still open when the stream
// ends is not dispatched. Bytes may arrive in any pieces. Memory: the unfinished line and
// the unfinished event only, each bounded by `max_event_bytes` (a larger event is dropped
// and counted).

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace llm_proxy::llm {

class sse_decoder {
  public:
    // Called for each event with its type ("message" when the stream named none) and data.
    using handler = std::function<void(std::string_view event, std::string_view data)>;

    explicit sse_decoder(handler on_event, std::size_t max_event_bytes = 8u << 20);

    void feed(std::string_view bytes);

    // Events dropped for exceeding max_event_bytes.
    std::size_t dropped_events() const { return dropped_; }
    // Bytes held for the unfinished line and event.
    std::size_t buffered_bytes() const { return line_.size() + data_.size() + event_.size(); }

  private:
    void line(std::string_view l);
    void dispatch();

    handler on_event_;
    std::size_t max_;
    std::string line_;   // an unfinished line carried over from an earlier piece
    std::string data_;   // the current event's data lines, each followed by \n
    std::string event_;  // the current event's type
    bool bom_checked_ = false;
    bool skip_lf_ = false;        // the last line ended with CR: a following LF belongs to it
    bool line_too_long_ = false;  // the unfinished line exceeded the bound: drop it
    bool event_too_big_ = false;  // the current event exceeded the bound: drop it
    std::size_t dropped_ = 0;
};

}  // namespace llm_proxy::llm

#pragma once
// When the pieces of a streamed (Server-Sent Events) response arrived, for the web view's
// timeline of a streamed answer: one point per piece of the body read from the upstream, with
// the bytes and the complete events so far. Built on the worker as the body passes (a few
// comparisons per byte, no allocation past the bound), handed to the store when the flow ends.

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

namespace llm_proxy::web {

class stream_timeline {
  public:
    struct point {
        double ms = 0;             // since the flow started
        std::uint64_t bytes = 0;   // body bytes so far, this piece's included
        std::uint64_t events = 0;  // complete events so far
    };
    // Points kept; pieces past them are still counted (`pieces`, `bytes`, `events`).
    static constexpr std::size_t max_points = 2048;

    // `count_events` false: the body has a content coding (gzip...), its bytes are not lines.
    explicit stream_timeline(bool count_events = true) : count_events_(count_events) {}

    // A piece of the body (as relayed) that arrived `ms` after the flow started.
    void add(double ms, std::string_view piece);

    const std::vector<point>& points() const { return points_; }
    std::uint64_t pieces() const { return pieces_; }
    std::uint64_t bytes() const { return bytes_; }
    // Events ended by an empty line after at least one field line (comments alone, such as
    // ": ping", make none), with LF, CR or CRLF line ends split anywhere between pieces.
    std::uint64_t events() const { return events_; }

  private:
    bool count_events_;
    std::vector<point> points_;
    std::uint64_t pieces_ = 0;
    std::uint64_t bytes_ = 0;
    std::uint64_t events_ = 0;
    bool at_line_start_ = true;
    bool after_cr_ = false;
    bool field_seen_ = false;  // a field line since the last event ended
};

// {"pieces": N, "bytes": N, "events": N, "points": [[ms, bytes, events], ...]}; the points
// may be fewer than the pieces (max_points).
nlohmann::json timeline_json(const stream_timeline& t);

}  // namespace llm_proxy::web

#include "llm_proxy/web/stream_timeline.hpp"

#include <cmath>

namespace llm_proxy::web {

void stream_timeline::add(double ms, std::string_view piece) {
    for (char c : count_events_ ? piece : std::string_view()) {
        if (c == '\n' && after_cr_) {
            after_cr_ = false;  // the LF of a CRLF: the line already ended
            continue;
        }
        after_cr_ = false;
        if (c == '\r' || c == '\n') {
            if (at_line_start_ && field_seen_) {
                ++events_;
                field_seen_ = false;
            }
            at_line_start_ = true;
            after_cr_ = c == '\r';
        } else {
            if (at_line_start_ && c != ':') {
                field_seen_ = true;
            }
            at_line_start_ = false;
        }
    }
    ++pieces_;
    bytes_ += piece.size();
    if (points_.size() < max_points) {
        points_.push_back({ms, bytes_, events_});
    }
}

nlohmann::json timeline_json(const stream_timeline& t) {
    auto points = nlohmann::json::array();
    for (const auto& p : t.points()) {
        points.push_back({std::round(p.ms * 1000) / 1000, p.bytes, p.events});
    }
    return {{"pieces", t.pieces()},
            {"bytes", t.bytes()},
            {"events", t.events()},
            {"points", std::move(points)}};
}

}  // namespace llm_proxy::web

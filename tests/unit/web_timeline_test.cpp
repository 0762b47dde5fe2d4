// The web view's stream timeline: the events of a Server-Sent Events body are counted the same
// however the body is cut into pieces and whatever its line ends; comments make no event; each
// piece is a point with the bytes and events so far, up to the bound.

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "llm_proxy/web/stream_timeline.hpp"

namespace llm_proxy::web {
namespace {

std::uint64_t events_in(const std::vector<std::string>& pieces) {
    stream_timeline t;
    double ms = 0;
    for (const auto& p : pieces) {
        t.add(ms++, p);
    }
    return t.events();
}

// `body` cut at every position into two pieces, and into single bytes.
void expect_events_whatever_the_cuts(const std::string& body, std::uint64_t expected) {
    EXPECT_EQ(events_in({body}), expected) << body;
    for (std::size_t cut = 0; cut <= body.size(); ++cut) {
        EXPECT_EQ(events_in({body.substr(0, cut), body.substr(cut)}), expected)
            << "cut at " << cut << " of " << body;
    }
    std::vector<std::string> bytes;
    for (char c : body) {
        bytes.emplace_back(1, c);
    }
    EXPECT_EQ(events_in(bytes), expected) << body;
}

TEST(WebTimeline, CountsEventsWithAnyLineEndsAndAnyCuts) {
    expect_events_whatever_the_cuts("data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n", 3);
    expect_events_whatever_the_cuts("data: a\r\n\r\ndata: b\r\n\r\n", 2);
    expect_events_whatever_the_cuts("data: a\r\rdata: b\r\r", 2);
    // Anthropic's shape: an event line and a data line make one event.
    expect_events_whatever_the_cuts(
        "event: message_start\ndata: {}\n\nevent: ping\ndata: {}\n\nevent: message_stop\n"
        "data: {}\n\n",
        3);
    // A multi-line event is one event; an event not ended yet is not counted.
    expect_events_whatever_the_cuts("data: a\ndata: b\n\ndata: c\n", 1);
}

TEST(WebTimeline, CommentsAndBlankLinesMakeNoEvent) {
    expect_events_whatever_the_cuts(": ping\n\n", 0);
    expect_events_whatever_the_cuts("\n\n\r\n: keep-alive\n\ndata: x\n\n\n\n", 1);
    expect_events_whatever_the_cuts("", 0);
}

TEST(WebTimeline, EachPieceIsAPointWithTheTotalsSoFar) {
    stream_timeline t;
    t.add(1.5, "data: a\n");
    t.add(10.25, "\ndata: b\n\n");
    t.add(20, ": ping\n\n");
    ASSERT_EQ(t.points().size(), 3u);
    EXPECT_EQ(t.points()[0].ms, 1.5);
    EXPECT_EQ(t.points()[0].bytes, 8u);
    EXPECT_EQ(t.points()[0].events, 0u);
    EXPECT_EQ(t.points()[1].ms, 10.25);
    EXPECT_EQ(t.points()[1].bytes, 18u);
    EXPECT_EQ(t.points()[1].events, 2u);
    EXPECT_EQ(t.points()[2].bytes, 26u);
    EXPECT_EQ(t.points()[2].events, 2u);
    EXPECT_EQ(t.pieces(), 3u);
    EXPECT_EQ(t.bytes(), 26u);

    auto j = timeline_json(t);
    EXPECT_EQ(j["events"], 2);
    EXPECT_EQ(j["pieces"], 3);
    EXPECT_EQ(j["bytes"], 26);
    EXPECT_EQ(j["points"][1], (nlohmann::json{10.25, 18, 2}));
}

TEST(WebTimeline, ACodedBodyCountsPiecesAndBytesButNoEvents) {
    stream_timeline t(false);
    t.add(1, "data: a\n\n");
    t.add(2, "\x1f\x8b\n\n");
    EXPECT_EQ(t.events(), 0u);
    EXPECT_EQ(t.pieces(), 2u);
    EXPECT_EQ(t.bytes(), 13u);
    EXPECT_EQ(t.points().back().events, 0u);
}

TEST(WebTimeline, PointsAtOneBelowAtAndOneAboveTheBound) {
    for (std::size_t n : {stream_timeline::max_points - 1, stream_timeline::max_points,
                          stream_timeline::max_points + 1}) {
        stream_timeline t;
        for (std::size_t i = 0; i < n; ++i) {
            t.add(static_cast<double>(i), "data: x\n\n");
        }
        EXPECT_EQ(t.points().size(), std::min(n, stream_timeline::max_points)) << n;
        EXPECT_EQ(t.pieces(), n);
        EXPECT_EQ(t.events(), n);
        EXPECT_EQ(t.points().back().ms,
                  static_cast<double>(std::min(n, stream_timeline::max_points) - 1));
    }
}

TEST(WebTimeline, PointsStopAtTheBoundWhileTheTotalsGoOn) {
    stream_timeline t;
    const std::size_t n = stream_timeline::max_points + 10;
    for (std::size_t i = 0; i < n; ++i) {
        t.add(static_cast<double>(i), "data: x\n\n");
    }
    EXPECT_EQ(t.points().size(), stream_timeline::max_points);
    EXPECT_EQ(t.pieces(), n);
    EXPECT_EQ(t.events(), n);
    EXPECT_EQ(t.bytes(), n * 9);
    EXPECT_EQ(t.points().back().events, stream_timeline::max_points);
}

}  // namespace
}  // namespace llm_proxy::web

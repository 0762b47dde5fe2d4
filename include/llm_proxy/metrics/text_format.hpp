#pragma once
// The Prometheus text exposition format, version 0.0.4: one family at a time, each with its
// # HELP and # TYPE lines, then its samples.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_proxy::metrics {

inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

using label = std::pair<std::string_view, std::string_view>;

// A histogram as the scrape sees it: `counts[i]` observations in bucket i (not cumulative),
// the last entry for values above every bound (+Inf).
struct histogram_snapshot {
    std::span<const double> bounds;
    std::vector<std::uint64_t> counts;  // bounds.size() + 1 entries
    double sum = 0;
};

class text_writer {
  public:
    // Starts a family: "# HELP name help" and "# TYPE name type" (counter, gauge, histogram).
    void family(std::string_view name, std::string_view type, std::string_view help);
    // One sample line: name{labels} value.
    void sample(std::string_view name, std::span<const label> labels, double value);
    void sample(std::string_view name, std::initializer_list<label> labels, double value) {
        sample(name, std::span<const label>(labels.begin(), labels.size()), value);
    }
    // name_bucket{labels,le="..."} (cumulative, ending with le="+Inf"), name_sum and name_count
    // (the sum of the counts, so it always equals the +Inf bucket).
    void histogram(std::string_view name, std::span<const label> labels,
                   const histogram_snapshot& h);

    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

// A label value as the format writes it: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view value);
// A HELP text: backslash and newline escaped.
std::string escape_help(std::string_view help);
// A sample value: integers without a fraction, "+Inf", "-Inf", "NaN", else shortest round-trip.
std::string format_value(double value);

}  // namespace llm_proxy::metrics

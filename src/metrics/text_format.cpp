#include "llm_proxy/metrics/text_format.hpp"

#include <charconv>
#include <cmath>

namespace llm_proxy::metrics {

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string escape_help(std::string_view help) {
    std::string out;
    out.reserve(help.size());
    for (char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string format_value(double value) {
    if (std::isnan(value)) {
        return "NaN";
    }
    if (std::isinf(value)) {
        return value > 0 ? "+Inf" : "-Inf";
    }
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    if (ec != std::errc()) {
        return "NaN";
    }
    return std::string(buf, end);
}

void text_writer::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += escape_help(help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

namespace {

void append_labels(std::string& out, std::span<const label> labels, std::string_view le = {}) {
    if (labels.empty() && le.empty()) {
        return;
    }
    out += '{';
    bool first = true;
    for (const auto& [name, value] : labels) {
        if (!first) {
            out += ',';
        }
        first = false;
        out += name;
        out += "=\"";
        out += escape_label_value(value);
        out += '"';
    }
    if (!le.empty()) {
        if (!first) {
            out += ',';
        }
        out += "le=\"";
        out += le;
        out += '"';
    }
    out += '}';
}

}  // namespace

void text_writer::sample(std::string_view name, std::span<const label> labels, double value) {
    out_ += name;
    append_labels(out_, labels);
    out_ += ' ';
    out_ += format_value(value);
    out_ += '\n';
}

void text_writer::histogram(std::string_view name, std::span<const label> labels,
                            const histogram_snapshot& h) {
    std::uint64_t cumulative = 0;
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
        cumulative += i < h.counts.size() ? h.counts[i] : 0;
        out_ += bucket;
        append_labels(out_, labels, i < h.bounds.size() ? format_value(h.bounds[i]) : "+Inf");
        out_ += ' ';
        out_ += std::to_string(cumulative);
        out_ += '\n';
    }
    out_ += name;
    out_ += "_sum";
    append_labels(out_, labels);
    out_ += ' ';
    out_ += format_value(h.sum);
    out_ += '\n';
    out_ += name;
    out_ += "_count";
    append_labels(out_, labels);
    out_ += ' ';
    out_ += std::to_string(cumulative);  // the +Inf bucket, always
    out_ += '\n';
}

}  // namespace llm_proxy::metrics

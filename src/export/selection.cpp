#include "llm_proxy/export/selection.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::exporter {

namespace {

std::optional<unsigned> code(std::string_view s) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 100 || v > 599) {
        return std::nullopt;
    }
    return v;
}

// The host without its port ("[v6]" keeps its brackets).
std::string_view bare_host(std::string_view host) {
    if (host.starts_with("[")) {
        auto end = host.find(']');
        return end == std::string_view::npos ? host : host.substr(0, end + 1);
    }
    auto colon = host.rfind(':');
    return colon == std::string_view::npos ? host : host.substr(0, colon);
}

// Why a selected-by-status-ok flow is not "ok", or nullopt.
std::optional<std::string> not_ok(const flow_view& f) {
    if (!f.error_kind.empty()) {
        return "flow failed (" + std::string(f.error_kind) + ")";
    }
    if (!f.has_response) {
        return std::string("no response");
    }
    if (f.status < 200 || f.status > 299) {
        return "status " + std::to_string(f.status);
    }
    if (f.llm) {
        const auto& c = f.llm->call;
        if (c.error) {
            return std::string("API error");
        }
        if (c.incomplete) {
            return std::string("incomplete answer");
        }
        for (const auto& a : c.answers) {
            if (a.truncated) {
                return std::string("answer cut at the parser's memory bound");
            }
        }
    }
    return std::nullopt;
}

}  // namespace

status_filter status_filter::parse(std::string_view text) {
    status_filter f;
    if (text == "ok") {
        return f;
    }
    if (text == "all") {
        f.m = mode::all;
        return f;
    }
    f.m = mode::codes;
    std::string_view rest = text;
    while (true) {
        auto comma = rest.find(',');
        auto item = trim_space(rest.substr(0, comma));
        if (item.size() == 3 && (item.ends_with("xx") || item.ends_with("XX")) && item[0] >= '1' &&
            item[0] <= '5') {
            unsigned base = static_cast<unsigned>(item[0] - '0') * 100;
            f.ranges.emplace_back(base, base + 99);
        } else if (auto c = code(item)) {
            f.ranges.emplace_back(*c, *c);
        } else {
            throw std::invalid_argument("--status '" + std::string(text) +
                                        "': expected ok, all, or status codes and classes "
                                        "such as 200,429,5xx");
        }
        if (comma == std::string_view::npos) {
            break;
        }
        rest = rest.substr(comma + 1);
    }
    return f;
}

std::optional<std::string> rejected(const selection& s, const flow_view& f) {
    if (f.tunnel) {
        return std::string("blind tunnel (no HTTP inside is known)");
    }
    if (s.llm_only && !f.llm) {
        return std::string("not an LLM call");
    }
    if (s.since && f.time < *s.since) {
        return std::string("before --since");
    }
    if (s.until && f.time >= *s.until) {
        return std::string("not before --until");
    }
    if (!s.hosts.empty()) {
        std::string host = to_lower(f.host);
        std::string_view bare = bare_host(host);
        // The URL leaves a default port out: "host:443" names it all the same.
        std::string with_port = host;
        if (bare.size() == host.size()) {
            with_port += istarts_with(f.url, "https:") ? ":443" : ":80";
        }
        bool any = std::any_of(s.hosts.begin(), s.hosts.end(), [&](const std::string& h) {
            return h == host || h == bare || h == with_port;
        });
        if (!any) {
            return std::string("host not selected");
        }
    }
    if (!s.providers.empty()) {
        if (!f.llm || std::find(s.providers.begin(), s.providers.end(), f.llm->call.provider) ==
                          s.providers.end()) {
            return std::string("provider not selected");
        }
    }
    if (s.model) {
        if (!f.llm || !(std::regex_search(f.llm->call.request_model, *s.model) ||
                        std::regex_search(f.llm->call.response_model, *s.model))) {
            return std::string("model not selected");
        }
    }
    switch (s.status.m) {
        case status_filter::mode::all:
            break;
        case status_filter::mode::ok:
            if (auto why = not_ok(f)) {
                return why;
            }
            break;
        case status_filter::mode::codes: {
            bool any =
                std::any_of(s.status.ranges.begin(), s.status.ranges.end(), [&](const auto& r) {
                    return f.has_response && f.status >= r.first && f.status <= r.second;
                });
            if (!any) {
                return f.has_response ? "status " + std::to_string(f.status)
                                      : std::string("no response");
            }
            break;
        }
    }
    return std::nullopt;
}

}  // namespace llm_proxy::exporter

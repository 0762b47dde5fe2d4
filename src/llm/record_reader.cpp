#include "llm_proxy/llm/record_reader.hpp"

#include <boost/url/parse.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "llm_proxy/llm/parser.hpp"
#include "llm_proxy/llm/record_json.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::llm {

using json = nlohmann::json;

namespace {

int number(std::string_view s, std::size_t at, std::size_t len, bool& ok) {
    int v = 0;
    if (at + len > s.size()) {
        ok = false;
        return 0;
    }
    auto [p, ec] = std::from_chars(s.data() + at, s.data() + at + len, v);
    ok = ok && ec == std::errc() && p == s.data() + at + len;
    return v;
}

// The decoded body text of a record's request or response (base64 decoded when marked so).
std::string body_of(const json& part) {
    std::string body = part.value("body", "");
    if (part.value("body_encoding", "") == "base64") {
        return base64_decode(body).value_or("");
    }
    return body;
}

std::optional<summary> compute(const json& record, const read_options& o, const std::string& host,
                               const std::string& target, const std::string& method,
                               std::chrono::system_clock::time_point at) {
    if (!recognise(host, target, method, o.hosts != nullptr ? *o.hosts : host_map{})) {
        return std::nullopt;  // not an LLM call: no body is decoded
    }
    const auto& req = record.value("request", json::object());
    std::string request_body = body_of(req);
    std::string response_body;
    record_bodies b;
    b.request_body = request_body;
    auto resp = record.find("response");
    if (resp != record.end() && resp->is_object()) {
        response_body = body_of(*resp);
        b.has_response = true;
        b.response_body = response_body;
        b.response_complete = !resp->value("body_truncated", false) && !record.contains("error");
        auto tags = record.value("tags", json::object());
        b.cache_hit = tags.is_object() && tags.value("cache", "") == "HIT";
    }
    return compute_call(host, target, method, at, b, o);
}

}  // namespace

namespace {

// "YYYY-MM-DD" of the UTC day `t` falls on (a record's own date may be in another zone).
std::string utc_day(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    year_month_day ymd{floor<days>(t)};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return buf;
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_timestamp(std::string_view s) {
    using namespace std::chrono;
    bool ok = true;
    int y = number(s, 0, 4, ok), mo = number(s, 5, 2, ok), d = number(s, 8, 2, ok);
    if (!ok || s.size() < 10 || s[4] != '-' || s[7] != '-') {
        return std::nullopt;
    }
    year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    system_clock::time_point t = sys_days(ymd);
    if (s.size() == 10) {
        return t;
    }
    if (s.size() < 19 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ')) {
        return std::nullopt;
    }
    int h = number(s, 11, 2, ok), mi = number(s, 14, 2, ok), se = number(s, 17, 2, ok);
    if (!ok || h > 23 || mi > 59 || se > 60) {
        return std::nullopt;
    }
    t += hours(h) + minutes(mi) + seconds(se);
    std::size_t at = 19;
    if (at < s.size() && s[at] == '.') {
        std::int64_t frac = 0;
        int digits = 0;
        for (++at; at < s.size() && s[at] >= '0' && s[at] <= '9'; ++at) {
            if (digits < 6) {
                frac = frac * 10 + (s[at] - '0');
                ++digits;
            }
        }
        for (; digits < 6; ++digits) {
            frac *= 10;
        }
        t += microseconds(frac);
    }
    std::string_view zone = s.substr(at);
    if (zone == "Z" || zone == "z" || zone.empty()) {
        return t;
    }
    if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
        int zh = number(zone, 1, 2, ok), zm = number(zone, 4, 2, ok);
        if (!ok) {
            return std::nullopt;
        }
        auto offset = hours(zh) + minutes(zm);
        return zone[0] == '+' ? t - offset : t + offset;
    }
    return std::nullopt;
}

std::optional<summary> compute_call(std::string_view host, std::string_view target,
                                    std::string_view method,
                                    std::chrono::system_clock::time_point at,
                                    const record_bodies& b, const read_options& o) {
    auto e = recognise(host, target, method, o.hosts != nullptr ? *o.hosts : host_map{});
    if (!e) {
        return std::nullopt;
    }
    auto facts = read_request(*e, b.request_body);
    if (!b.has_response) {
        return summarize(call_from_request(*e, facts), o.prices, at, false);
    }
    response_parser parser(*e, facts);
    parser.feed(b.response_body);
    return summarize(parser.finish(b.response_complete), o.prices, at, b.cache_hit);
}

std::optional<record_row> read_record(const json& record, const read_options& o) {
    if (!record.is_object() || !record.contains("request")) {
        return std::nullopt;
    }
    record_row row;
    auto ts = parse_timestamp(record.value("timestamp", ""));
    if (!ts) {
        return std::nullopt;
    }
    row.time = *ts;
    row.day = utc_day(*ts);
    const auto& req = record["request"];
    if (!req.is_object()) {
        return std::nullopt;
    }
    row.method = req.value("method", "");
    std::string url = req.value("url", "");
    std::string target;
    if (auto u = boost::urls::parse_uri(url)) {
        row.host = std::string(u->encoded_host_and_port());
        target = std::string(u->encoded_target());
    }
    if (target.empty()) {
        target.push_back('/');
    }
    if (auto resp = record.find("response"); resp != record.end() && resp->is_object()) {
        row.status = resp->value("status", 0u);
    }
    if (auto err = record.find("error"); err != record.end() && err->is_object()) {
        row.error_kind = err->value("kind", "error");
    }
    if (auto cs = record.find("connection_stats"); cs != record.end() && cs->is_object()) {
        if (auto d = cs->find("duration_ms"); d != cs->end() && d->is_number()) {
            row.duration_ms = d->get<double>();
        }
    }
    if (auto l = record.find("llm"); l != record.end()) {
        row.llm = summary_from_json(*l);
    } else {
        row.llm = compute(record, o, row.host, target, row.method, row.time);
        row.computed = row.llm.has_value();
    }
    return row;
}

std::optional<std::chrono::system_clock::time_point> parse_time_bound(const std::string& text,
                                                                      const char* flag) {
    if (text.empty()) {
        return std::nullopt;
    }
    auto t = parse_timestamp(text);
    if (!t) {
        throw std::invalid_argument(std::string(flag) + " '" + text +
                                    "': expected YYYY-MM-DD or an RFC 3339 time");
    }
    return t;
}

bool for_each_segment_line_at(
    const std::filesystem::path& file,
    const std::function<bool(const std::string&, std::uint64_t, std::uint64_t)>& fn) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return false;
    }
    std::string line;
    std::uint64_t n = 0;
    std::uint64_t offset = 0;
    while (std::getline(in, line)) {
        ++n;
        if (in.eof()) {
            break;  // no newline: cut by a writer that was killed
        }
        const auto start = offset;
        offset += line.size() + 1;
        if (!line.empty() && !fn(line, n, start)) {
            break;
        }
    }
    return true;
}

bool for_each_segment_line(const std::filesystem::path& file,
                           const std::function<void(const std::string&, std::uint64_t)>& fn) {
    return for_each_segment_line_at(file,
                                    [&](const std::string& line, std::uint64_t n, std::uint64_t) {
                                        fn(line, n);
                                        return true;
                                    });
}

std::optional<std::string> read_segment_line(const std::filesystem::path& file,
                                             std::uint64_t offset) {
    std::ifstream in(file, std::ios::binary);
    if (!in || !in.seekg(static_cast<std::streamoff>(offset))) {
        return std::nullopt;
    }
    std::string line;
    if (!std::getline(in, line) || in.eof() || line.empty()) {
        return std::nullopt;  // past the end, or a line without its newline
    }
    return line;
}

}  // namespace llm_proxy::llm

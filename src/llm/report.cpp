#include "llm_proxy/llm/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "llm_proxy/llm/record_json.hpp"

namespace llm_proxy::llm {

namespace {

const char* group_name(group_by by) {
    switch (by) {
        case group_by::model:
            return "model";
        case group_by::provider:
            return "provider";
        case group_by::host:
            return "host";
        case group_by::day:
            return "day";
        case group_by::status:
            return "status";
    }
    return "group";
}

std::string ms_text(std::optional<double> v) {
    if (!v) {
        return "-";
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", *v);
    return buf;
}

struct row_values {
    std::string key;
    const group_totals* t;
    std::optional<double> p50, p95, ttft50, ttft95;
};

}  // namespace

void group_totals::add(const record_row& row) {
    ++requests;
    if (!row.error_kind.empty() || row.status >= 400) {
        ++errors;
    }
    if (row.duration_ms) {
        latency_ms.push_back(*row.duration_ms);
    }
    if (!row.llm) {
        return;
    }
    llm.add(*row.llm);
    if (row.llm->first_token_ms) {
        first_token_ms.push_back(*row.llm->first_token_ms);
    }
}

std::optional<double> percentile(std::vector<double>& values, double p) {
    if (values.empty()) {
        return std::nullopt;
    }
    std::sort(values.begin(), values.end());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
    return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

std::string report::key_of(const record_row& row) const {
    switch (by_) {
        case group_by::model:
            if (row.llm) {
                const auto& m = billed_model(row.llm->call);
                return m.empty() ? "(unknown model)" : m;
            }
            return "(not an LLM call)";
        case group_by::provider:
            return row.llm ? to_string(row.llm->call.provider) : "(not an LLM call)";
        case group_by::host:
            return row.host.empty() ? "(no host)" : row.host;
        case group_by::day:
            return row.day;
        case group_by::status:
            if (!row.error_kind.empty() && row.status == 0) {
                return "error: " + row.error_kind;
            }
            return std::to_string(row.status);
    }
    return {};
}

void report::add(const record_row& row) {
    groups_[key_of(row)].add(row);
    total_.add(row);
}

namespace {
std::vector<row_values> rows_of(std::map<std::string, group_totals>& groups, group_totals& total) {
    std::vector<row_values> out;
    auto one = [](const std::string& key, group_totals& t) {
        row_values r{key,
                     &t,
                     percentile(t.latency_ms, 50),
                     percentile(t.latency_ms, 95),
                     percentile(t.first_token_ms, 50),
                     percentile(t.first_token_ms, 95)};
        return r;
    };
    for (auto& [k, t] : groups) {
        out.push_back(one(k, t));
    }
    out.push_back(one("total", total));
    return out;
}
}  // namespace

std::string report::table() {
    std::string out;
    char buf[640];
    std::snprintf(buf, sizeof buf, "%-36s %9s %7s %12s %12s %12s %11s %14s %9s %9s %9s %9s\n",
                  group_name(by_), "requests", "errors", "input", "cached", "output", "reasoning",
                  "cost USD", "p50 ms", "p95 ms", "ttft p50", "ttft p95");
    out += buf;
    for (const auto& r : rows_of(groups_, total_)) {
        const auto& t = *r.t;
        std::string cost = t.llm.cost.to_string();
        if (t.llm.unpriced_calls > 0) {
            cost += "+?";  // some calls have no known price
        }
        std::snprintf(buf, sizeof buf,
                      "%-36s %9llu %7llu %12llu %12llu %12llu %11llu %14s %9s %9s %9s %9s\n",
                      r.key.c_str(), static_cast<unsigned long long>(t.requests),
                      static_cast<unsigned long long>(t.errors),
                      static_cast<unsigned long long>(t.llm.input_tokens),
                      static_cast<unsigned long long>(t.llm.cache_read_tokens),
                      static_cast<unsigned long long>(t.llm.output_tokens),
                      static_cast<unsigned long long>(t.llm.reasoning_tokens), cost.c_str(),
                      ms_text(r.p50).c_str(), ms_text(r.p95).c_str(), ms_text(r.ttft50).c_str(),
                      ms_text(r.ttft95).c_str());
        out += buf;
    }
    return out;
}

std::string report::json() {
    nlohmann::json groups = nlohmann::json::array();
    nlohmann::json total;
    for (const auto& r : rows_of(groups_, total_)) {
        const auto& t = *r.t;
        auto opt = [](std::optional<double> v) {
            return v ? nlohmann::json(*v) : nlohmann::json();
        };
        nlohmann::json o = {{"key", r.key},
                            {"requests", t.requests},
                            {"errors", t.errors},
                            {"llm_calls", t.llm.calls},
                            {"input_tokens", t.llm.input_tokens},
                            {"cache_read_tokens", t.llm.cache_read_tokens},
                            {"output_tokens", t.llm.output_tokens},
                            {"reasoning_tokens", t.llm.reasoning_tokens},
                            {"cost_usd", money_json(t.llm.cost)},
                            {"saved_usd", money_json(t.llm.saved)},
                            {"unpriced_calls", t.llm.unpriced_calls},
                            {"latency_ms_p50", opt(r.p50)},
                            {"latency_ms_p95", opt(r.p95)},
                            {"first_token_ms_p50", opt(r.ttft50)},
                            {"first_token_ms_p95", opt(r.ttft95)}};
        if (&t == &total_) {
            o.erase("key");
            total = std::move(o);
        } else {
            groups.push_back(std::move(o));
        }
    }
    return nlohmann::json{{"group_by", group_name(by_)}, {"groups", groups}, {"total", total}}.dump(
               2) +
           "\n";
}

std::string report::csv() {
    std::string out = std::string(group_name(by_)) +
                      ",requests,errors,llm_calls,input_tokens,cache_read_tokens,output_tokens,"
                      "reasoning_tokens,cost_usd,saved_usd,unpriced_calls,latency_ms_p50,"
                      "latency_ms_p95,first_token_ms_p50,first_token_ms_p95\n";
    auto quoted = [](const std::string& s) {
        if (s.find_first_of(",\"\n") == std::string::npos) {
            return s;
        }
        std::string q = "\"";
        for (char c : s) {
            q += c == '"' ? std::string("\"\"") : std::string(1, c);
        }
        return q + "\"";
    };
    auto num = [](std::optional<double> v) { return v ? ms_text(v) : std::string(); };
    for (const auto& r : rows_of(groups_, total_)) {
        const auto& t = *r.t;
        out += quoted(r.key) + "," + std::to_string(t.requests) + "," + std::to_string(t.errors) +
               "," + std::to_string(t.llm.calls) + "," + std::to_string(t.llm.input_tokens) + "," +
               std::to_string(t.llm.cache_read_tokens) + "," + std::to_string(t.llm.output_tokens) +
               "," + std::to_string(t.llm.reasoning_tokens) + "," + t.llm.cost.to_string() + "," +
               t.llm.saved.to_string() + "," + std::to_string(t.llm.unpriced_calls) + "," +
               num(r.p50) + "," + num(r.p95) + "," + num(r.ttft50) + "," + num(r.ttft95) + "\n";
    }
    return out;
}

}  // namespace llm_proxy::llm

#include "llm_fields.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llm_proxy/llm/call.hpp"

namespace llm_proxy::record::detail {

namespace {

// llm::money_json's number: the exact decimal parsed as nlohmann parses it (an integer, or a
// double), printed as nlohmann prints that.
std::string money_text(const llm::money& m) {
    std::string text = m.to_string();
    const bool integer = text.find('.') == std::string::npos;
    if (integer && text.size() <= 18) {
        return text;  // canonical digits, within any 64-bit integer
    }
    double d = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (integer || ec != std::errc() || end != text.data() + text.size()) {
        return nlohmann::json::parse(text).dump();  // out of the ordinary: nlohmann decides
    }
    return nlohmann::json(d).dump();
}

// usage_fields in key order, as an object of nlohmann's (a std::map) holds them.
const auto& sorted_usage_fields() {
    static const auto fields = [] {
        std::vector<std::pair<sanitized, std::optional<std::uint64_t> llm::usage::*>> v;
        for (const auto& [name, field] : llm::usage_fields) {
            v.emplace_back(sanitize_utf8(std::string_view(name)), field);
        }
        std::sort(v.begin(), v.end(),
                  [](const auto& x, const auto& y) { return x.first < y.first; });
        return v;
    }();
    return fields;
}

void optional_text(json_writer& w, const std::optional<std::string>& s) {
    if (s) {
        w.text(*s);
    } else {
        w.literal("null");
    }
}

// One answer: "output", or an element of "choices" (then with its finish_reason).
void write_answer(json_writer& w, const llm::answer& a, int level, bool with_finish_reason) {
    json_writer::object o(w, level);
    optional_text(o.key("content"), a.content);
    if (with_finish_reason) {
        optional_text(o.key("finish_reason"), a.finish_reason);
    }
    if (a.reasoning) {
        o.key("reasoning").text(*a.reasoning);
    }
    if (a.refusal) {
        o.key("refusal").text(*a.refusal);
    }
    o.key("role").text(a.role);
    if (!a.tool_calls.empty()) {
        json_writer::array calls(o.key("tool_calls"), o.inner());
        for (const auto& t : a.tool_calls) {
            json_writer::object call(calls.item(), calls.inner());
            {
                json_writer::object fn(call.key("function"), call.inner());
                fn.key("arguments").text(t.arguments);
                fn.key("name").text(t.name);
            }
            call.key("id").text(t.id);
            call.key("type").text(t.type);
        }
    }
    if (a.truncated) {
        o.key("truncated").literal("true");
    }
}

}  // namespace

void write_llm(json_writer& w, const llm::summary& s, int level) {
    const auto& c = s.call;
    json_writer::object o(w, level);
    o.key("api").text(llm::to_string(c.api));
    if (c.answers.size() > 1) {
        json_writer::array choices(o.key("choices"), o.inner());
        for (const auto& a : c.answers) {
            write_answer(choices.item(), a, choices.inner(), true);
        }
    }
    if (s.cost_usd) {
        json_writer::object cost(o.key("cost_usd"), o.inner());
        cost.key("input").number_text(money_text(s.cost_usd->input));
        cost.key("output").number_text(money_text(s.cost_usd->output));
        cost.key("total").number_text(money_text(s.cost_usd->total));
    } else {
        o.key("cost_usd").literal("null");
    }
    if (c.error) {
        o.key("error").text(*c.error);
    }
    if (!c.answers.empty()) {
        optional_text(o.key("finish_reason"), c.answers.front().finish_reason);
    }
    if (s.first_token_ms) {
        o.key("first_token_ms").number(static_cast<std::int64_t>(*s.first_token_ms));
    }
    if (c.incomplete) {
        o.key("incomplete").literal("true");
    } else {
        o.key("incomplete").literal("false");
    }
    if (!c.answers.empty()) {
        write_answer(o.key("output"), c.answers.front(), o.inner(), false);
    }
    if (s.cost_usd) {
        o.key("priced_as").text(s.priced_as);
    }
    o.key("provider").text(llm::to_string(c.provider));
    o.key("request_model").text(c.request_model);
    if (!c.response_id.empty()) {
        o.key("response_id").text(c.response_id);
    }
    o.key("response_model").text(c.response_model);
    if (s.saved_usd) {
        o.key("saved_usd").number_text(money_text(*s.saved_usd));
    }
    if (c.stream) {
        o.key("stream").literal("true");
    } else {
        o.key("stream").literal("false");
    }
    {
        json_writer::object usage(o.key("usage"), o.inner());
        for (const auto& [name, field] : sorted_usage_fields()) {
            if (const auto& v = c.usage.*field) {
                usage.key(name).number(*v);
            }
        }
    }
    if (s.usage_injected) {
        o.key("usage_injected").literal("true");
    }
}

}  // namespace llm_proxy::record::detail

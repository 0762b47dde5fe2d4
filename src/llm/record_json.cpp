#include "llm_proxy/llm/record_json.hpp"

namespace llm_proxy::llm {

using json = nlohmann::json;

namespace {

void put_count(json& o, const char* key, const std::optional<std::uint64_t>& v) {
    if (v) {
        o[key] = *v;
    }
}

void get_count(const json& o, const char* key, std::optional<std::uint64_t>& v) {
    if (auto it = o.find(key); it != o.end() && it->is_number_unsigned()) {
        v = it->get<std::uint64_t>();
    }
}

json usage_json(const usage& u) {
    json o = json::object();
    for (const auto& [name, field] : usage_fields) {
        put_count(o, name, u.*field);
    }
    return o;
}

usage usage_from(const json& o) {
    usage u;
    if (!o.is_object()) {
        return u;
    }
    for (const auto& [name, field] : usage_fields) {
        get_count(o, name, u.*field);
    }
    return u;
}

json answer_json(const answer& a) {
    json o = {{"role", a.role}};
    o["content"] = a.content ? json(*a.content) : json(nullptr);
    if (a.refusal) {
        o["refusal"] = *a.refusal;
    }
    if (a.reasoning) {
        o["reasoning"] = *a.reasoning;
    }
    if (!a.tool_calls.empty()) {
        json calls = json::array();
        for (const auto& t : a.tool_calls) {
            calls.push_back({{"id", t.id},
                             {"type", t.type},
                             {"function", {{"name", t.name}, {"arguments", t.arguments}}}});
        }
        o["tool_calls"] = std::move(calls);
    }
    if (a.truncated) {
        o["truncated"] = true;
    }
    return o;
}

std::optional<std::string> opt_string(const json& o, const char* key) {
    if (auto it = o.find(key); it != o.end() && it->is_string()) {
        return it->get<std::string>();
    }
    return std::nullopt;
}

answer answer_from(const json& o, const json& finish) {
    answer a;
    a.role = opt_string(o, "role").value_or("assistant");
    a.content = opt_string(o, "content");
    a.refusal = opt_string(o, "refusal");
    a.reasoning = opt_string(o, "reasoning");
    if (auto it = o.find("tool_calls"); it != o.end() && it->is_array()) {
        for (const auto& t : *it) {
            tool_call c;
            c.id = t.value("id", "");
            c.type = t.value("type", "function");
            if (auto fn = t.find("function"); fn != t.end() && fn->is_object()) {
                c.name = fn->value("name", "");
                c.arguments = fn->value("arguments", "");
            }
            a.tool_calls.push_back(std::move(c));
        }
    }
    a.truncated = o.value("truncated", false);
    if (finish.is_string()) {
        a.finish_reason = finish.get<std::string>();
    }
    return a;
}

}  // namespace

json money_json(const money& m) {
    // Parsed back from its exact decimal text: a double that prints as that text.
    return json::parse(m.to_string());
}

std::optional<money> money_from_json(const json& j) {
    if (!j.is_number()) {
        return std::nullopt;
    }
    return money::parse(j.dump());
}

json to_json(const summary& s) {
    const auto& c = s.call;
    json o = {{"provider", to_string(c.provider)},
              {"api", to_string(c.api)},
              {"request_model", c.request_model},
              {"response_model", c.response_model},
              {"stream", c.stream},
              {"usage", usage_json(c.usage)}};
    if (!c.response_id.empty()) {
        o["response_id"] = c.response_id;
    }
    if (s.cost_usd) {
        o["cost_usd"] = {{"input", money_json(s.cost_usd->input)},
                         {"output", money_json(s.cost_usd->output)},
                         {"total", money_json(s.cost_usd->total)}};
        o["priced_as"] = s.priced_as;
    } else {
        o["cost_usd"] = nullptr;
    }
    if (s.saved_usd) {
        o["saved_usd"] = money_json(*s.saved_usd);
    }
    if (!c.answers.empty()) {
        o["output"] = answer_json(c.answers.front());
        o["finish_reason"] =
            c.answers.front().finish_reason ? json(*c.answers.front().finish_reason) : json();
    }
    if (c.answers.size() > 1) {
        json choices = json::array();
        for (const auto& a : c.answers) {
            json one = answer_json(a);
            one["finish_reason"] = a.finish_reason ? json(*a.finish_reason) : json();
            choices.push_back(std::move(one));
        }
        o["choices"] = std::move(choices);
    }
    if (s.first_token_ms) {
        o["first_token_ms"] = static_cast<std::int64_t>(*s.first_token_ms);
    }
    o["incomplete"] = c.incomplete;
    if (c.error) {
        o["error"] = *c.error;
    }
    if (s.usage_injected) {
        o["usage_injected"] = true;
    }
    return o;
}

std::optional<summary> summary_from_json(const json& j) {
    if (!j.is_object()) {
        return std::nullopt;
    }
    auto provider = provider_from_string(j.value("provider", ""));
    if (!provider) {
        return std::nullopt;
    }
    summary s;
    auto& c = s.call;
    c.provider = *provider;
    std::string api = j.value("api", "");
    for (auto a : {api::chat_completions, api::completions, api::responses, api::embeddings,
                   api::messages, api::generate_content}) {
        if (api == to_string(a)) {
            c.api = a;
        }
    }
    c.request_model = j.value("request_model", "");
    c.response_model = j.value("response_model", "");
    c.response_id = j.value("response_id", "");
    c.stream = j.value("stream", false);
    if (auto u = j.find("usage"); u != j.end()) {
        c.usage = usage_from(*u);
    }
    if (auto cost = j.find("cost_usd"); cost != j.end() && cost->is_object()) {
        auto in = money_from_json(cost->value("input", json()));
        auto out = money_from_json(cost->value("output", json()));
        auto total = money_from_json(cost->value("total", json()));
        if (in && out && total) {
            s.cost_usd = llm::cost{*in, *out, *total};
        }
        s.priced_as = j.value("priced_as", "");
    }
    if (auto saved = j.find("saved_usd"); saved != j.end()) {
        s.saved_usd = money_from_json(*saved);
    }
    if (auto choices = j.find("choices"); choices != j.end() && choices->is_array()) {
        for (const auto& a : *choices) {
            c.answers.push_back(answer_from(a, a.value("finish_reason", json())));
        }
    } else if (auto out = j.find("output"); out != j.end() && out->is_object()) {
        c.answers.push_back(answer_from(*out, j.value("finish_reason", json())));
    }
    if (auto t = j.find("first_token_ms"); t != j.end() && t->is_number()) {
        s.first_token_ms = t->get<double>();
    }
    c.incomplete = j.value("incomplete", false);
    c.error = opt_string(j, "error");
    s.usage_injected = j.value("usage_injected", false);
    return s;
}

}  // namespace llm_proxy::llm

// OpenAI chat completions requests as conversations.
//
//   {"model": ..., "messages": [{"role": "system"|"developer"|"user"|"assistant"|"tool",
//     "content": "text" | [{"type": "text", "text"}, {"type": "image_url", "image_url": {"url",
//     "detail"}}, ...] | null, "name", "tool_calls": [{"id", "type": "function", "function":
//     {"name", "arguments"}}], "tool_call_id", "refusal", "weight"}],
//    "tools": [{"type": "function", "function": {"name", "description", "parameters",
//     "strict"}}], "parallel_tool_calls": bool, "n": N}

#include "../llm/json_access.hpp"
#include "readers.hpp"

namespace llm_proxy::exporter::detail {

using namespace llm::json_access;

namespace {

// A member that is present and not null.
std::optional<element> given(const element& o, std::string_view key) {
    auto m = member(o, key);
    if (!m || m->is_null()) {
        return std::nullopt;
    }
    return m;
}

void read_content(const element& content, message& m) {
    if (auto text = as_string(content)) {
        m.content.push_back(text_part(*text));
        return;
    }
    simdjson::dom::array parts;
    if (content.get_array().get(parts) != simdjson::SUCCESS) {
        m.content.push_back(other_part("content", content));
        return;
    }
    for (const auto& p : parts) {
        auto type = string_member(p, "type").value_or("");
        if (type == "text") {
            if (auto text = string_member(p, "text")) {
                m.content.push_back(text_part(*text));
                continue;
            }
        } else if (type == "image_url") {
            auto image = member(p, "image_url");
            std::optional<std::string_view> url;
            if (image) {
                url = image->is_string() ? as_string(*image) : string_member(*image, "url");
            }
            if (url) {
                part img;
                img.k = part::kind::image;
                img.url.assign(*url);
                if (image->is_object()) {
                    img.detail.assign(string_member(*image, "detail").value_or(""));
                }
                m.content.push_back(std::move(img));
                continue;
            }
        } else if (type == "refusal" && m.role == role::assistant) {
            if (auto text = string_member(p, "refusal")) {
                m.refusal = m.refusal.value_or("") + std::string(*text);
                continue;
            }
        }
        m.content.push_back(other_part(type.empty() ? "content" : type, p));
    }
}

std::optional<role> role_of(std::string_view r) {
    if (r == "system") {
        return role::system;
    }
    if (r == "developer") {
        return role::developer;
    }
    if (r == "user") {
        return role::user;
    }
    if (r == "assistant") {
        return role::assistant;
    }
    if (r == "tool") {
        return role::tool;
    }
    return std::nullopt;
}

message read_message(const element& j) {
    message m;
    auto r = role_of(string_member(j, "role").value_or(""));
    if (!r) {
        // The legacy "function" role and anything unknown: kept whole, never mapped.
        m.role = role::user;
        m.content.push_back(other_part(
            std::string("role ") + std::string(string_member(j, "role").value_or("?")), j));
        return m;
    }
    m.role = *r;
    simdjson::dom::object o;
    if (j.get_object().get(o) != simdjson::SUCCESS) {
        return m;
    }
    for (auto [key, value] : o) {
        if (key == "role") {
            continue;
        }
        if (value.is_null()) {
            continue;  // an absent value, as the SDKs send "refusal": null and the like
        }
        if (key == "content") {
            read_content(value, m);
        } else if (key == "name" && value.is_string()) {
            m.name.assign(*as_string(value));
        } else if (key == "tool_call_id" && value.is_string()) {
            m.tool_call_id.assign(*as_string(value));
        } else if (key == "refusal" && value.is_string()) {
            m.refusal = std::string(*as_string(value));
        } else if (key == "weight" && value.is_int64()) {
            m.weight = value.get_int64().value_unsafe();  // a writer refuses all but 0 and 1
        } else if (key == "tool_calls" && value.is_array()) {
            for (const auto& tc : array_of(value)) {
                auto fn = object_member(tc, "function");
                auto type = string_member(tc, "type").value_or("function");
                if (type != "function" || !fn) {
                    m.content.push_back(other_part(type, tc));
                    continue;
                }
                tool_call call;
                call.id.assign(string_member(tc, "id").value_or(""));
                call.name.assign(string_member(*fn, "name").value_or(""));
                if (auto args = member(*fn, "arguments")) {
                    auto text = as_string(*args);
                    call.arguments = text ? std::string(*text) : compact(*args);
                }
                m.tool_calls.push_back(std::move(call));
            }
        } else if (key == "annotations" && value.is_array() && array_of(value).size() == 0) {
            continue;  // what the SDK's message objects carry back: no content
        } else {
            m.content.push_back(other_part(std::string("message ") + std::string(key), value));
        }
    }
    return m;
}

}  // namespace

conversation read_chat(const element& body) {
    conversation c;
    if (auto messages = array_member(body, "messages")) {
        for (const auto& j : *messages) {
            c.messages.push_back(read_message(j));
        }
    }
    if (auto tools = array_member(body, "tools")) {
        for (const auto& t : *tools) {
            tool def;
            def.type.assign(string_member(t, "type").value_or(""));
            auto fn = object_member(t, "function");
            if (def.type != "function" || !fn) {
                def.raw = compact(t);
                if (def.type.empty() || def.type == "function") {
                    def.type = "malformed";
                }
                c.tools.push_back(std::move(def));
                continue;
            }
            def.name.assign(string_member(*fn, "name").value_or(""));
            if (auto d = string_member(*fn, "description")) {
                def.description = std::string(*d);
            }
            if (auto p = given(*fn, "parameters")) {
                def.parameters = compact(*p);
            }
            if (auto s = member(*fn, "strict"); s && s->is_bool()) {
                def.strict = s->get_bool().value_unsafe();
            }
            c.tools.push_back(std::move(def));
        }
    }
    if (auto functions = array_member(body, "functions")) {
        for (const auto& f : *functions) {
            tool def;
            def.type = "legacy function";
            def.raw = compact(f);
            c.tools.push_back(std::move(def));
        }
    }
    if (auto p = member(body, "parallel_tool_calls"); p && p->is_bool()) {
        c.parallel_tool_calls = p->get_bool().value_unsafe();
    }
    if (auto n = count_member(body, "n")) {
        c.choices_requested = *n;
    }
    return c;
}

}  // namespace llm_proxy::exporter::detail

// Anthropic messages requests as conversations.
//
//   {"system": "text" | [{"type": "text", "text", "cache_control"}], "messages": [{"role":
//   "user"|"assistant", "content": "text" | [{"type": "text", "text"}, {"type": "image",
//   "source": {"type": "base64", "media_type", "data"} | {"type": "url", "url"}}, {"type":
//   "tool_use", "id", "name", "input"}, {"type": "tool_result", "tool_use_id", "content",
//   "is_error"}, {"type": "thinking", "thinking"}, ...]}], "tools": [{"name", "description",
//   "input_schema"}], "tool_choice": {"disable_parallel_tool_use": bool}}
//
// A user turn's tool_result blocks become tool messages (they come first in the turn, as the
// API requires), its other blocks a user message after them. cache_control marks and
// citations are caching and display hints, not content: they are not kept.

#include "../llm/json_access.hpp"
#include "readers.hpp"

namespace llm_proxy::exporter::detail {

using namespace llm::json_access;

namespace {

// A text block: its text, or nullopt when it carries something besides (citations).
std::optional<std::string_view> plain_text(const element& block) {
    auto text = string_member(block, "text");
    auto citations = member(block, "citations");
    if (citations && !citations->is_null() &&
        !(citations->is_array() && array_of(*citations).size() == 0)) {
        return std::nullopt;
    }
    return text;
}

std::optional<part> image(const element& block) {
    auto source = object_member(block, "source");
    if (!source) {
        return std::nullopt;
    }
    auto type = string_member(*source, "type").value_or("");
    part p;
    p.k = part::kind::image;
    if (type == "base64") {
        auto media = string_member(*source, "media_type");
        auto data = string_member(*source, "data");
        if (!media || !data) {
            return std::nullopt;
        }
        p.url = "data:" + std::string(*media) + ";base64," + std::string(*data);
        return p;
    }
    if (type == "url") {
        if (auto url = string_member(*source, "url")) {
            p.url.assign(*url);
            return p;
        }
    }
    return std::nullopt;
}

// The content of a tool_result block: a string or text / image blocks.
void tool_result_content(const element& content, message& m) {
    if (auto text = as_string(content)) {
        m.content.push_back(text_part(*text));
        return;
    }
    if (!content.is_array()) {
        m.content.push_back(other_part("tool_result content", content));
        return;
    }
    for (const auto& b : array_of(content)) {
        auto type = string_member(b, "type").value_or("");
        if (type == "text") {
            if (auto text = plain_text(b)) {
                m.content.push_back(text_part(*text));
                continue;
            }
        } else if (type == "image") {
            if (auto p = image(b)) {
                m.content.push_back(std::move(*p));
                continue;
            }
        }
        m.content.push_back(other_part(type.empty() ? "content" : type, b));
    }
}

void read_turn(const element& j, conversation& c) {
    auto role_name = string_member(j, "role").value_or("");
    message m;
    if (role_name == "assistant") {
        m.role = role::assistant;
    } else if (role_name == "user") {
        m.role = role::user;
    } else {
        m.content.push_back(other_part("role " + std::string(role_name), j));
        c.messages.push_back(std::move(m));
        return;
    }
    auto content = member(j, "content");
    if (!content) {
        c.messages.push_back(std::move(m));
        return;
    }
    if (auto text = as_string(*content)) {
        m.content.push_back(text_part(*text));
        c.messages.push_back(std::move(m));
        return;
    }
    if (!content->is_array()) {
        m.content.push_back(other_part("content", *content));
        c.messages.push_back(std::move(m));
        return;
    }
    for (const auto& b : array_of(*content)) {
        auto type = string_member(b, "type").value_or("");
        if (type == "text") {
            if (auto text = plain_text(b)) {
                m.content.push_back(text_part(*text));
                continue;
            }
        } else if (type == "image") {
            if (auto p = image(b)) {
                m.content.push_back(std::move(*p));
                continue;
            }
        } else if (type == "tool_use" && m.role == role::assistant) {
            tool_call call;
            call.id.assign(string_member(b, "id").value_or(""));
            call.name.assign(string_member(b, "name").value_or(""));
            if (auto input = member(b, "input")) {
                call.arguments = compact(*input);
            }
            m.tool_calls.push_back(std::move(call));
            continue;
        } else if (type == "tool_result" && m.role == role::user) {
            message result;
            result.role = role::tool;
            result.tool_call_id.assign(string_member(b, "tool_use_id").value_or(""));
            if (auto rc = member(b, "content"); rc && !rc->is_null()) {
                tool_result_content(*rc, result);
            }
            auto err = member(b, "is_error");
            result.tool_error = err && err->is_bool() && err->get_bool().value_unsafe();
            c.messages.push_back(std::move(result));
            continue;
        } else if (type == "thinking" && m.role == role::assistant) {
            part p;
            p.k = part::kind::reasoning;
            p.text.assign(string_member(b, "thinking").value_or(""));
            m.content.push_back(std::move(p));
            continue;
        } else if (type == "redacted_thinking" && m.role == role::assistant) {
            part p = other_part(type, b);
            p.k = part::kind::reasoning;
            m.content.push_back(std::move(p));
            continue;
        }
        m.content.push_back(other_part(type.empty() ? "content" : type, b));
    }
    // A user turn made only of tool results adds no user message of its own.
    if (m.role == role::assistant || !m.content.empty()) {
        c.messages.push_back(std::move(m));
    }
}

}  // namespace

conversation read_messages(const element& body) {
    conversation c;
    auto system = member(body, "system");
    auto empty_text = system ? as_string(*system) : std::nullopt;
    if (system && !system->is_null() && !(empty_text && empty_text->empty())) {
        message m;
        m.role = role::system;
        if (auto text = as_string(*system)) {
            m.content.push_back(text_part(*text));
        } else if (system->is_array()) {
            for (const auto& b : array_of(*system)) {
                auto text =
                    string_member(b, "type").value_or("") == "text" ? plain_text(b) : std::nullopt;
                if (text) {
                    m.content.push_back(text_part(*text));
                } else {
                    m.content.push_back(other_part("system block", b));
                }
            }
        } else {
            m.content.push_back(other_part("system", *system));
        }
        c.messages.push_back(std::move(m));
    }
    if (auto messages = array_member(body, "messages")) {
        for (const auto& j : *messages) {
            read_turn(j, c);
        }
    }
    if (auto tools = array_member(body, "tools")) {
        for (const auto& t : *tools) {
            tool def;
            // Client tools have no type (or "custom"); server tools name their version.
            auto type = string_member(t, "type").value_or("custom");
            std::string_view extra;
            simdjson::dom::object fields;
            if (t.get_object().get(fields) == simdjson::SUCCESS) {
                for (auto [key, value] : fields) {
                    if (key != "type" && key != "name" && key != "description" &&
                        key != "input_schema" && key != "cache_control") {
                        extra = key;
                    }
                }
            }
            if (type != "custom" || !extra.empty()) {
                def.type = type != "custom" ? std::string(type) : "tool with " + std::string(extra);
                def.raw = compact(t);
                c.tools.push_back(std::move(def));
                continue;
            }
            def.name.assign(string_member(t, "name").value_or(""));
            if (auto d = string_member(t, "description")) {
                def.description = std::string(*d);
            }
            if (auto p = member(t, "input_schema"); p && !p->is_null()) {
                def.parameters = compact(*p);
            }
            c.tools.push_back(std::move(def));
        }
    }
    if (auto choice = object_member(body, "tool_choice")) {
        auto d = member(*choice, "disable_parallel_tool_use");
        if (d && d->is_bool()) {
            c.parallel_tool_calls = !d->get_bool().value_unsafe();
        }
    }
    return c;
}

}  // namespace llm_proxy::exporter::detail

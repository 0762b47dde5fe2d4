// OpenAI Responses API requests as conversations: `instructions` become the system message,
// `input` (a string, or a list of items) the messages.
//
//   input items: {"type": "message" (or no type), "role", "content": "text" | [{"type":
//   "input_text"|"output_text", "text"}, {"type": "input_image", "image_url", "detail"},
//   {"type": "refusal", "refusal"}]}, {"type": "function_call", "call_id", "name",
//   "arguments"}, {"type": "function_call_output", "call_id", "output"}, {"type": "reasoning",
//   "summary": [{"text"}]}; anything else (web_search_call, item_reference, ...) is kept as an
//   `other` part.
//
// Function calls that follow an assistant message (or each other) join that message's
// tool_calls, as chat completions carry them.

#include "../llm/json_access.hpp"
#include "readers.hpp"

namespace llm_proxy::exporter::detail {

using namespace llm::json_access;

namespace {

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
    return std::nullopt;
}

void read_parts(const element& content, message& m) {
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
        if (type == "input_text" || type == "output_text" || type == "text") {
            auto annotations = array_member(p, "annotations");
            bool plain = !annotations || annotations->size() == 0;
            if (auto text = string_member(p, "text"); text && plain) {
                m.content.push_back(text_part(*text));
                continue;
            }
        } else if (type == "input_image") {
            if (auto url = string_member(p, "image_url")) {
                part img;
                img.k = part::kind::image;
                img.url.assign(*url);
                img.detail.assign(string_member(p, "detail").value_or(""));
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

// The assistant message function calls join: the last message when it is an assistant's.
message& assistant_for_calls(conversation& c) {
    if (c.messages.empty() || c.messages.back().role != role::assistant) {
        message m;
        m.role = role::assistant;
        c.messages.push_back(std::move(m));
    }
    return c.messages.back();
}

// The last message is an assistant's holding only reasoning so far.
bool only_reasoning(const conversation& c) {
    if (c.messages.empty() || c.messages.back().role != role::assistant) {
        return false;
    }
    const auto& m = c.messages.back();
    if (!m.tool_calls.empty() || m.content.empty()) {
        return false;
    }
    for (const auto& p : m.content) {
        if (p.k != part::kind::reasoning) {
            return false;
        }
    }
    return true;
}

void read_item(const element& item, conversation& c) {
    auto type = string_member(item, "type").value_or("message");
    if (type == "message") {
        auto r = role_of(string_member(item, "role").value_or(""));
        if (r == role::assistant && only_reasoning(c)) {
            // The answer a reasoning item came with, sent back after it: one message.
            if (auto content = member(item, "content")) {
                read_parts(*content, c.messages.back());
            }
            return;
        }
        message m;
        if (!r) {
            m.content.push_back(other_part("message role", item));
        } else {
            m.role = *r;
            if (auto content = member(item, "content")) {
                read_parts(*content, m);
            }
        }
        c.messages.push_back(std::move(m));
        return;
    }
    if (type == "function_call") {
        tool_call call;
        call.id.assign(string_member(item, "call_id").value_or(""));
        call.name.assign(string_member(item, "name").value_or(""));
        call.arguments.assign(string_member(item, "arguments").value_or(""));
        assistant_for_calls(c).tool_calls.push_back(std::move(call));
        return;
    }
    if (type == "function_call_output") {
        message m;
        m.role = role::tool;
        m.tool_call_id.assign(string_member(item, "call_id").value_or(""));
        if (auto output = member(item, "output")) {
            read_parts(*output, m);
        }
        c.messages.push_back(std::move(m));
        return;
    }
    if (type == "reasoning") {
        part p;
        p.k = part::kind::reasoning;
        if (auto summary = array_member(item, "summary")) {
            for (const auto& s : *summary) {
                p.text += string_member(s, "text").value_or("");
            }
        }
        if (!p.text.empty()) {
            assistant_for_calls(c).content.push_back(std::move(p));
        } else {
            // Encrypted or empty reasoning: still not something a chat format can carry.
            part raw = other_part("reasoning", item);
            raw.k = part::kind::reasoning;
            assistant_for_calls(c).content.push_back(std::move(raw));
        }
        return;
    }
    // Built-in tool calls and their outputs, item references, ...: kept, never mapped.
    message m;
    m.role = role::assistant;
    m.content.push_back(other_part(type, item));
    c.messages.push_back(std::move(m));
}

}  // namespace

conversation read_responses(const element& body) {
    conversation c;
    // "" is how clients say "no instructions": no system message then.
    if (auto instructions = string_member(body, "instructions")) {
        if (!instructions->empty()) {
            message m;
            m.role = role::system;
            m.content.push_back(text_part(*instructions));
            c.messages.push_back(std::move(m));
        }
    } else if (auto other = member(body, "instructions"); other && !other->is_null()) {
        message m;
        m.role = role::system;
        m.content.push_back(other_part("instructions", *other));
        c.messages.push_back(std::move(m));
    }
    if (auto input = member(body, "input")) {
        if (auto text = as_string(*input)) {
            message m;
            m.role = role::user;
            m.content.push_back(text_part(*text));
            c.messages.push_back(std::move(m));
        } else if (input->is_array()) {
            for (const auto& item : array_of(*input)) {
                read_item(item, c);
            }
        }
    }
    if (auto tools = array_member(body, "tools")) {
        for (const auto& t : *tools) {
            tool def;
            def.type.assign(string_member(t, "type").value_or(""));
            if (def.type != "function") {
                def.raw = compact(t);
                c.tools.push_back(std::move(def));
                continue;
            }
            def.name.assign(string_member(t, "name").value_or(""));
            if (auto d = string_member(t, "description")) {
                def.description = std::string(*d);
            }
            if (auto p = member(t, "parameters"); p && !p->is_null()) {
                def.parameters = compact(*p);
            }
            if (auto s = member(t, "strict"); s && s->is_bool()) {
                def.strict = s->get_bool().value_unsafe();
            }
            c.tools.push_back(std::move(def));
        }
    }
    if (auto p = member(body, "parallel_tool_calls"); p && p->is_bool()) {
        c.parallel_tool_calls = p->get_bool().value_unsafe();
    }
    for (std::string_view key : {"previous_response_id", "conversation"}) {
        if (auto m = member(body, key); m && !m->is_null()) {
            c.server_state.assign(key);
        }
    }
    return c;
}

}  // namespace llm_proxy::exporter::detail

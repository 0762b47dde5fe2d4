// read_conversation and append_answer: what every API's reader shares.

#include "llm_proxy/export/conversation.hpp"

#include "json_text.hpp"
#include "readers.hpp"

namespace llm_proxy::exporter {

namespace detail {

std::string compact(const element& e) {
    return simdjson::minify(e);
}

part text_part(std::string_view text) {
    part p;
    p.k = part::kind::text;
    p.text.assign(text);
    return p;
}

part other_part(std::string_view type, const element& raw) {
    part p;
    p.k = part::kind::other;
    p.type.assign(type);
    p.raw = compact(raw);
    return p;
}

}  // namespace detail

const char* to_string(role r) {
    switch (r) {
        case role::system:
            return "system";
        case role::developer:
            return "developer";
        case role::user:
            return "user";
        case role::assistant:
            return "assistant";
        case role::tool:
            return "tool";
    }
    return "user";
}

namespace {

// The parser of request bodies on this thread (the record's own document lives in another).
simdjson::dom::parser& body_parser() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

}  // namespace

std::optional<conversation> read_conversation(llm::api api, std::string_view request_body,
                                              std::string& error) {
    if (api != llm::api::chat_completions && api != llm::api::responses &&
        api != llm::api::messages) {
        error = std::string("the ") + llm::to_string(api) + " API has no conversation";
        return std::nullopt;
    }
    simdjson::padded_string padded(request_body);
    simdjson::dom::element root;
    if (body_parser().parse(padded).get(root) != simdjson::SUCCESS || !root.is_object()) {
        error = "the request body is not a JSON object";
        return std::nullopt;
    }
    switch (api) {
        case llm::api::chat_completions:
            return detail::read_chat(root);
        case llm::api::responses:
            return detail::read_responses(root);
        default:
            return detail::read_messages(root);
    }
}

std::optional<std::string> compact_json(std::string_view json_text) {
    simdjson::padded_string padded(json_text);
    simdjson::dom::element root;
    if (body_parser().parse(padded).get(root) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return detail::compact(root);
}

void append_answer(conversation& c, const llm::answer& a, llm::provider provider) {
    message m;
    m.role = role::assistant;
    if (a.reasoning && !a.reasoning->empty()) {
        part p;
        p.k = part::kind::reasoning;
        p.text = *a.reasoning;
        m.content.push_back(std::move(p));
    }
    if (a.content && !a.content->empty()) {
        m.content.push_back(detail::text_part(*a.content));
    }
    m.refusal = a.refusal;
    for (const auto& t : a.tool_calls) {
        if (t.type != "function") {
            // A provider-side tool (Anthropic server_tool_use / mcp_tool_use): not a call the
            // client answers.
            part p;
            p.k = part::kind::other;
            p.type = t.type;
            detail::json_text j(p.raw);
            j.begin_object().key("type").string(t.type).key("id").string(t.id);
            j.key("name").string(t.name).key("input").string(t.arguments).end_object();
            m.content.push_back(std::move(p));
            continue;
        }
        tool_call call{t.id, t.name, t.arguments};
        if (provider == llm::provider::anthropic) {
            if (auto canonical = compact_json(t.arguments)) {
                call.arguments = std::move(*canonical);
            }
        }
        m.tool_calls.push_back(std::move(call));
    }
    c.messages.push_back(std::move(m));
    c.answered = true;
}

}  // namespace llm_proxy::exporter

// Conversations as Bedrock Claude fine-tuning lines:
//
//   {"system": "...", "messages": [{"role": "user", "content": "..."}, {"role": "assistant",
//    "content": "..."}, ...]}
//
// The system prompt is optional; at least two messages, the first a user's, the last an
// assistant's, user and assistant alternating, each content one string, no other keys.

#include "json_text.hpp"
#include "llm_proxy/export/formats.hpp"
#include "writer_rules.hpp"

namespace llm_proxy::exporter {

using detail::json_text;

namespace {

example skip(std::string why) {
    example e;
    e.skipped = std::move(why);
    return e;
}

// Why message `m` has no Bedrock form, or nullopt.
std::optional<std::string> unmappable(const message& m) {
    if (m.role == role::tool) {
        return std::string("tool result (the format has no tools)");
    }
    if (!m.tool_calls.empty()) {
        return std::string("tool call (the format has no tools)");
    }
    for (const auto& p : m.content) {
        if (p.k == part::kind::image) {
            return std::string("image (the format takes text only)");
        }
        if (p.k == part::kind::other) {
            return "unmappable " + std::string(to_string(m.role)) + " content: " + p.type;
        }
    }
    if (m.refusal) {
        return std::string("refusal (the format has no refusal message)");
    }
    if (!m.name.empty()) {
        return std::string("participant name (the format has none)");
    }
    if (m.weight) {
        return std::string("weight (the format has none)");
    }
    return std::nullopt;
}

}  // namespace

example to_anthropic(const conversation& c) {
    if (auto why = detail::common_skip(c)) {
        return skip(*why);
    }
    if (!c.tools.empty()) {
        return skip("tools (the format has no tools)");
    }
    std::size_t first = 0;
    const message* system = nullptr;
    while (first < c.messages.size() &&
           (c.messages[first].role == role::system || c.messages[first].role == role::developer)) {
        if (system != nullptr) {
            return skip("several system messages");
        }
        system = &c.messages[first];
        ++first;
    }
    bool reasoning_dropped = false;
    bool joined = false;
    for (std::size_t i = 0; i < c.messages.size(); ++i) {
        const auto& m = c.messages[i];
        if (i >= first && (m.role == role::system || m.role == role::developer)) {
            return skip("system message inside the conversation");
        }
        if (auto why = unmappable(m)) {
            return skip(*why);
        }
        std::size_t texts = 0;
        for (const auto& p : m.content) {
            texts += p.k == part::kind::text && !p.text.empty();
            reasoning_dropped = reasoning_dropped || p.k == part::kind::reasoning;
        }
        joined = joined || texts > 1;
        if (!detail::has_content(m)) {
            return skip(i + 1 == c.messages.size()
                            ? "empty answer"
                            : "empty " + std::string(to_string(m.role)) + " message");
        }
    }
    if (c.messages.size() - first < 2) {
        return skip("fewer than two messages");
    }
    if (c.messages[first].role != role::user) {
        return skip("first message is not a user's");
    }
    for (std::size_t i = first + 1; i < c.messages.size(); ++i) {
        if (c.messages[i].role == c.messages[i - 1].role) {
            return skip("user and assistant messages do not alternate");
        }
    }
    example e;
    json_text j(e.line);
    j.begin_object();
    if (system != nullptr) {
        j.key("system").string(detail::joined_text(*system));
    }
    j.key("messages").begin_array();
    e.messages_array.first = j.position() - 1;
    for (std::size_t i = first; i < c.messages.size(); ++i) {
        const auto& m = c.messages[i];
        std::size_t begin = j.position() + (i == first ? 0 : 1);
        j.begin_object().key("role").string(to_string(m.role));
        j.key("content").string(detail::joined_text(m)).end_object();
        e.messages.emplace_back(begin, j.position());
    }
    j.end_array();
    e.messages_array.second = j.position();
    j.end_object();
    if (reasoning_dropped) {
        e.notes.emplace_back("reasoning left out");
    }
    if (joined) {
        e.notes.emplace_back("text parts of a message joined");
    }
    e.ok = true;
    return e;
}

}  // namespace llm_proxy::exporter

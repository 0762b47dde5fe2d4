// Conversations as OpenAI chat fine-tuning lines:
//
//   {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..." |
//    [{"type": "text", "text"}, {"type": "image_url", "image_url": {"url", "detail"}}]},
//    {"role": "assistant", "content": "...", "tool_calls": [{"id", "type": "function",
//    "function": {"name", "arguments"}}], "weight": 0|1}, {"role": "tool", "tool_call_id",
//    "content": "..."}],
//   "tools": [{"type": "function", "function": {"name", "description", "parameters",
//    "strict"}}], "parallel_tool_calls": bool}

#include <set>

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

void write_tool(json_text& j, const tool& t) {
    j.begin_object().key("type").string("function").key("function").begin_object();
    j.key("name").string(t.name);
    if (t.description) {
        j.key("description").string(*t.description);
    }
    if (t.parameters) {
        j.key("parameters").raw(*t.parameters);
    }
    if (t.strict) {
        j.key("strict").boolean(*t.strict);
    }
    j.end_object().end_object();
}

}  // namespace

example to_openai_chat(const conversation& c) {
    if (auto why = detail::common_skip(c)) {
        return skip(*why);
    }
    for (const auto& t : c.tools) {
        if (t.type != "function") {
            return skip("unmappable tool: " + t.type);
        }
    }
    example e;
    bool reasoning_dropped = false;
    bool joined = false;
    std::set<std::string> call_ids;
    // Check every message before writing any.
    for (const auto& m : c.messages) {
        for (const auto& p : m.content) {
            if (p.k == part::kind::other) {
                return skip("unmappable " + std::string(to_string(m.role)) + " content: " + p.type);
            }
            if (p.k == part::kind::image && m.role != role::user) {
                return skip(std::string("image in a ") + to_string(m.role) + " message");
            }
            reasoning_dropped = reasoning_dropped || p.k == part::kind::reasoning;
        }
        if (m.refusal) {
            return skip("refusal (the format has no refusal message)");
        }
        if (m.weight && m.role != role::assistant) {
            return skip("weight on a " + std::string(to_string(m.role)) + " message");
        }
        if (m.weight && *m.weight != 0 && *m.weight != 1) {
            return skip("weight other than 0 or 1");
        }
        if (m.role != role::assistant && !m.tool_calls.empty()) {
            return skip("tool calls in a " + std::string(to_string(m.role)) + " message");
        }
        if (m.role == role::tool) {
            if (m.tool_error) {
                return skip("tool result marked as an error (the format has no error flag)");
            }
            if (!call_ids.contains(m.tool_call_id)) {
                return skip("tool result without an earlier call");
            }
        }
        for (const auto& t : m.tool_calls) {
            if (t.id.empty()) {
                return skip("tool call without an id");
            }
            if (!compact_json(t.arguments)) {
                return skip("tool call arguments are not JSON (cut short?)");
            }
            call_ids.insert(t.id);
        }
        if (!detail::has_content(m) && m.tool_calls.empty()) {
            return skip(&m == &c.messages.back()
                            ? "empty answer"
                            : "empty " + std::string(to_string(m.role)) + " message");
        }
    }

    json_text j(e.line);
    j.begin_object().key("messages").begin_array();
    e.messages_array.first = j.position() - 1;
    for (const auto& m : c.messages) {
        std::size_t begin = j.position() + (e.messages.empty() ? 0 : 1);
        j.begin_object().key("role").string(to_string(m.role));
        if (!m.name.empty()) {
            j.key("name").string(m.name);
        }
        std::size_t texts = 0, images = 0;
        for (const auto& p : m.content) {
            texts += p.k == part::kind::text && !p.text.empty();
            images += p.k == part::kind::image;
        }
        if (texts + images > 0) {
            j.key("content");
            if (images == 0 && (texts == 1 || m.role != role::user)) {
                // One string; an assistant's, tool's or system's several text parts joined
                // (Anthropic's consecutive text blocks read as one text).
                joined = joined || texts > 1;
                j.string(detail::joined_text(m));
            } else {
                j.begin_array();
                for (const auto& p : m.content) {
                    if (p.k == part::kind::text && !p.text.empty()) {
                        j.begin_object().key("type").string("text").key("text").string(p.text);
                        j.end_object();
                    } else if (p.k == part::kind::image) {
                        j.begin_object().key("type").string("image_url").key("image_url");
                        j.begin_object().key("url").string(p.url);
                        if (!p.detail.empty()) {
                            j.key("detail").string(p.detail);
                        }
                        j.end_object().end_object();
                    }
                }
                j.end_array();
            }
        }
        if (!m.tool_calls.empty()) {
            j.key("tool_calls").begin_array();
            for (const auto& t : m.tool_calls) {
                j.begin_object().key("id").string(t.id).key("type").string("function");
                j.key("function").begin_object().key("name").string(t.name);
                j.key("arguments").string(t.arguments).end_object().end_object();
            }
            j.end_array();
        }
        if (m.role == role::tool) {
            j.key("tool_call_id").string(m.tool_call_id);
        }
        if (m.weight) {
            j.key("weight").number(*m.weight);
        }
        j.end_object();
        e.messages.emplace_back(begin, j.position());
    }
    j.end_array();
    e.messages_array.second = j.position();
    if (!c.tools.empty()) {
        j.key("tools").begin_array();
        for (const auto& t : c.tools) {
            write_tool(j, t);
        }
        j.end_array();
        if (c.parallel_tool_calls) {
            j.key("parallel_tool_calls").boolean(*c.parallel_tool_calls);
        }
    }
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

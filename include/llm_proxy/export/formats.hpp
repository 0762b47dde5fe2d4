#pragma once
// The export formats and the writers of the line-per-example ones:
//
//   openai-chat  OpenAI's chat fine-tuning JSONL: {"messages": [...], "tools": [...],
//                "parallel_tool_calls": bool}
//   anthropic    the Bedrock Claude fine-tuning JSONL: {"system": "...", "messages": [...]}
//   jsonl        one provider-neutral line per LLM call (docs/export.md)
//   har          one HAR 1.2 file of every flow (har.hpp)
//
// A writer that cannot map a part of the conversation into its format skips the example and
// names what did not map; what it leaves out on purpose (reasoning) it notes.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/export/conversation.hpp"
#include "llm_proxy/llm/summary.hpp"

namespace llm_proxy::exporter {

enum class format { openai_chat, anthropic, jsonl, har };

std::optional<format> format_from_string(std::string_view s);
const char* to_string(format f);

// One example line, or why there is none.
struct example {
    bool ok = false;
    std::string line;                // the JSON line, without its newline
    std::string skipped;             // why not (when !ok)
    std::vector<std::string> notes;  // what was left out on purpose
    // Where each message's JSON text is in `line`, in order (the answer last), and where the
    // messages array is: --longest compares conversations message by message, and everything
    // outside the array (system, tools) as their context.
    std::vector<std::pair<std::size_t, std::size_t>> messages;
    std::pair<std::size_t, std::size_t> messages_array{0, 0};
};

// The conversation as an OpenAI chat fine-tuning example. Rules: roles system, developer, user,
// assistant and tool; images only in user messages; every message has content or tool calls;
// a tool message answers a call made earlier; the last message is the answer.
example to_openai_chat(const conversation& c);

// The conversation as a Bedrock Claude fine-tuning example: an optional system string, then
// user and assistant messages alternating, first user, last assistant, each content one
// string; no other keys (so no tools, images or tool calls).
example to_anthropic(const conversation& c);

// What a provider-neutral line says besides the conversation.
struct call_facts {
    std::string time;    // the record's timestamp
    std::string record;  // the record's file name without .json (the flow id)
    std::string host;
    unsigned status = 0;  // 0: no response
    std::string error;    // the flow's error kind ("" when none)
    std::optional<double> latency_ms;
    const llm::summary* llm = nullptr;
};

// One provider-neutral line (docs/export.md). `c` is null when the request has no
// conversation (embeddings, completions, a body that is not JSON): "messages" is null then.
std::string to_jsonl(const call_facts& facts, const conversation* c);

}  // namespace llm_proxy::exporter

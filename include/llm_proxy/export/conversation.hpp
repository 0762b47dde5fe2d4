#pragma once
// One LLM call as a conversation, whatever API it used: the messages of the request (chat
// completions' `messages`, the Responses API's `instructions` and `input` items, Anthropic's
// `system` and `messages`), the tools it offered, and the reassembled answer appended as the
// last assistant message. The writers of each export format turn it into their lines.
//
// Reading never drops what it does not understand: such content stays in the conversation as
// an `other` part (with the provider's JSON), reasoning as a `reasoning` part, so that each
// writer decides whether it maps. A writer that cannot map something skips the example and
// says why; nothing is changed silently.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/llm/call.hpp"

namespace llm_proxy::exporter {

// A piece of a message's content.
struct part {
    enum class kind {
        text,       // `text`
        image,      // `url`: an http(s) URL or a data: URL; `detail` as OpenAI's image detail
        reasoning,  // `text`: thinking / reasoning the provider returned (not part of the answer)
        other,      // anything else: `type` names it, `raw` is the provider's JSON
    };
    kind k = kind::text;
    std::string text;
    std::string url;
    std::string detail;
    std::string type;  // other: the provider's type ("input_audio", "document", "web_search_call")
    std::string raw;   // other: the provider's JSON text
};

struct tool_call {
    std::string id;
    std::string name;
    std::string arguments;  // JSON text
};

enum class role { system, developer, user, assistant, tool };
const char* to_string(role r);

struct message {
    exporter::role role = exporter::role::user;
    std::vector<part> content;
    std::vector<tool_call> tool_calls;   // assistant
    std::string tool_call_id;            // tool: the call it answers
    std::string name;                    // OpenAI's participant name ("" when none)
    std::optional<std::int64_t> weight;  // OpenAI fine-tuning weight, as given (valid: 0 or 1)
    std::optional<std::string> refusal;  // an assistant refusal
    bool tool_error = false;             // tool: Anthropic's is_error
};

// A tool the request offered. `type` "function" is a function tool (name, description,
// parameters as JSON text); any other is a provider-side tool kept as `raw` JSON.
struct tool {
    std::string type = "function";
    std::string name;
    std::optional<std::string> description;
    std::optional<std::string> parameters;  // JSON schema text
    std::optional<bool> strict;
    std::string raw;  // non-function tools: the provider's JSON
};

struct conversation {
    std::vector<message> messages;
    std::vector<tool> tools;
    std::optional<bool> parallel_tool_calls;
    // The Responses API continued a conversation the server holds (previous_response_id or
    // conversation): the earlier messages are not in the request.
    std::string server_state;
    // The request asked for several answers (n > 1): they are not one example.
    std::uint64_t choices_requested = 1;
    // The answer was appended (append_answer).
    bool answered = false;
};

// Reads the request body of a call of `api` (chat_completions, responses or messages). Returns
// nullopt with `error` set when the body is not a JSON object or the API has no conversation.
std::optional<conversation> read_conversation(llm::api api, std::string_view request_body,
                                              std::string& error);

// Appends the reassembled answer as the last assistant message: its text, refusal, reasoning
// and tool calls. An Anthropic tool call's input is an object: its arguments are written as
// compact JSON text, as when the client sends the call back in the next request. Tool calls
// of provider-side tools (server_tool_use, mcp_tool_use) become `other` parts.
void append_answer(conversation& c, const llm::answer& a, llm::provider provider);

// `json_text` as compact JSON, members in their order, written the way a tool call's input
// object is written when it is read from a request, so both sides compare equal; nullopt when
// it is not JSON.
std::optional<std::string> compact_json(std::string_view json_text);

}  // namespace llm_proxy::exporter

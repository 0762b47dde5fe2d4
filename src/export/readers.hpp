#pragma once
// The request readers of each API, internal to src/export: each turns a parsed request body
// into a conversation (see conversation.hpp).

#include <simdjson.h>

#include <string>
#include <string_view>

#include "llm_proxy/export/conversation.hpp"

namespace llm_proxy::exporter::detail {

using element = simdjson::dom::element;

// OpenAI chat completions: messages, tools, parallel_tool_calls, n.
conversation read_chat(const element& body);
// OpenAI Responses: instructions, input (a string or items), tools, parallel_tool_calls,
// previous_response_id / conversation.
conversation read_responses(const element& body);
// Anthropic messages: system, messages, tools, tool_choice.disable_parallel_tool_use.
conversation read_messages(const element& body);

// The array or object a value is (empty when it is not one). Named locals: iterating over a
// temporary simdjson_result makes GCC 12 warn of a dangling pointer.
inline simdjson::dom::array array_of(const element& e) {
    simdjson::dom::array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) {
        return {};
    }
    return a;
}
inline simdjson::dom::object object_of(const element& e) {
    simdjson::dom::object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
        return {};
    }
    return o;
}

// Shared helpers.
std::string compact(const element& e);  // compact JSON text of a parsed value
part text_part(std::string_view text);
part other_part(std::string_view type, const element& raw);

}  // namespace llm_proxy::exporter::detail

#pragma once
// A call summary as a record's "llm" object, and back (for `report` and `export`).
//
//   "llm": {"provider": "openai", "api": "chat_completions", "request_model": "gpt-4o-mini",
//           "response_model": "gpt-4o-mini-2024-07-18", "stream": true,
//           "usage": {"input_tokens": 1200, "output_tokens": 85, "cache_read_tokens": 1024},
//           "cost_usd": {"input": 0.000134, "output": 0.000051, "total": 0.000185},
//           "output": {"role": "assistant", "content": "...", "tool_calls": [...]},
//           "finish_reason": "stop", "first_token_ms": 312, "incomplete": false}
//
// Documented in docs/log-format.md. A count the provider did not report is left out.

#include <nlohmann/json.hpp>
#include <optional>

#include "llm_proxy/llm/summary.hpp"

namespace llm_proxy::llm {

nlohmann::json to_json(const summary& s);

// The summary a record's "llm" object describes; nullopt when it is not one.
std::optional<summary> summary_from_json(const nlohmann::json& j);

// A money amount as a JSON number whose text is the exact decimal (shortest form).
nlohmann::json money_json(const money& m);
std::optional<money> money_from_json(const nlohmann::json& j);

}  // namespace llm_proxy::llm

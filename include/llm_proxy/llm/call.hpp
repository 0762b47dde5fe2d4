#pragma once
// What llm_proxy understands of one LLM API call: which API it is, the models, the usage the
// provider reported and the reassembled answer. Filled live from a flow's bodies as they pass
// and offline from records; rendered as a record's "llm" object.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_proxy::llm {

enum class provider { openai, anthropic, google };
enum class api { chat_completions, completions, responses, embeddings, messages, generate_content };

// Names as records spell them: "openai", "chat_completions"...
const char* to_string(provider p);
const char* to_string(api a);
std::optional<provider> provider_from_string(std::string_view s);
std::optional<api> api_from_string(std::string_view s);

// Token counts as the provider reported them. A count the provider did not report stays
// nullopt (never 0). input_tokens counts all input, cached included (OpenAI prompt_tokens /
// input_tokens; Anthropic input_tokens + cache_creation_input_tokens + cache_read_input_tokens).
struct usage {
    std::optional<std::uint64_t> input_tokens;
    std::optional<std::uint64_t> output_tokens;
    std::optional<std::uint64_t> cache_read_tokens;
    std::optional<std::uint64_t> cache_write_tokens;     // all cache writes (5 min + 1 h)
    std::optional<std::uint64_t> cache_write_1h_tokens;  // of which 1 h (Anthropic)
    std::optional<std::uint64_t> reasoning_tokens;       // part of output_tokens
    std::optional<std::uint64_t> input_audio_tokens;     // part of input_tokens
    std::optional<std::uint64_t> output_audio_tokens;    // part of output_tokens

    bool empty() const;
};

// Every count of a usage, with the name records give it.
inline constexpr std::pair<const char*, std::optional<std::uint64_t> usage::*> usage_fields[] = {
    {"input_tokens", &usage::input_tokens},
    {"output_tokens", &usage::output_tokens},
    {"cache_read_tokens", &usage::cache_read_tokens},
    {"cache_write_tokens", &usage::cache_write_tokens},
    {"cache_write_1h_tokens", &usage::cache_write_1h_tokens},
    {"reasoning_tokens", &usage::reasoning_tokens},
    {"input_audio_tokens", &usage::input_audio_tokens},
    {"output_audio_tokens", &usage::output_audio_tokens},
};

struct tool_call {
    std::string id;
    std::string type = "function";
    std::string name;
    std::string arguments;  // as the model wrote it (JSON text, possibly incomplete)
};

// One reassembled answer (a choice, for APIs that have several).
struct answer {
    std::string role = "assistant";
    std::optional<std::string> content;    // text; nullopt when the answer had none
    std::optional<std::string> refusal;    // OpenAI refusals
    std::optional<std::string> reasoning;  // thinking / reasoning summaries
    std::vector<tool_call> tool_calls;
    std::optional<std::string> finish_reason;
    bool truncated = false;  // the text was cut at the parser's memory bound
};

struct call {
    llm::provider provider = llm::provider::openai;
    llm::api api = llm::api::chat_completions;
    std::string request_model;   // "" when the request named none
    std::string response_model;  // "" when the response named none
    std::string response_id;
    bool stream = false;
    llm::usage usage;
    std::vector<answer> answers;       // index = choice index; usually one
    bool incomplete = false;           // the stream or body ended before the API said it was done
    std::optional<std::string> error;  // an API error object's message, when the body was one
};

}  // namespace llm_proxy::llm

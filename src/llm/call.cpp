#include "llm_proxy/llm/call.hpp"

#include <string_view>

namespace llm_proxy::llm {

const char* to_string(provider p) {
    switch (p) {
        case provider::openai:
            return "openai";
        case provider::anthropic:
            return "anthropic";
        case provider::google:
            return "google";
    }
    return "unknown";
}

const char* to_string(api a) {
    switch (a) {
        case api::chat_completions:
            return "chat_completions";
        case api::completions:
            return "completions";
        case api::responses:
            return "responses";
        case api::embeddings:
            return "embeddings";
        case api::messages:
            return "messages";
        case api::generate_content:
            return "generate_content";
    }
    return "unknown";
}

std::optional<provider> provider_from_string(std::string_view s) {
    if (s == "openai") {
        return provider::openai;
    }
    if (s == "anthropic") {
        return provider::anthropic;
    }
    if (s == "google") {
        return provider::google;
    }
    return std::nullopt;
}

std::optional<api> api_from_string(std::string_view s) {
    for (api a : {api::chat_completions, api::completions, api::responses, api::embeddings,
                  api::messages, api::generate_content}) {
        if (s == to_string(a)) {
            return a;
        }
    }
    return std::nullopt;
}

bool usage::empty() const {
    return !input_tokens && !output_tokens && !cache_read_tokens && !cache_write_tokens &&
           !cache_write_1h_tokens && !reasoning_tokens && !input_audio_tokens &&
           !output_audio_tokens;
}

}  // namespace llm_proxy::llm

#include "llm_proxy/llm/call.hpp"

#include <algorithm>
#include <iterator>

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
    return std::none_of(std::begin(usage_fields), std::end(usage_fields),
                        [this](const auto& f) { return (this->*f.second).has_value(); });
}

}  // namespace llm_proxy::llm

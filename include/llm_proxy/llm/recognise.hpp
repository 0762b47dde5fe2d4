#pragma once
// Which flows are LLM API calls: from a request's host, target and method, the provider and
// API whose rules the bodies follow.
//
// Built in: api.openai.com (/v1/chat/completions, /v1/completions, /v1/responses,
// /v1/embeddings), api.anthropic.com (/v1/messages) and generativelanguage.googleapis.com
// (/v1beta|/v1|/v1alpha /models/{model}:generateContent and :streamGenerateContent). Hosts the
// user maps to a provider (gateways, Azure, self-hosted servers) use that provider's path
// rules with any path prefix. Any other host is recognised when its path ends with
// /v1/chat/completions (OpenAI rules) or /v1/messages (Anthropic rules).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/llm/call.hpp"

namespace llm_proxy::llm {

// Hosts the user maps to a provider's API: "HOST=openai|anthropic|google". HOST is matched
// case-insensitively; "HOST:PORT" matches that port only, a bare HOST any port.
struct host_map {
    struct entry {
        std::string host;                   // lower case, without port
        std::optional<std::uint16_t> port;  // nullopt: any port
        llm::provider provider = llm::provider::openai;
    };
    std::vector<entry> entries;

    // The provider mapped to `host` ("name", "name:port", "[v6]:port"), if any. A mapping with
    // a port wins over one without.
    std::optional<llm::provider> find(std::string_view host) const;
};

// Parses one "HOST=PROVIDER" mapping and adds it to `into`. Returns nullopt on success, else
// what is wrong with `spec` (nothing is added then).
std::optional<std::string> parse_host_mapping(std::string_view spec, host_map& into);

// What recognise() found out from the request line alone.
struct endpoint {
    llm::provider provider = llm::provider::openai;
    llm::api api = llm::api::chat_completions;
    std::string path_model;    // the model the path names (Gemini); "" otherwise
    bool path_stream = false;  // the path asks for a stream (Gemini :streamGenerateContent)
};

// Decides whether a request is an LLM API call. `host` as in the Host header or CONNECT
// target (port optional), `target` the request target (origin-form "/path?query" or
// absolute-form "https://host/path?query"), `method` the HTTP method (only POST calls are
// recognised).
std::optional<endpoint> recognise(std::string_view host, std::string_view target,
                                  std::string_view method, const host_map& mapped = {});

}  // namespace llm_proxy::llm

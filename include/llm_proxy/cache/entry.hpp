#pragma once
// A cached response and the request key it is stored under.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llm_proxy/flow.hpp"

namespace llm_proxy::cache {

struct entry {
    unsigned status = 0;
    std::string reason;
    // End-to-end headers as the upstream sent them, minus framing (Content-Length,
    // Transfer-Encoding), Content-Encoding and the filtered (secret) headers.
    header_list headers;
    // The upstream's Content-Encoding ("" for identity). `body` is stored decoded and encoded
    // again on replay when the new request accepts this encoding.
    std::string content_encoding;
    std::string body;
    // The upstream sent the body without a Content-Length (chunked, e.g. SSE): replay chunked.
    bool streamed = false;
    // For HEAD: the Content-Length the upstream announced, replayed as is.
    std::optional<std::uint64_t> head_content_length;
    std::int64_t created_ms = 0;  // Unix time in ms
};

// Compact binary form for the stores. deserialize returns nullopt for anything malformed or
// of another format version (such an entry is then treated as a miss).
std::string serialize(const entry& e);
std::optional<entry> deserialize(std::string_view data);

// The cache key: SHA-256 (64 hex digits) over the method, the full URL, the request body
// decoded from its Content-Encoding and the named request headers (name lower-cased; a
// missing header differs from an empty one). Header values only enter the hash.
std::string make_key(
    std::string_view method, std::string_view url, std::string_view body,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& key_headers);

}  // namespace llm_proxy::cache

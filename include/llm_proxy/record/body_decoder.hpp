#pragma once
// Content-Encoding decoding for logs and caches: gzip, deflate, br, zstd (and stacks of them).

#include <cstddef>
#include <string>
#include <string_view>

namespace llm_proxy::record {

struct decoded_body {
    std::string data;
    bool ok = true;          // false: unknown encoding or corrupt data (data then holds the input)
    bool truncated = false;  // output hit `limit`, or the input itself was cut short
    std::string error;
};

// Decodes `input` per a Content-Encoding header value ("gzip", "br", "gzip, br", "identity",
// empty...). Output is capped at `limit` bytes. A truncated input (e.g. a capped capture)
// decodes as far as it goes and sets `truncated`.
decoded_body decode_body(std::string_view content_encoding, std::string_view input,
                         std::size_t limit);

// Encodes `input` with one encoding ("gzip", "deflate", "br", "zstd", "identity").
// Throws std::invalid_argument for an unknown encoding.
std::string encode_body(std::string_view encoding, std::string_view input);

}  // namespace llm_proxy::record

#pragma once
// Field values of a traffic log record, shared by the JSON tree (make_record) and the direct
// text writer (render_record) so both say exactly the same thing.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/flow.hpp"

namespace llm_proxy::record::detail {

// `s` with each byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s);

// True when `name` is in `filter` (case-insensitive): a header left out of the record.
bool is_filtered(std::string_view name, const std::vector<std::string>& filter);

// A body as the record shows it.
struct body_text {
    std::string value;  // UTF-8 text, or base64 when the bytes are not UTF-8
    bool base64 = false;
    bool truncated = false;  // then the record also carries the size seen on the wire
    std::uint64_t total = 0;
    std::optional<std::string> decode_error;  // Content-Encoding that could not be undone
};

// Decodes a captured, still content-encoded body, caps it at `max_body_log` bytes and picks
// text or base64.
body_text prepare_body(const captured_body& body, const header_list& headers,
                       std::size_t max_body_log);

}  // namespace llm_proxy::record::detail

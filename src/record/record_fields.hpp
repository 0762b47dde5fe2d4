#pragma once
// Field values of a traffic log record that take more than copying: header filtering and
// body preparation.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/flow.hpp"
#include "utf8.hpp"

namespace llm_proxy::record::detail {

// True when `name` is in `filter` (case-insensitive): a header left out of the record.
bool is_filtered(std::string_view name, const std::vector<std::string>& filter);

// A body as the record shows it.
struct body_text {
    sanitized value;  // UTF-8 text, or base64 when the bytes are not UTF-8
    bool base64 = false;
    bool truncated = false;  // then the record also carries the size seen on the wire
    std::uint64_t total = 0;
    std::optional<sanitized> decode_error;  // Content-Encoding that could not be undone
};

// Decodes a captured, still content-encoded body, caps it at `max_body_log` bytes and picks
// text or base64.
body_text prepare_body(const captured_body& body, const header_list& headers,
                       std::size_t max_body_log);

}  // namespace llm_proxy::record::detail

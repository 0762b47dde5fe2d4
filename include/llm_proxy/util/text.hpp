#pragma once
// Small text helpers shared by the whole project: ASCII case, hex and base64.

#include <optional>
#include <string>
#include <string_view>

namespace llm_proxy {

// `s` without leading and trailing spaces, tabs, CR and LF.
std::string_view trim_space(std::string_view s);

// Case-insensitive ASCII comparison (header names, schemes, tokens).
bool iequals(std::string_view a, std::string_view b);

// `s` starts with `prefix`, ignoring ASCII case.
bool istarts_with(std::string_view s, std::string_view prefix);

// `s` ends with `suffix`, ignoring ASCII case.
bool iends_with(std::string_view s, std::string_view suffix);

// `s` contains `needle`, ignoring ASCII case.
bool icontains(std::string_view s, std::string_view needle);

// ASCII lower-casing (A-Z only; other bytes unchanged, whatever the locale).
std::string to_lower(std::string_view s);

// Lower-case hex of the bytes, two digits per byte.
std::string hex_encode(std::string_view bytes);

// Lower-case hex digits, indexed by their value.
inline constexpr char hex_digits[] = "0123456789abcdef";

// The index of the first byte at or after `from` that a JSON string cannot hold as it is (a
// control character, '"' or '\\'), or, with `non_ascii`, that is 0x80 or above; s.size()
// when there is none. Eight bytes at a time.
std::size_t find_json_special(std::string_view s, std::size_t from, bool non_ascii);

// The value of one hex digit (either case), or -1. Inline: chunk-size parsing calls it per
// digit.
constexpr int hex_digit_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// %XX escapes decoded (either case of hex digit); a '%' not followed by two hex digits stays
// as it is. '+' is not a space here (W3C baggage and OTEL_* variables use plain %-encoding).
std::string percent_decode(std::string_view s);
// Standard base64 (RFC 4648 section 4) with padding.
std::string base64_encode(std::string_view bytes);

// Decodes standard base64 (padding optional); nullopt on any other character.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace llm_proxy

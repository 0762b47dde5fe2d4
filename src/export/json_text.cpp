#include "json_text.hpp"

#include <simdjson.h>

#include <cmath>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::exporter::detail {

namespace {

// The length of the valid UTF-8 sequence starting at s[i], or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    std::size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < n; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) {
            return 0;
        }
    }
    unsigned char c1 = byte(i + 1);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
        (c == 0xF4 && c1 > 0x8F)) {
        return 0;
    }
    return n;
}

}  // namespace

std::size_t first_invalid_utf8(std::string_view s) {
    if (simdjson::validate_utf8(s.data(), s.size())) {
        return std::string_view::npos;
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            continue;
        }
        std::size_t n = utf8_length(s, i);
        if (n == 0) {
            return i;
        }
        i += n - 1;
    }
    return std::string_view::npos;
}

void append_json_string(std::string& out, std::string_view s) {
    // Text from parsed JSON is valid UTF-8; anything else (an answer cut at a memory bound)
    // gets U+FFFD for each byte that is not, so the line stays JSON. Whether the text is valid
    // is asked (of simdjson, for the rest of the text) at its first byte outside ASCII: most
    // values (names, ids, numbers) have none.
    enum class utf8 { unknown, valid, invalid } state = utf8::unknown;
    out.reserve(out.size() + s.size() + 2);
    out += '"';
    std::size_t run = 0;  // start of the bytes not yet copied
    for (std::size_t i = find_json_special(s, 0, true); i < s.size();
         i = find_json_special(s, i + 1, state != utf8::valid)) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80 && state == utf8::unknown) {
            // Every byte before i is ASCII, so i starts a character.
            state =
                simdjson::validate_utf8(s.data() + i, s.size() - i) ? utf8::valid : utf8::invalid;
        }
        if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || state == utf8::valid)) {
            continue;
        }
        out.append(s.data() + run, i - run);
        if (c >= 0x80) {
            std::size_t n = utf8_length(s, i);
            if (n == 0) {
                out += "\xEF\xBF\xBD";
                run = i + 1;
            } else {
                out.append(s.data() + i, n);
                i += n - 1;
                run = i + 1;
            }
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default: {
                static constexpr char hex[] = "0123456789abcdef";
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            }
        }
        run = i + 1;
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

json_text& json_text::number(double v) {
    separator();
    if (!std::isfinite(v)) {
        out_ += "null";
        return *this;
    }
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, end);
    return *this;
}

}  // namespace llm_proxy::exporter::detail

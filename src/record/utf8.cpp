#include "utf8.hpp"

#include <simdjson.h>

#include <cstddef>

namespace llm_proxy::record::detail {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid (overlong forms,
// surrogates and code points above U+10FFFF included). Sets `incomplete` when the sequence is
// valid so far but runs past the end of `s`.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i, bool& incomplete) {
    incomplete = false;
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) {
        return 1;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) {
            lo = 0xa0;  // no overlong forms
        } else if (c == 0xed) {
            hi = 0x9f;  // no UTF-16 surrogates
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;  // nothing above U+10FFFF
        }
    } else {
        return 0;
    }
    for (std::size_t k = 1; k < len; ++k) {
        if (i + k >= s.size()) {
            incomplete = true;
            return 0;
        }
        unsigned char b = byte(i + k);
        unsigned char min = k == 1 ? lo : 0x80;
        unsigned char max = k == 1 ? hi : 0xbf;
        if (b < min || b > max) {
            return 0;
        }
    }
    return len;
}

// Size of the longest valid UTF-8 prefix; `tail_incomplete` tells whether what stops it is
// merely a multi-byte character cut off by the end of the data.
std::size_t valid_utf8_prefix(std::string_view s, bool& tail_incomplete) {
    tail_incomplete = false;
    if (simdjson::validate_utf8(s.data(), s.size())) {
        return s.size();  // the usual case, checked many bytes at a time
    }
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t n = utf8_sequence_length(s, i, tail_incomplete);
        if (n == 0) {
            return i;
        }
        i += n;
    }
    return i;
}

// `s` from byte `valid` on, each invalid byte replaced by U+FFFD, appended to `out`.
void append_replacing(std::string& out, std::string_view s, std::size_t valid) {
    bool incomplete = false;
    std::size_t i = valid;
    while (i < s.size()) {
        std::size_t n = utf8_sequence_length(s, i, incomplete);
        if (n == 0) {
            out += "\xef\xbf\xbd";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
    bool incomplete = false;
    return valid_utf8_prefix(s, incomplete) == s.size();
}

sanitized sanitize_utf8(std::string_view s) {
    bool incomplete = false;
    std::size_t valid = valid_utf8_prefix(s, incomplete);
    std::string out(s.substr(0, valid));
    if (valid != s.size()) {
        append_replacing(out, s, valid);
    }
    return sanitized(std::move(out));
}

sanitized sanitize_utf8(std::string&& s) {
    bool incomplete = false;
    std::size_t valid = valid_utf8_prefix(s, incomplete);
    if (valid == s.size()) {
        return sanitized(std::move(s));
    }
    std::string out(std::string_view(s).substr(0, valid));
    append_replacing(out, s, valid);
    return sanitized(std::move(out));
}

std::optional<sanitized> take_utf8(std::string& bytes, bool drop_cut_tail) {
    bool tail_incomplete = false;
    std::size_t valid = valid_utf8_prefix(bytes, tail_incomplete);
    if (valid != bytes.size() && drop_cut_tail && tail_incomplete) {
        bytes.resize(valid);
    }
    if (valid != bytes.size()) {
        return std::nullopt;
    }
    return sanitized(std::move(bytes));
}

}  // namespace llm_proxy::record::detail

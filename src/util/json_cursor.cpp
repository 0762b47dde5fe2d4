#include "llm_proxy/util/json_cursor.hpp"

#include <cctype>

namespace llm_proxy {

void json_cursor::space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) {
        ++i_;
    }
}

bool json_cursor::take(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
        ++i_;
        return true;
    }
    return false;
}

bool json_cursor::string() {
    if (!take('"')) {
        return false;
    }
    while (i_ < s_.size()) {
        char c = s_[i_++];
        if (c == '\\') {
            ++i_;
        } else if (c == '"') {
            return true;
        }
    }
    return false;
}

bool json_cursor::value() {
    if (i_ >= s_.size()) {
        return false;
    }
    char c = s_[i_];
    if (c == '"') {
        return string();
    }
    if (c == '{' || c == '[') {
        int depth = 0;
        while (i_ < s_.size()) {
            c = s_[i_];
            if (c == '"') {
                if (!string()) {
                    return false;
                }
                continue;
            }
            if (c == '{' || c == '[') {
                ++depth;
            } else if ((c == '}' || c == ']') && --depth == 0) {
                ++i_;
                return true;
            }
            ++i_;
        }
        return false;
    }
    // A number or literal ends where the text goes on with something else.
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}' && s_[i_] != ']' &&
           !std::isspace(static_cast<unsigned char>(s_[i_]))) {
        ++i_;
    }
    return i_ < s_.size();
}

bool json_cursor::key(std::string_view& out) {
    space();
    std::size_t start = i_;
    if (!string()) {
        return false;
    }
    out = s_.substr(start + 1, i_ - start - 2);
    return next(':');
}

}  // namespace llm_proxy

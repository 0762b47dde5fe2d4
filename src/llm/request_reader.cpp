// read_request: the facts of an LLM request body that its answer's parser needs.

#include <cctype>

#include "json_access.hpp"
#include "llm_proxy/llm/parser.hpp"

namespace llm_proxy::llm {

using namespace json_access;

namespace {

void read_bool(const json& j, std::string_view key, bool& out) {
    auto m = member(j, key);
    if (m && m->is_bool()) {
        out = m->get_bool().value_unsafe();
    }
}

// Walks the top-level members of an object whose text may be cut short (a body captured up
// to a limit), handing each complete member's key and raw value text to `fn`; stops at the
// cut or at anything that is not JSON.
class member_scanner {
  public:
    explicit member_scanner(std::string_view text) : s_(text) {}

    template <class Fn>
    void each(Fn&& fn) {
        space();
        if (!take('{')) {
            return;
        }
        while (true) {
            space();
            std::size_t key_start = i_;
            if (!string_token()) {
                return;
            }
            std::string_view key = s_.substr(key_start + 1, i_ - key_start - 2);
            space();
            if (!take(':')) {
                return;
            }
            space();
            std::size_t value_start = i_;
            if (!value()) {
                return;
            }
            fn(key, s_.substr(value_start, i_ - value_start));
            space();
            if (!take(',')) {
                return;
            }
        }
    }

  private:
    void space() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) {
            ++i_;
        }
    }

    bool take(char c) {
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }

    // A string token starting at the quote under the cursor.
    bool string_token() {
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

    // Any value; false when it runs past the end of the text.
    bool value() {
        if (i_ >= s_.size()) {
            return false;
        }
        char c = s_[i_];
        if (c == '"') {
            return string_token();
        }
        if (c == '{' || c == '[') {
            int depth = 0;
            while (i_ < s_.size()) {
                c = s_[i_];
                if (c == '"') {
                    if (!string_token()) {
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

    std::string_view s_;
    std::size_t i_ = 0;
};

// The members that come before the cut of a body that is not whole JSON (e.g. a request over
// the capture limit, whose "model" often comes first).
void read_prefix(std::string_view body, request_facts& facts) {
    auto& parser = thread_parser::get();
    member_scanner(body).each([&](std::string_view key, std::string_view value) {
        if (key == "model") {
            if (auto v = parser.parse(value)) {
                if (auto text = as_string(*v)) {
                    facts.model.assign(*text);
                }
            }
        } else if (key == "stream") {
            facts.stream = value == "true";
        } else if (key == "stream_options") {
            if (auto v = parser.parse(value)) {
                read_bool(*v, "include_usage", facts.include_usage);
            }
        }
    });
}

}  // namespace

// Picks "model", "stream" and "stream_options.include_usage" from the top-level object.
request_facts read_request(const endpoint& e, std::string_view body) {
    auto& parser = thread_parser::get();
    request_facts facts;
    if (auto root = parser.parse(body)) {
        if (root->is_object()) {
            if (auto model = string_member(*root, "model")) {
                facts.model.assign(*model);
            }
            read_bool(*root, "stream", facts.stream);
            if (auto options = object_member(*root, "stream_options")) {
                read_bool(*options, "include_usage", facts.include_usage);
            }
        }
    } else {
        read_prefix(body, facts);
    }
    parser.trim();
    if (e.provider == provider::google) {
        facts.model = e.path_model;
        facts.stream = e.path_stream;
        facts.include_usage = false;
    }
    return facts;
}

}  // namespace llm_proxy::llm

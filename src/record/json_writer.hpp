#pragma once
// A small JSON text writer with the layout of nlohmann::json::dump(2): two-space indent,
// ": " after keys, strings escaped as dump escapes them with ensure_ascii off. Strings are
// either sanitized text (utf8.hpp) or literals checked at compile time, so the output is
// always valid UTF-8.

#include <charconv>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "utf8.hpp"

namespace llm_proxy::record::detail {

// A string literal of printable ASCII: needs no sanitising. Checked at compile time.
class ascii_literal {
  public:
    // NOLINTNEXTLINE(google-explicit-constructor): literals convert where a string is taken.
    consteval ascii_literal(const char* s) : text_(s) {
        for (char c : text_) {
            if (c < 0x20 || c > 0x7e) {
                throw "a JSON literal must be printable ASCII";
            }
        }
    }
    std::string_view view() const { return text_; }

  private:
    std::string_view text_;
};

class json_writer {
  public:
    // compact: no whitespace at all (one JSON line), else dump(2)'s layout.
    explicit json_writer(std::string& out, bool compact = false) : out_(out), compact_(compact) {}

    void string(const sanitized& s) { escaped(s.view()); }
    void string(ascii_literal s) { escaped(s.view()); }
    // Any bytes: written as they are when they are valid UTF-8 (no copy), else as
    // sanitize_utf8 makes them.
    void text(std::string_view s);

    template <class Int>
    void number(Int v) {
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, end);
    }

    // The text of a JSON number, made by the caller (e.g. nlohmann's print of a double).
    void number_text(std::string_view digits) { out_ += digits; }

    // true, false or null.
    void literal(ascii_literal s) { out_ += s.view(); }

    void string_array(const std::vector<sanitized>& values, int level);

    // A whole JSON value at nesting `level` (an object's members come out in key order).
    // nlohmann's serializer escapes it and replaces invalid UTF-8, as sanitize_utf8 does.
    void value(const nlohmann::json& j, int level);

    // An object at nesting `level`, closed by the destructor. Members must be added in key
    // order (as std::map sorts them in nlohmann::json).
    class object {
      public:
        object(json_writer& w, int level) : w_(w), level_(level) {}
        ~object();
        object(const object&) = delete;
        object& operator=(const object&) = delete;

        json_writer& key(ascii_literal k) { return key_text(k.view()); }
        json_writer& key(const sanitized& k) { return key_text(k.view()); }
        int inner() const { return level_ + 1; }

      private:
        json_writer& key_text(std::string_view k);

        json_writer& w_;
        int level_;
        bool first_ = true;
    };

    // An array at nesting `level`, closed by the destructor; item() before each element.
    class array {
      public:
        array(json_writer& w, int level) : w_(w), level_(level) {}
        ~array();
        array(const array&) = delete;
        array& operator=(const array&) = delete;

        json_writer& item();
        int inner() const { return level_ + 1; }

      private:
        json_writer& w_;
        int level_;
        bool first_ = true;
    };

  private:
    void escaped(std::string_view s);
    void indent(int level) {
        if (!compact_) {
            out_.append(static_cast<std::size_t>(level) * 2, ' ');
        }
    }
    void newline() {
        if (!compact_) {
            out_.push_back('\n');
        }
    }

    std::string& out_;
    bool compact_;
};

}  // namespace llm_proxy::record::detail

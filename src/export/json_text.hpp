#pragma once
// Writing compact JSON text straight into a string: the export writers produce one line per
// example, thousands per second, so they append text rather than build a document. Strings
// given here are valid UTF-8 (they come from parsed JSON or from the record's text); only
// the characters JSON requires are escaped.

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llm_proxy::exporter::detail {

// The offset of the first byte of `s` that is not part of valid UTF-8, or npos.
std::size_t first_invalid_utf8(std::string_view s);

// Appends `s` as a JSON string literal.
void append_json_string(std::string& out, std::string_view s);

// Builds one JSON value; commas between members and elements are put in automatically.
class json_text {
  public:
    explicit json_text(std::string& out) : out_(out) {}

    json_text& begin_object() {
        separator();
        out_ += '{';
        first_ = true;
        return *this;
    }
    json_text& end_object() {
        out_ += '}';
        first_ = false;
        return *this;
    }
    json_text& begin_array() {
        separator();
        out_ += '[';
        first_ = true;
        return *this;
    }
    json_text& end_array() {
        out_ += ']';
        first_ = false;
        return *this;
    }
    // A member's key; its value follows.
    json_text& key(std::string_view k) {
        separator();
        append_json_string(out_, k);
        out_ += ':';
        after_key_ = true;
        return *this;
    }
    json_text& string(std::string_view s) {
        separator();
        append_json_string(out_, s);
        return *this;
    }
    json_text& optional_string(const std::optional<std::string>& s) {
        return s ? string(*s) : null();
    }
    template <class Int>
    json_text& number(Int v) {
        separator();
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, end);
        return *this;
    }
    json_text& number(double v);
    json_text& boolean(bool v) {
        separator();
        out_ += v ? "true" : "false";
        return *this;
    }
    json_text& null() {
        separator();
        out_ += "null";
        return *this;
    }
    // A value that is already JSON text.
    json_text& raw(std::string_view json) {
        separator();
        out_ += json;
        return *this;
    }
    // Where the next value starts (for hashing parts of a line).
    std::size_t position() const { return out_.size(); }

  private:
    void separator() {
        if (after_key_) {
            after_key_ = false;
        } else if (!first_) {
            out_ += ',';
        }
        first_ = false;
    }

    std::string& out_;
    bool first_ = true;
    bool after_key_ = false;
};

}  // namespace llm_proxy::exporter::detail

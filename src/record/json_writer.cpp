#include "json_writer.hpp"

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::record::detail {

void json_writer::escaped(std::string_view s) {
    out_.push_back('"');
    std::size_t run = 0;  // start of the bytes not yet copied
    for (std::size_t i = find_json_special(s, 0, false); i < s.size();
         i = find_json_special(s, i + 1, false)) {
        auto c = static_cast<unsigned char>(s[i]);
        out_.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"':
                out_ += "\\\"";
                break;
            case '\\':
                out_ += "\\\\";
                break;
            case '\b':
                out_ += "\\b";
                break;
            case '\f':
                out_ += "\\f";
                break;
            case '\n':
                out_ += "\\n";
                break;
            case '\r':
                out_ += "\\r";
                break;
            case '\t':
                out_ += "\\t";
                break;
            default:
                out_ += "\\u00";
                out_.push_back(hex_digits[c >> 4]);
                out_.push_back(hex_digits[c & 0xf]);
        }
    }
    out_.append(s.data() + run, s.size() - run);
    out_.push_back('"');
}

void json_writer::text(std::string_view s) {
    if (is_valid_utf8(s)) {
        escaped(s);
    } else {
        string(sanitize_utf8(s));
    }
}

void json_writer::value(const nlohmann::json& j, int level) {
    if (compact_) {
        out_ += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return;
    }
    std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string pad(static_cast<std::size_t>(level) * 2, ' ');
    std::size_t at = 0;
    for (std::size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', at)) {
        out_.append(text, at, nl + 1 - at);
        out_ += pad;
        at = nl + 1;
    }
    out_.append(text, at, std::string::npos);
}

void json_writer::string_array(const std::vector<sanitized>& values, int level) {
    if (values.empty()) {
        out_ += "[]";
        return;
    }
    out_.push_back('[');
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) {
            out_.push_back(',');
        }
        newline();
        indent(level + 1);
        string(values[i]);
    }
    newline();
    indent(level);
    out_.push_back(']');
}

json_writer::object::~object() {
    if (first_) {
        w_.out_ += "{}";
    } else {
        w_.newline();
        w_.indent(level_);
        w_.out_.push_back('}');
    }
}

json_writer& json_writer::object::key_text(std::string_view k) {
    w_.out_.push_back(first_ ? '{' : ',');
    w_.newline();
    first_ = false;
    w_.indent(level_ + 1);
    w_.escaped(k);
    w_.out_ += w_.compact_ ? ":" : ": ";
    return w_;
}

json_writer::array::~array() {
    if (first_) {
        w_.out_ += "[]";
    } else {
        w_.newline();
        w_.indent(level_);
        w_.out_.push_back(']');
    }
}

json_writer& json_writer::array::item() {
    w_.out_.push_back(first_ ? '[' : ',');
    w_.newline();
    first_ = false;
    w_.indent(level_ + 1);
    return w_;
}

}  // namespace llm_proxy::record::detail

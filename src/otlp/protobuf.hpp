#pragma once
// The protobuf wire format, as much of it as OTLP's trace messages need: varints, fixed
// 32/64-bit fields, length-delimited fields (bytes, strings, nested messages). Appends to a
// std::string; no schema, no library.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace llm_proxy::otlp::protobuf {

enum wire : unsigned { varint_type = 0, fixed64_type = 1, length_type = 2, fixed32_type = 5 };

inline std::size_t varint_size(std::uint64_t v) {
    std::size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}

inline void varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

inline void tag(std::string& out, unsigned field, wire type) {
    varint(out, (static_cast<std::uint64_t>(field) << 3) | type);
}

inline void varint_field(std::string& out, unsigned field, std::uint64_t v) {
    tag(out, field, varint_type);
    varint(out, v);
}

inline void fixed64_field(std::string& out, unsigned field, std::uint64_t v) {
    tag(out, field, fixed64_type);
    for (int i = 0; i < 8; ++i) {
        out += static_cast<char>((v >> (8 * i)) & 0xff);
    }
}

inline void fixed32_field(std::string& out, unsigned field, std::uint32_t v) {
    tag(out, field, fixed32_type);
    for (int i = 0; i < 4; ++i) {
        out += static_cast<char>((v >> (8 * i)) & 0xff);
    }
}

inline void double_field(std::string& out, unsigned field, double d) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &d, sizeof bits);
    fixed64_field(out, field, bits);
}

// Bytes as they are (the caller makes sure a `string` field is valid UTF-8).
inline void bytes_field(std::string& out, unsigned field, std::string_view data) {
    tag(out, field, length_type);
    varint(out, data.size());
    out += data;
}

// A nested message: its field's tag now, its length once its content is written (one byte
// is kept for it; a longer length moves the content up).
class nested {
  public:
    nested(std::string& out, unsigned field) : out_(out) {
        tag(out_, field, length_type);
        at_ = out_.size();
        out_ += '\0';
    }
    nested(const nested&) = delete;
    nested& operator=(const nested&) = delete;
    ~nested() { close(); }
    void close() {
        if (closed_) {
            return;
        }
        closed_ = true;
        const std::size_t length = out_.size() - at_ - 1;
        if (length < 0x80) {
            out_[at_] = static_cast<char>(length);
            return;
        }
        std::string prefix;
        varint(prefix, length);
        out_.replace(at_, 1, prefix);
    }

  private:
    std::string& out_;
    std::size_t at_;
    bool closed_ = false;
};

}  // namespace llm_proxy::otlp::protobuf

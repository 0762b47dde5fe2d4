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
    char buf[10];
    std::size_t n = 0;
    while (v >= 0x80) {
        buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out.append(buf, n);
}

inline void tag(std::string& out, unsigned field, wire type) {
    varint(out, (static_cast<std::uint64_t>(field) << 3) | type);
}

inline void varint_field(std::string& out, unsigned field, std::uint64_t v) {
    tag(out, field, varint_type);
    varint(out, v);
}

// Little-endian bytes of the low `n` bytes of `v`, after the field's tag.
inline void fixed_field(std::string& out, unsigned field, wire type, std::uint64_t v, int n) {
    tag(out, field, type);
    char buf[8];
    for (int i = 0; i < n; ++i) {
        buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
    out.append(buf, static_cast<std::size_t>(n));
}

inline void fixed64_field(std::string& out, unsigned field, std::uint64_t v) {
    fixed_field(out, field, fixed64_type, v, 8);
}

inline void fixed32_field(std::string& out, unsigned field, std::uint32_t v) {
    fixed_field(out, field, fixed32_type, v, 4);
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

#include "http_framing.hpp"

#include <algorithm>

#include "http_util.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::proxy {

namespace {

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

enum class line_status { complete, need_more, bad_ending, too_long };

// Finds the CRLF that ends the line at the front of `in`. A LF without CR before it, or a CR
// inside the line, is a bad line ending.
line_status find_line(std::string_view in, std::size_t limit, std::size_t& length) {
    auto scan = in.substr(0, limit + 2);
    auto lf = scan.find('\n');
    auto cr = scan.find('\r');
    if (lf == std::string_view::npos) {
        if (cr != std::string_view::npos && cr + 1 < scan.size()) {
            return line_status::bad_ending;  // CR followed by something else than LF
        }
        return in.size() > limit + 1 ? line_status::too_long : line_status::need_more;
    }
    if (lf == 0 || in[lf - 1] != '\r' || cr != lf - 1) {
        return line_status::bad_ending;
    }
    if (lf - 1 > limit) {
        return line_status::too_long;
    }
    length = lf - 1;
    return line_status::complete;
}

}  // namespace

std::string_view to_string(framing_error e) {
    switch (e) {
        case framing_error::none:
            return "no error";
        case framing_error::bad_chunk_size:
            return "invalid chunk size";
        case framing_error::bad_chunk_line:
            return "invalid chunk framing";
        case framing_error::bad_line_ending:
            return "line not ended by CRLF in chunked framing";
        case framing_error::line_too_long:
            return "chunk framing line too long";
        case framing_error::bad_trailer:
            return "invalid trailer field";
        case framing_error::trailers_too_large:
            return "trailer section too large";
        case framing_error::truncated:
            return "body ended before its framing said";
    }
    return "framing error";
}

framing_decoder framing_decoder::for_length(std::uint64_t n) {
    framing_decoder d;
    d.kind_ = framing::length;
    d.remaining_ = n;
    d.state_ = n == 0 ? state::done : state::data;
    return d;
}

framing_decoder framing_decoder::for_chunked() {
    framing_decoder d;
    d.kind_ = framing::chunked;
    d.state_ = state::chunk_size;
    return d;
}

framing_decoder framing_decoder::for_until_close() {
    framing_decoder d;
    d.kind_ = framing::until_close;
    d.state_ = state::until_close;
    return d;
}

std::optional<std::uint64_t> framing_decoder::remaining() const {
    if (kind_ == framing::length || kind_ == framing::none) {
        return state_ == state::done ? 0 : remaining_;
    }
    return std::nullopt;
}

framing_decoder::step framing_decoder::fail(framing_error e) {
    error_ = e;
    state_ = state::done;
    return {};
}

framing_decoder::step framing_decoder::decode(std::string_view in) {
    if (failed() || in.empty()) {
        return {};
    }
    switch (state_) {
        case state::done:
            return {};
        case state::until_close:
            body_bytes_ += in.size();
            return {in.size(), in};
        case state::data: {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
            remaining_ -= n;
            body_bytes_ += n;
            if (remaining_ == 0) {
                state_ = kind_ == framing::chunked ? state::chunk_data_end : state::done;
            }
            return {n, in.substr(0, n)};
        }
        case state::chunk_size:
            return chunk_size_line(in);
        case state::chunk_data_end:
            return chunk_data_end(in);
        case state::trailer:
            return trailer_line(in);
    }
    return {};
}

std::optional<std::string_view> framing_decoder::next_line(std::string_view in) {
    std::size_t length = 0;
    switch (find_line(in, max_line, length)) {
        case line_status::complete:
            return in.substr(0, length);
        case line_status::need_more:
            break;
        case line_status::bad_ending:
            fail(framing_error::bad_line_ending);
            break;
        case line_status::too_long:
            fail(framing_error::line_too_long);
            break;
    }
    return std::nullopt;
}

// chunk-size [ chunk-ext ] CRLF  (RFC 9112 section 7.1)
framing_decoder::step framing_decoder::chunk_size_line(std::string_view in) {
    auto next = next_line(in);
    if (!next) {
        // A size that is already wrong is reported without waiting for the line's end.
        if (!failed() && !in.empty() && hex_digit_value(in.front()) < 0) {
            return fail(framing_error::bad_chunk_size);
        }
        return {};
    }
    std::string_view line = *next;
    std::size_t digits = 0;
    std::uint64_t size = 0;
    for (; digits < line.size(); ++digits) {
        int v = hex_digit_value(line[digits]);
        if (v < 0) {
            break;
        }
        if ((size >> 60) != 0) {
            return fail(framing_error::bad_chunk_size);  // past 64 bits
        }
        size = (size << 4) | static_cast<unsigned>(v);
    }
    if (digits == 0) {
        return fail(framing_error::bad_chunk_size);
    }
    std::string_view rest = line.substr(digits);
    while (!rest.empty() && is_ows(rest.front())) {
        rest.remove_prefix(1);
    }
    if (!rest.empty()) {
        if (rest.front() != ';') {
            return fail(framing_error::bad_chunk_size);  // "0x5", "5 6", ...
        }
        if (!is_field_value(rest)) {
            return fail(framing_error::bad_chunk_line);
        }
    }
    if (size == 0) {
        state_ = state::trailer;
    } else {
        state_ = state::data;
        remaining_ = size;
    }
    return {line.size() + 2, {}};
}

framing_decoder::step framing_decoder::chunk_data_end(std::string_view in) {
    if (in[0] != '\r') {
        return fail(in[0] == '\n' ? framing_error::bad_line_ending : framing_error::bad_chunk_line);
    }
    if (in.size() < 2) {
        return {};
    }
    if (in[1] != '\n') {
        return fail(framing_error::bad_line_ending);
    }
    state_ = state::chunk_size;
    return {2, {}};
}

// trailer-section = *( field-line CRLF ) CRLF
framing_decoder::step framing_decoder::trailer_line(std::string_view in) {
    auto next = next_line(in);
    if (!next) {
        return {};
    }
    std::string_view line = *next;
    if (line.empty()) {
        state_ = state::done;
        return {2, {}};
    }
    trailer_bytes_ += line.size() + 2;
    if (trailer_bytes_ > max_trailer_bytes) {
        return fail(framing_error::trailers_too_large);
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
        return fail(framing_error::bad_trailer);  // also an obs-fold (a line starting with SP)
    }
    std::string_view value = line.substr(colon + 1);
    if (!is_field_value(value)) {
        return fail(framing_error::bad_trailer);
    }
    while (!value.empty() && is_ows(value.front())) {
        value.remove_prefix(1);
    }
    while (!value.empty() && is_ows(value.back())) {
        value.remove_suffix(1);
    }
    trailers_.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    return {line.size() + 2, {}};
}

void framing_decoder::end_of_input() {
    if (state_ == state::until_close) {
        state_ = state::done;
    } else if (state_ != state::done) {
        fail(framing_error::truncated);
    }
}

framing_encoder framing_encoder::for_length(std::uint64_t n) {
    framing_encoder e;
    e.kind_ = framing::length;
    e.length_ = n;
    return e;
}

framing_encoder framing_encoder::for_chunked() {
    framing_encoder e;
    e.kind_ = framing::chunked;
    return e;
}

framing_encoder framing_encoder::for_until_close() {
    framing_encoder e;
    e.kind_ = framing::until_close;
    return e;
}

bool framing_encoder::begin_piece(std::size_t n, std::string_view& prefix) {
    prefix = {};
    switch (kind_) {
        case framing::none:
            return n == 0;
        case framing::length:
            if (n > length_ - written_) {
                return false;
            }
            break;
        case framing::chunked: {
            if (n == 0) {
                return true;  // a zero-size chunk would end the body
            }
            char* end = line_ + sizeof line_;
            char* p = end;
            *--p = '\n';
            *--p = '\r';
            for (auto v = static_cast<std::uint64_t>(n); v != 0; v >>= 4) {
                *--p = hex_digits[v & 0xf];
            }
            prefix = {p, static_cast<std::size_t>(end - p)};
            break;
        }
        case framing::until_close:
            break;
    }
    written_ += n;
    return true;
}

std::string_view framing_encoder::end_piece() const {
    return kind_ == framing::chunked ? std::string_view("\r\n") : std::string_view();
}

bool framing_encoder::finish(const header_list& trailers, std::string& out) const {
    if (kind_ == framing::length) {
        return written_ == length_;
    }
    if (kind_ == framing::chunked) {
        out += "0\r\n";
        for (const auto& [name, value] : trailers) {
            out += name;
            out += ": ";
            out += value;
            out += "\r\n";
        }
        out += "\r\n";
    }
    return true;
}

}  // namespace llm_proxy::proxy

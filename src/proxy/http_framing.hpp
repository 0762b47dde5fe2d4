#pragma once
// HTTP/1.1 message body framing (RFC 9112 sections 6 and 7): a strict decoder for the body
// bytes that follow a message head, and an encoder that frames body data for the other side.
// No I/O here: the body relay (body_relay.hpp) drives both.
//
// The decoder never guesses. A chunk-size that is not 1-16 hex digits or does not fit 64 bits,
// a line ended by a bare LF or CR, control characters in a chunk extension, a chunk not
// followed by CRLF, an obs-fold or malformed trailer field: each is a framing error, and the
// connection it came from is not used for another message.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "llm_proxy/flow.hpp"

namespace llm_proxy::proxy {

// How a body is delimited on the wire.
enum class framing {
    none,         // no body (Content-Length: 0, HEAD, 204, 304, a request without framing)
    length,       // Content-Length
    chunked,      // Transfer-Encoding: chunked
    until_close,  // a response read until the connection closes
};

enum class framing_error {
    none,
    bad_chunk_size,      // not 1*HEXDIG, or more than 16 digits / 64 bits
    bad_chunk_line,      // control characters in the chunk extension, missing CRLF after data
    bad_line_ending,     // a bare LF or CR where CRLF belongs
    line_too_long,       // a chunk-size line or trailer field longer than the limit
    bad_trailer,         // a trailer field that is not name ":" value, or an obs-fold
    trailers_too_large,  // the trailer section exceeds its limit
    truncated,           // the connection ended before the body did
};

std::string_view to_string(framing_error e);

class framing_decoder {
  public:
    static constexpr std::size_t max_line = 4096;
    static constexpr std::size_t max_trailer_bytes = 16 * 1024;

    // A decoder for no body: done from the start.
    framing_decoder() = default;
    static framing_decoder for_length(std::uint64_t n);
    static framing_decoder for_chunked();
    static framing_decoder for_until_close();

    // One step over the front of `in`: `consumed` bytes of `in` were used (framing included),
    // `data` is body data inside `in` (possibly empty). A step that consumes nothing needs more
    // input (or the decoder is done or failed).
    struct step {
        std::size_t consumed = 0;
        std::string_view data{};
    };
    step decode(std::string_view in);

    // The peer closed its side: ends an until_close body; any other unfinished body becomes
    // a `truncated` error.
    void end_of_input();

    framing kind() const { return kind_; }
    bool done() const { return state_ == state::done; }
    bool failed() const { return error_ != framing_error::none; }
    framing_error error() const { return error_; }
    // Trailer fields of a chunked body, once done.
    const header_list& trailers() const { return trailers_; }
    // Body data bytes decoded so far.
    std::uint64_t body_bytes() const { return body_bytes_; }
    // Body bytes still to come of a length body; nullopt when the size is not known.
    std::optional<std::uint64_t> remaining() const;

  private:
    enum class state { done, data, chunk_size, chunk_data_end, trailer, until_close };
    step fail(framing_error e);
    // The complete line at the front of `in` (without its CRLF), or nullopt when more input
    // is needed or the line is bad (then the decoder has failed).
    std::optional<std::string_view> next_line(std::string_view in);
    step chunk_size_line(std::string_view in);
    step chunk_data_end(std::string_view in);
    step trailer_line(std::string_view in);

    framing kind_ = framing::none;
    state state_ = state::done;
    framing_error error_ = framing_error::none;
    std::uint64_t remaining_ = 0;  // of the length body or the current chunk
    std::uint64_t body_bytes_ = 0;
    std::size_t trailer_bytes_ = 0;
    header_list trailers_;
};

// Frames body data for the wire. For `length` the caller writes exactly the announced bytes;
// the encoder checks it.
class framing_encoder {
  public:
    framing_encoder() = default;
    static framing_encoder for_length(std::uint64_t n);
    static framing_encoder for_chunked();
    static framing_encoder for_until_close();

    framing kind() const { return kind_; }
    // The bytes that go before `n` data bytes (a chunk-size line), valid until the next call.
    // False when the data does not fit the framing (more than a Content-Length announced).
    bool begin_piece(std::size_t n, std::string_view& prefix);
    // The bytes that go after a piece of data (CRLF ending a chunk).
    std::string_view end_piece() const;
    // The bytes that end the body: the last chunk with its trailers. False when a length body
    // is short of what was announced.
    bool finish(const header_list& trailers, std::string& out) const;
    std::uint64_t written() const { return written_; }

  private:
    framing kind_ = framing::none;
    std::uint64_t length_ = 0;
    std::uint64_t written_ = 0;
    char line_[24] = {};
};

}  // namespace llm_proxy::proxy

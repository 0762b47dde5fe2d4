// The body framing decoder and encoder (src/proxy/http_framing.hpp): every split of the input,
// the RFC 9112 chunked grammar at its edges, and round trips.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "proxy/http_framing.hpp"

using namespace llm_proxy;
using namespace llm_proxy::proxy;

namespace {

struct decoded {
    std::string body;
    std::size_t consumed = 0;  // bytes of the input the body took
    bool done = false;
    framing_error error = framing_error::none;
    header_list trailers;
};

// Feeds `wire` to the decoder in pieces of `step` bytes (as reads would deliver them), keeping
// unconsumed bytes for the next round like the relay's buffer does.
decoded decode_in_steps(framing_decoder d, std::string_view wire, std::size_t step,
                        bool eof_at_end = false) {
    decoded out;
    std::string buffer;
    std::size_t fed = 0;
    for (;;) {
        for (;;) {
            auto s = d.decode(buffer);
            out.body.append(s.data);
            buffer.erase(0, s.consumed);
            out.consumed += s.consumed;
            if (s.consumed == 0) {
                break;
            }
        }
        if (d.done() || d.failed() || fed == wire.size()) {
            break;
        }
        auto n = std::min(step, wire.size() - fed);
        buffer.append(wire.substr(fed, n));
        fed += n;
    }
    if (eof_at_end && !d.done()) {
        d.end_of_input();
    }
    out.done = d.done() && !d.failed();
    out.error = d.error();
    out.trailers = d.trailers();
    return out;
}

std::string chunked(std::string_view body, std::size_t chunk, std::string_view ext = {},
                    std::string_view trailers = {}) {
    std::string out;
    for (std::size_t at = 0; at < body.size(); at += chunk) {
        auto n = std::min(chunk, body.size() - at);
        char size[20];
        std::snprintf(size, sizeof size, "%zx", n);
        out += size;
        out += ext;
        out += "\r\n";
        out += body.substr(at, n);
        out += "\r\n";
    }
    out += "0";
    out += ext;
    out += "\r\n";
    out += trailers;
    out += "\r\n";
    return out;
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    std::mt19937 rng(static_cast<unsigned>(n));
    for (auto& c : s) {
        c = static_cast<char>(rng());
    }
    return s;
}

framing_error chunked_error(std::string_view wire) {
    return decode_in_steps(framing_decoder::for_chunked(), wire, wire.size()).error;
}

}  // namespace

TEST(FramingDecoder, ChunkedBodyDecodesWhateverTheReadSplit) {
    const std::string body = pattern(3000);
    const std::string wire =
        chunked(body, 1000, ";name=\"quoted value\"", "X-Checksum: abc\r\nX-Other:  two \r\n") +
        "NEXT";
    for (std::size_t step = 1; step <= 70; ++step) {
        auto d = decode_in_steps(framing_decoder::for_chunked(), wire, step);
        ASSERT_TRUE(d.done) << "step " << step << ": " << to_string(d.error);
        ASSERT_EQ(d.body, body) << "step " << step;
        ASSERT_EQ(d.consumed, wire.size() - 4) << "the next message is left alone";
        ASSERT_EQ(d.trailers.size(), 2u);
        EXPECT_EQ(d.trailers[0], (std::pair<std::string, std::string>{"X-Checksum", "abc"}));
        EXPECT_EQ(d.trailers[1], (std::pair<std::string, std::string>{"X-Other", "two"}));
    }
}

TEST(FramingDecoder, LengthBodyStopsAtItsEnd) {
    for (std::size_t n : {0u, 1u, 65535u, 65536u, 65537u}) {
        const std::string body = pattern(n);
        auto d = decode_in_steps(framing_decoder::for_length(n), body + "GET / HTTP/1.1", 4096);
        EXPECT_TRUE(d.done);
        EXPECT_EQ(d.body, body);
        EXPECT_EQ(d.consumed, n);
    }
}

TEST(FramingDecoder, LengthBodyCutShortIsTruncated) {
    auto d = decode_in_steps(framing_decoder::for_length(100), std::string(60, 'x'), 7, true);
    EXPECT_FALSE(d.done);
    EXPECT_EQ(d.error, framing_error::truncated);
    EXPECT_EQ(d.body.size(), 60u);
}

TEST(FramingDecoder, ChunkedBodyCutShortIsTruncated) {
    const std::string wire = chunked(pattern(100), 40);
    for (std::size_t cut = 0; cut < wire.size(); ++cut) {
        auto d = decode_in_steps(framing_decoder::for_chunked(), wire.substr(0, cut), 3, true);
        EXPECT_FALSE(d.done) << "cut at " << cut;
        EXPECT_EQ(d.error, framing_error::truncated) << "cut at " << cut;
    }
}

TEST(FramingDecoder, UntilCloseEndsWithTheConnection) {
    auto d = decode_in_steps(framing_decoder::for_until_close(), "all of it", 2, true);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.body, "all of it");
}

TEST(FramingDecoder, NoBodyIsDoneAtOnce) {
    framing_decoder d;
    EXPECT_TRUE(d.done());
    EXPECT_EQ(d.decode("GET / HTTP/1.1\r\n").consumed, 0u);
}

TEST(FramingDecoder, ChunkSizesAtTheEdgesOf64Bits) {
    EXPECT_EQ(chunked_error("FFFFFFFFFFFFFFFFF1\r\n"), framing_error::bad_chunk_size);
    EXPECT_EQ(chunked_error("10000000000000005\r\n"), framing_error::bad_chunk_size);
    EXPECT_EQ(chunked_error("-5\r\nhello\r\n0\r\n\r\n"), framing_error::bad_chunk_size);
    EXPECT_EQ(chunked_error("0x5\r\nhello\r\n0\r\n\r\n"), framing_error::bad_chunk_size);
    EXPECT_EQ(chunked_error("+5\r\nhello\r\n0\r\n\r\n"), framing_error::bad_chunk_size);
    EXPECT_EQ(chunked_error(" 5\r\nhello\r\n0\r\n\r\n"), framing_error::bad_chunk_size);
    EXPECT_EQ(chunked_error("5 5\r\nhello\r\n0\r\n\r\n"), framing_error::bad_chunk_size);
    EXPECT_EQ(chunked_error("\r\n"), framing_error::bad_chunk_size);
    // The largest 64-bit size is accepted (and then waits for its data); leading zeros too.
    framing_decoder big = framing_decoder::for_chunked();
    EXPECT_EQ(big.decode("FFFFFFFFFFFFFFFF\r\n").consumed, 18u);
    EXPECT_FALSE(big.failed());
    auto d = decode_in_steps(framing_decoder::for_chunked(),
                             "000000000000000000005\r\nhello\r\n0\r\n\r\n", 100);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.body, "hello");
    // A size followed by whitespace before the extension is allowed (BWS).
    EXPECT_TRUE(
        decode_in_steps(framing_decoder::for_chunked(), "5 ;a=b\r\nhello\r\n0\r\n\r\n", 100).done);
}

TEST(FramingDecoder, BareLineEndingsAreErrorsAtOnce) {
    EXPECT_EQ(chunked_error("5\nhello\r\n0\r\n\r\n"), framing_error::bad_line_ending);
    EXPECT_EQ(chunked_error("5\rhello\r\n0\r\n\r\n"), framing_error::bad_line_ending);
    EXPECT_EQ(chunked_error("5\r\nhello\n0\r\n\r\n"), framing_error::bad_line_ending);
    EXPECT_EQ(chunked_error("5\r\nhello\r\n0\n\r\n"), framing_error::bad_line_ending);
    EXPECT_EQ(chunked_error("5\r\nhello\r\n0\r\nX: y\n\r\n"), framing_error::bad_line_ending);
    // Without waiting for more input: "5\n" alone is already wrong.
    EXPECT_EQ(chunked_error("5\n"), framing_error::bad_line_ending);
}

TEST(FramingDecoder, ChunkDataMustEndWithCrlf) {
    EXPECT_EQ(chunked_error("5\r\nhelloX\r\n0\r\n\r\n"), framing_error::bad_chunk_line);
    EXPECT_EQ(chunked_error("5\r\nhello\rX0\r\n\r\n"), framing_error::bad_line_ending);
}

TEST(FramingDecoder, ControlCharactersInExtensionsAreRejected) {
    EXPECT_EQ(chunked_error(std::string("5;a=\0\r\nhello\r\n0\r\n\r\n", 19)),
              framing_error::bad_chunk_line);
    EXPECT_EQ(chunked_error("5;a=\x01\r\nhello\r\n0\r\n\r\n"), framing_error::bad_chunk_line);
}

TEST(FramingDecoder, TrailersAreValidated) {
    EXPECT_EQ(chunked_error("0\r\nNo colon\r\n\r\n"), framing_error::bad_trailer);
    EXPECT_EQ(chunked_error("0\r\n: empty name\r\n\r\n"), framing_error::bad_trailer);
    EXPECT_EQ(chunked_error("0\r\nA: b\r\n folded\r\n\r\n"), framing_error::bad_trailer);
    EXPECT_EQ(chunked_error("0\r\nBad Name: x\r\n\r\n"), framing_error::bad_trailer);
    std::string many = "0\r\n";
    for (int i = 0; i < 400; ++i) {
        many += "X-Field-" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\n";
    }
    EXPECT_EQ(chunked_error(many + "\r\n"), framing_error::trailers_too_large);
}

TEST(FramingDecoder, OverlongLinesAreRejectedWithoutUnboundedWaiting) {
    std::string line = "5;" + std::string(framing_decoder::max_line + 10, 'a');
    EXPECT_EQ(chunked_error(line), framing_error::line_too_long);
    EXPECT_EQ(chunked_error(line + "\r\nhello\r\n0\r\n\r\n"), framing_error::line_too_long);
}

namespace {

// A chunk-size line of `length` bytes without its CRLF: size "5", then an extension padded
// with 'a' to the length.
std::string chunk_size_line(std::size_t length) {
    return "5;x=" + std::string(length - 4, 'a');
}

// A trailer section whose field lines, each with its CRLF, take `bytes` in all (the empty
// line that ends the section comes on top); lines of at most max_line bytes.
std::string trailer_section(std::size_t bytes) {
    std::string out;
    for (int i = 0; bytes > 0; ++i) {
        const std::size_t line = std::min(bytes, framing_decoder::max_line + 2);
        const std::string name = "X-T" + std::to_string(i) + ": ";
        EXPECT_GE(line, name.size() + 2);
        out += name + std::string(line - name.size() - 2, 'v') + "\r\n";
        bytes -= line;
    }
    return out;
}

}  // namespace

TEST(FramingDecoder, ChunkSizeLineAtItsBoundWholeAndByteByByte) {
    // max_line counts the line's bytes without its CRLF, extension included.
    for (std::size_t step : {std::size_t{1}, std::size_t{1} << 20}) {
        for (std::size_t length : {framing_decoder::max_line - 1, framing_decoder::max_line,
                                   framing_decoder::max_line + 1}) {
            SCOPED_TRACE("line of " + std::to_string(length) + ", step " + std::to_string(step));
            const std::string line = chunk_size_line(length);
            ASSERT_EQ(line.size(), length);
            const std::string wire = line + "\r\nhello\r\n" + line + "\r\nworld\r\n0\r\n\r\n";
            auto d = decode_in_steps(framing_decoder::for_chunked(), wire + "NEXT", step);
            if (length <= framing_decoder::max_line) {
                EXPECT_TRUE(d.done) << to_string(d.error);
                EXPECT_EQ(d.error, framing_error::none);
                EXPECT_EQ(d.body, "helloworld");
                EXPECT_EQ(d.consumed, wire.size()) << "the next message is left alone";
            } else {
                EXPECT_FALSE(d.done);
                EXPECT_EQ(d.error, framing_error::line_too_long);
                EXPECT_EQ(d.body, "");
            }
        }
    }
    // Without its CRLF yet, a line at the bound waits; one byte past it fails at once.
    auto waiting = framing_decoder::for_chunked();
    EXPECT_EQ(waiting.decode(chunk_size_line(framing_decoder::max_line) + "\r").consumed, 0u);
    EXPECT_FALSE(waiting.failed());
    auto over = framing_decoder::for_chunked();
    EXPECT_EQ(over.decode(chunk_size_line(framing_decoder::max_line + 1) + "\r").consumed, 0u);
    EXPECT_EQ(over.error(), framing_error::line_too_long);
}

TEST(FramingDecoder, TrailerLineAtTheLineBound) {
    for (std::size_t length : {framing_decoder::max_line - 1, framing_decoder::max_line,
                               framing_decoder::max_line + 1}) {
        for (std::size_t step : {std::size_t{1}, std::size_t{1} << 20}) {
            SCOPED_TRACE("trailer line of " + std::to_string(length) + ", step " +
                         std::to_string(step));
            const std::string field = "X-Long: " + std::string(length - 8, 'v');
            ASSERT_EQ(field.size(), length);
            auto d = decode_in_steps(framing_decoder::for_chunked(),
                                     "5\r\nhello\r\n0\r\n" + field + "\r\n\r\n", step);
            if (length <= framing_decoder::max_line) {
                EXPECT_TRUE(d.done) << to_string(d.error);
                ASSERT_EQ(d.trailers.size(), 1u);
                EXPECT_EQ(d.trailers[0].second.size(), length - 8);
            } else {
                EXPECT_EQ(d.error, framing_error::line_too_long);
            }
        }
    }
}

TEST(FramingDecoder, TrailerSectionAtItsBoundWholeAndByteByByte) {
    // max_trailer_bytes counts the field lines with their CRLFs, not the final empty line.
    for (std::size_t step : {std::size_t{1}, std::size_t{1} << 20}) {
        for (std::size_t bytes :
             {framing_decoder::max_trailer_bytes - 1, framing_decoder::max_trailer_bytes,
              framing_decoder::max_trailer_bytes + 1}) {
            SCOPED_TRACE("trailers of " + std::to_string(bytes) + ", step " + std::to_string(step));
            const std::string trailers = trailer_section(bytes);
            ASSERT_EQ(trailers.size(), bytes);
            const std::string wire = "5\r\nhello\r\n0\r\n" + trailers + "\r\n";
            auto d = decode_in_steps(framing_decoder::for_chunked(), wire + "NEXT", step);
            if (bytes <= framing_decoder::max_trailer_bytes) {
                EXPECT_TRUE(d.done) << to_string(d.error);
                EXPECT_EQ(d.body, "hello");
                EXPECT_EQ(d.consumed, wire.size()) << "the next message is left alone";
                EXPECT_EQ(d.trailers.size(), 4u);
            } else {
                EXPECT_FALSE(d.done);
                EXPECT_EQ(d.error, framing_error::trailers_too_large);
            }
        }
    }
}

TEST(FramingEncoder, ChunkedRoundTripsThroughTheDecoder) {
    auto enc = framing_encoder::for_chunked();
    std::string wire;
    const std::string body = pattern(70000);
    for (std::size_t at = 0; at < body.size(); at += 65536) {
        auto piece = std::string_view(body).substr(at, 65536);
        std::string_view prefix;
        ASSERT_TRUE(enc.begin_piece(piece.size(), prefix));
        wire += prefix;
        wire += piece;
        wire += enc.end_piece();
    }
    std::string_view nothing;
    ASSERT_TRUE(enc.begin_piece(0, nothing));
    EXPECT_TRUE(nothing.empty()) << "an empty piece must not become the last chunk";
    ASSERT_TRUE(enc.finish({{"X-T", "1"}}, wire));
    EXPECT_EQ(wire.substr(0, 7), "10000\r\n");
    auto d = decode_in_steps(framing_decoder::for_chunked(), wire, 1000);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.body, body);
    ASSERT_EQ(d.trailers.size(), 1u);
    EXPECT_EQ(d.trailers[0].first, "X-T");
}

TEST(FramingEncoder, LengthChecksWhatIsWritten) {
    auto enc = framing_encoder::for_length(10);
    std::string_view prefix;
    std::string tail;
    EXPECT_TRUE(enc.begin_piece(6, prefix));
    EXPECT_TRUE(prefix.empty());
    EXPECT_FALSE(enc.finish({}, tail)) << "4 bytes short";
    EXPECT_FALSE(enc.begin_piece(5, prefix)) << "one byte too many";
    EXPECT_TRUE(enc.begin_piece(4, prefix));
    EXPECT_TRUE(enc.finish({}, tail));
    EXPECT_TRUE(tail.empty());
}

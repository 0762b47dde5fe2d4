#include "llm_proxy/record/stream_decoder.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "coding_samples.hpp"
#include "llm_proxy/record/body_decoder.hpp"

namespace llm_proxy::record {
namespace {

using samples::random_bytes;
using samples::raw_deflate;

std::string sample_text() {
    std::string s;
    for (int i = 0; i < 3000; ++i) {
        s += "data: {\"choices\":[{\"delta\":{\"content\":\"piece " + std::to_string(i * 7919) +
             "\"}}]}\n\n";
    }
    return s;
}

struct collector final : stream_decoder::sink {
    bool write(std::string_view piece) override {
        out.append(piece);
        ++writes;
        return out.size() < stop_after;
    }
    std::string out;
    std::size_t writes = 0;
    std::size_t stop_after = static_cast<std::size_t>(-1);
};

std::unique_ptr<stream_decoder> make(std::string_view encoding) {
    std::string error;
    auto d = stream_decoder::make(encoding, error);
    EXPECT_TRUE(d) << error;
    return d;
}

// Feeds `input` in pieces of `step` bytes.
std::string decode_in_pieces(stream_decoder& d, std::string_view input, std::size_t step) {
    collector c;
    for (std::size_t i = 0; i < input.size(); i += step) {
        EXPECT_TRUE(d.feed(input.substr(i, step), c)) << d.error();
    }
    return c.out;
}

class pieces : public ::testing::TestWithParam<const char*> {};

TEST_P(pieces, any_split_decodes_the_same) {
    const std::string text = sample_text();
    const std::string encoded = encode_body(GetParam(), text);
    for (std::size_t step : {1ul, 2ul, 3ul, 7ul, 1000ul, 65536ul}) {
        auto d = make(GetParam());
        EXPECT_EQ(decode_in_pieces(*d, encoded, step), text) << GetParam() << " step " << step;
        EXPECT_TRUE(d->complete()) << GetParam() << " step " << step;
        EXPECT_FALSE(d->failed());
    }
}

TEST_P(pieces, output_comes_out_before_the_body_ends) {
    const std::string text = sample_text();
    const std::string encoded = encode_body(GetParam(), text);
    auto d = make(GetParam());
    collector c;
    ASSERT_TRUE(d->feed(std::string_view(encoded).substr(0, encoded.size() * 3 / 4), c));
    EXPECT_GT(c.out.size(), 0u) << GetParam();
    EXPECT_EQ(c.out, text.substr(0, c.out.size()));
    EXPECT_FALSE(d->complete());  // cut short so far
    ASSERT_TRUE(d->feed(std::string_view(encoded).substr(encoded.size() * 3 / 4), c));
    EXPECT_EQ(c.out, text);
    EXPECT_TRUE(d->complete());
}

INSTANTIATE_TEST_SUITE_P(encodings, pieces, ::testing::Values("gzip", "deflate", "br", "zstd"));

TEST(stream_decoder, stacked_codings_in_pieces) {
    const std::string text = sample_text();
    const std::string encoded = encode_body("zstd", encode_body("br", encode_body("gzip", text)));
    auto d = make("gzip, br, zstd");
    EXPECT_EQ(decode_in_pieces(*d, encoded, 13), text);
    EXPECT_TRUE(d->complete());
}

TEST(stream_decoder, gzip_members_split_at_the_magic_number) {
    const std::string first = encode_body("gzip", "hello ");
    const std::string input = first + encode_body("gzip", "world");
    auto d = make("gzip");
    collector c;
    // The next member's first byte arrives alone.
    ASSERT_TRUE(d->feed(std::string_view(input).substr(0, first.size() + 1), c));
    ASSERT_TRUE(d->feed(std::string_view(input).substr(first.size() + 1), c));
    EXPECT_EQ(c.out, "hello world");
    EXPECT_TRUE(d->complete());
}

TEST(stream_decoder, bytes_after_the_end_are_ignored) {
    auto d = make("gzip");
    collector c;
    ASSERT_TRUE(d->feed(encode_body("gzip", "hello") + "trailing junk", c));
    EXPECT_EQ(c.out, "hello");
    EXPECT_TRUE(d->complete());
}

TEST(stream_decoder, corrupt_data_fails_and_stays_failed) {
    std::string gz = encode_body("gzip", sample_text());
    gz[gz.size() / 2] = static_cast<char>(gz[gz.size() / 2] ^ 0x55);
    gz[gz.size() / 2 + 1] = static_cast<char>(gz[gz.size() / 2 + 1] ^ 0x55);
    auto d = make("gzip");
    collector c;
    bool ok = d->feed(gz, c);
    EXPECT_FALSE(ok);
    EXPECT_TRUE(d->failed());
    EXPECT_NE(d->error().find("zlib"), std::string::npos) << d->error();
    EXPECT_FALSE(d->complete());
    EXPECT_FALSE(d->feed("more", c));
}

TEST(stream_decoder, the_sink_can_stop_it) {
    const std::string text(1 << 20, 'a');
    auto d = make("gzip");
    collector c;
    c.stop_after = 1000;
    EXPECT_FALSE(d->feed(encode_body("gzip", text), c));
    EXPECT_FALSE(d->failed());
    EXPECT_LT(c.out.size(), 100'000u);  // one buffer's worth, not the whole megabyte
    std::size_t writes = c.writes;
    EXPECT_FALSE(d->feed("x", c));
    EXPECT_EQ(c.writes, writes);
}

TEST(stream_decoder, identity_passes_bytes_through) {
    for (const char* enc : {"", "identity", " Identity , identity"}) {
        auto d = make(enc);
        EXPECT_TRUE(d->identity()) << enc;
        collector c;
        ASSERT_TRUE(d->feed("abc", c));
        EXPECT_EQ(c.out, "abc");
        EXPECT_TRUE(d->complete());
    }
}

TEST(stream_decoder, unknown_coding_is_named) {
    std::string error;
    EXPECT_FALSE(stream_decoder::make("gzip, snappy", error));
    EXPECT_NE(error.find("snappy"), std::string::npos) << error;
}

TEST(stream_decoder, at_most_five_codings_are_undone) {
    const std::string text = sample_text();
    std::string encoded = text;
    std::string five;
    for (int i = 0; i < 5; ++i) {
        encoded = encode_body("gzip", encoded);
        five += i == 0 ? "gzip" : ", gzip";
    }
    auto d = make(five);
    EXPECT_EQ(decode_in_pieces(*d, encoded, 1000), text);
    EXPECT_TRUE(d->complete());

    // A head listing thousands of codings (one codec window each) is refused, not built.
    std::string many = five;
    for (int i = 0; i < 10000; ++i) {
        many += ", gzip";
    }
    std::string error;
    EXPECT_FALSE(stream_decoder::make(five + ", gzip", error));
    EXPECT_NE(error.find("more than 5 content codings"), std::string::npos) << error;
    error.clear();
    EXPECT_FALSE(stream_decoder::make(many, error));
    EXPECT_FALSE(error.empty());
    // identity does not count.
    error.clear();
    EXPECT_TRUE(stream_decoder::make(five + ", identity, identity", error)) << error;
}

TEST(stream_decoder, coding_count_at_the_bound_identity_not_counted) {
    static_assert(stream_decoder::max_codings == 5);
    const std::string text = sample_text();
    // Mixed codings, `identity` tokens between them: 4 and 5 codings are undone, 6 refused.
    const char* codings[] = {"gzip", "deflate", "br", "zstd", "gzip", "deflate"};
    for (std::size_t n = stream_decoder::max_codings - 1; n <= stream_decoder::max_codings + 1;
         ++n) {
        SCOPED_TRACE(std::to_string(n) + " codings");
        std::string encoded = text;
        std::string header = "identity";
        for (std::size_t i = 0; i < n; ++i) {
            encoded = encode_body(codings[i], encoded);
            header += std::string(", ") + codings[i] + ", identity";
        }
        std::string error;
        auto d = stream_decoder::make(header, error);
        if (n <= stream_decoder::max_codings) {
            ASSERT_TRUE(d) << error;
            EXPECT_FALSE(d->identity());
            EXPECT_EQ(decode_in_pieces(*d, encoded, 4096), text);
            EXPECT_TRUE(d->complete());
        } else {
            EXPECT_FALSE(d);
            EXPECT_NE(error.find("more than 5 content codings"), std::string::npos) << error;
        }
    }
    // Only identity tokens, however many: no coding at all.
    std::string only_identity = "identity";
    for (int i = 0; i < 10; ++i) {
        only_identity += ", identity";
    }
    auto d = make(only_identity);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->identity());
}

// --- Sizes at the stage buffer bound ---------------------------------------------------------
// Each coding writes its output through a 16 KiB buffer (stage::buffer_size). Decoded output,
// the output of an inner stage (what the next coding gets) and the compressed input are tried
// at one below, at and one above one and two buffers' worth, fed whole, a byte at a time and in
// odd pieces. The content does not repeat, so a lost or doubled buffer shows.

constexpr std::size_t stage_buffer = 16 * 1024;  // stream_decoder::stage::buffer_size

// Compressible but never repeating: numbered lines (a small input fills many buffers).
std::string counting_text(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; s.size() < n; ++i) {
        s += "line " + std::to_string(i * 7919 % 1000003) + " of " + std::to_string(i) + "\n";
    }
    s.resize(n);
    return s;
}

// A coding as the tests apply it: its Content-Encoding token and its encoder ("raw deflate"
// is sent as "deflate").
struct codec {
    const char* name;
    const char* token;
};

void PrintTo(const codec& c, std::ostream* os) {
    *os << c.name;
}

std::string encode(const codec& c, std::string_view input) {
    return std::string_view(c.name) == "raw deflate" ? raw_deflate(input)
                                                     : encode_body(c.token, input);
}

const codec gzip{"gzip", "gzip"};
const codec zlib_deflate{"deflate", "deflate"};
const codec raw{"raw deflate", "deflate"};
const codec br{"br", "br"};
const codec zstd{"zstd", "zstd"};

const std::size_t sizes_at_the_bound[] = {stage_buffer - 1, stage_buffer,
                                          stage_buffer + 1, 2 * stage_buffer - 1,
                                          2 * stage_buffer, 2 * stage_buffer + 1};

// Decodes `encoded` whole, a byte at a time and in odd pieces: every way gives exactly `text`
// without error, and the decoder says the body was whole.
void expect_decodes(std::string_view encoding, std::string_view encoded, const std::string& text) {
    const std::vector<std::size_t> odd = {7, 4093, 1, stage_buffer + 1, 333, stage_buffer - 1, 2};
    for (int way = 0; way < 3; ++way) {
        SCOPED_TRACE(way == 0 ? "whole" : way == 1 ? "byte at a time" : "odd pieces");
        std::string error;
        auto d = stream_decoder::make(encoding, error);
        ASSERT_TRUE(d) << error;
        collector c;
        std::size_t pos = 0;
        for (std::size_t k = 0; pos < encoded.size(); ++k) {
            std::size_t step = way == 0 ? encoded.size() : way == 1 ? 1 : odd[k % odd.size()];
            ASSERT_TRUE(d->feed(encoded.substr(pos, step), c)) << d->error() << " at " << pos;
            pos += step;
        }
        EXPECT_FALSE(d->failed()) << d->error();
        EXPECT_TRUE(d->complete());
        ASSERT_EQ(c.out.size(), text.size());
        EXPECT_TRUE(c.out == text) << "same size, different bytes";
    }
}

// The prefix of `pool` whose encoding is exactly `size` bytes long (nullopt when none is).
std::optional<std::string> text_encoding_to(const codec& c, const std::string& pool,
                                            std::size_t size) {
    for (std::size_t n = size; n + 256 > size && n > 0; --n) {
        std::string text = pool.substr(0, n);
        if (encode(c, text).size() == size) {
            return text;
        }
    }
    return std::nullopt;
}

// Decoded sizes at the bound, compressible and not.
void decoded_sizes_at_the_bound(const codec& c) {
    for (std::size_t n : sizes_at_the_bound) {
        for (bool compressible : {false, true}) {
            SCOPED_TRACE(std::string(c.name) + ", " + std::to_string(n) + " decoded bytes, " +
                         (compressible ? "compressible" : "incompressible"));
            const std::string text =
                compressible ? counting_text(n) : random_bytes(n, static_cast<unsigned>(n));
            expect_decodes(c.token, encode(c, text), text);
        }
    }
}

// Encoded (wire) sizes at the bound.
void compressed_sizes_at_the_bound(const codec& c) {
    const std::string pool = random_bytes(3 * stage_buffer, 7);
    for (std::size_t n : sizes_at_the_bound) {
        SCOPED_TRACE(std::string(c.name) + ", " + std::to_string(n) + " encoded bytes");
        auto text = text_encoding_to(c, pool, n);
        ASSERT_TRUE(text) << "no input encodes to that size";
        const std::string encoded = encode(c, *text);
        ASSERT_EQ(encoded.size(), n);
        expect_decodes(c.token, encoded, *text);
    }
}

// Two codings (applied first, applied second): the inner stage's output (the stream of the
// coding applied first) and the final output are each at the bound.
void nested_sizes_at_the_bound(const std::vector<std::pair<codec, codec>>& stacks) {
    const std::string pool = random_bytes(3 * stage_buffer, 11);
    for (const auto& [first, second] : stacks) {
        const std::string header = std::string(first.token) + ", " + second.token;
        for (std::size_t n : sizes_at_the_bound) {
            {
                SCOPED_TRACE(std::string(first.name) + " then " + second.name +
                             ": inner stage output of " + std::to_string(n) + " bytes");
                auto text = text_encoding_to(first, pool, n);
                ASSERT_TRUE(text) << "no input encodes to that size";
                const std::string inner = encode(first, *text);
                ASSERT_EQ(inner.size(), n);
                expect_decodes(header, encode(second, inner), *text);
            }
            for (bool compressible : {false, true}) {
                SCOPED_TRACE(std::string(first.name) + " then " + second.name + ": " +
                             std::to_string(n) + " decoded bytes, " +
                             (compressible ? "compressible" : "incompressible"));
                const std::string text = compressible ? counting_text(n) : pool.substr(0, n);
                expect_decodes(header, encode(second, encode(first, text)), text);
            }
        }
    }
}

class stage_buffer_bound : public ::testing::TestWithParam<codec> {};

TEST_P(stage_buffer_bound, decoded_size_at_the_stage_buffer_bound) {
    decoded_sizes_at_the_bound(GetParam());
}

TEST_P(stage_buffer_bound, compressed_size_at_the_stage_buffer_bound) {
    compressed_sizes_at_the_bound(GetParam());
}

INSTANTIATE_TEST_SUITE_P(codecs, stage_buffer_bound,
                         ::testing::Values(gzip, zlib_deflate, raw, br, zstd),
                         [](const auto& info) {
                             std::string s = info.param.name;
                             std::replace(s.begin(), s.end(), ' ', '_');
                             return s;
                         });

TEST(stream_decoder, nested_codings_at_the_stage_buffer_bound) {
    nested_sizes_at_the_bound({{gzip, br},
                               {raw, gzip},
                               {br, zlib_deflate},
                               {zlib_deflate, raw},
                               {zlib_deflate, zstd},
                               {br, zstd},
                               {zstd, gzip}});
}

// A zstd frame that ends on a full 16 KiB output buffer is complete: the next call to the
// decoder, made to see whether more output is pending, returned the size of a next frame's
// header, and the stage took that for an unfinished frame (decode_body called the body
// truncated, llm_observer the call incomplete).
TEST(stream_decoder, zstd_frame_ending_on_a_full_buffer_is_complete) {
    for (std::size_t n : {stage_buffer, 2 * stage_buffer, 4 * stage_buffer}) {
        const std::string text = counting_text(n);
        decoded_body d = decode_body("zstd", encode_body("zstd", text), 1u << 20);
        EXPECT_TRUE(d.ok) << d.error;
        EXPECT_FALSE(d.truncated) << n << " decoded bytes";
        EXPECT_EQ(d.data, text);
    }
}

TEST(stream_decoder, nothing_fed_is_complete) {
    auto d = make("br");
    EXPECT_TRUE(d->complete());
}

}  // namespace
}  // namespace llm_proxy::record

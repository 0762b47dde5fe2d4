#include "llm_proxy/record/stream_decoder.hpp"

#include <gtest/gtest.h>

#include <string>

#include "llm_proxy/record/body_decoder.hpp"

namespace llm_proxy::record {
namespace {

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

TEST(stream_decoder, nothing_fed_is_complete) {
    auto d = make("br");
    EXPECT_TRUE(d->complete());
}

}  // namespace
}  // namespace llm_proxy::record

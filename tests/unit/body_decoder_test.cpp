#include "llm_proxy/record/body_decoder.hpp"

#include <gtest/gtest.h>
#include <zstd.h>

#include <stdexcept>
#include <string>
#include "coding_samples.hpp"

namespace llm_proxy::record {
namespace {

using samples::random_bytes;
using samples::raw_deflate;

std::string sample_text() {
    std::string s;
    for (int i = 0; i < 2000; ++i) {
        s += "data: {\"choices\":[{\"delta\":{\"content\":\"token " + std::to_string(i) +
             "\"}}]}\n\n";
    }
    return s;
}

class round_trip : public ::testing::TestWithParam<const char*> {};

TEST_P(round_trip, decodes_what_encode_body_produced) {
    std::string text = sample_text();
    std::string encoded = encode_body(GetParam(), text);
    if (std::string_view(GetParam()) != "identity") {
        EXPECT_LT(encoded.size(), text.size());
    }
    decoded_body d = decode_body(GetParam(), encoded, 10 * 1024 * 1024);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_FALSE(d.truncated);
    EXPECT_EQ(d.data, text);
}

TEST_P(round_trip, binary_data) {
    std::string data = random_bytes(100000, 7);
    decoded_body d = decode_body(GetParam(), encode_body(GetParam(), data), 1 << 20);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_FALSE(d.truncated);
    EXPECT_EQ(d.data, data);
}

TEST_P(round_trip, empty_input) {
    decoded_body d = decode_body(GetParam(), encode_body(GetParam(), ""), 1024);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_FALSE(d.truncated);
    EXPECT_EQ(d.data, "");
}

INSTANTIATE_TEST_SUITE_P(encodings, round_trip,
                         ::testing::Values("gzip", "deflate", "br", "zstd", "identity"));

TEST(body_decoder, empty_body_with_an_encoding_is_not_truncated) {
    for (const char* enc : {"gzip", "deflate", "br", "zstd"}) {
        decoded_body d = decode_body(enc, "", 1024);
        EXPECT_TRUE(d.ok) << enc;
        EXPECT_FALSE(d.truncated) << enc;
        EXPECT_EQ(d.data, "") << enc;
    }
}

TEST(body_decoder, identity_and_empty_pass_through) {
    for (const char* enc : {"", "identity", " Identity ", "identity, identity"}) {
        decoded_body d = decode_body(enc, "hello", 1024);
        EXPECT_TRUE(d.ok) << enc;
        EXPECT_FALSE(d.truncated);
        EXPECT_EQ(d.data, "hello");
    }
}

TEST(body_decoder, identity_is_capped_too) {
    decoded_body d = decode_body("", "hello world", 5);
    EXPECT_TRUE(d.ok);
    EXPECT_TRUE(d.truncated);
    EXPECT_EQ(d.data, "hello");
}

TEST(body_decoder, x_gzip_and_case_insensitive_names) {
    std::string text = sample_text();
    std::string gz = encode_body("gzip", text);
    for (const char* enc : {"x-gzip", "GZIP", " GZip\t", "X-Gzip"}) {
        decoded_body d = decode_body(enc, gz, 1 << 20);
        EXPECT_TRUE(d.ok) << enc << ": " << d.error;
        EXPECT_EQ(d.data, text) << enc;
    }
    EXPECT_EQ(decode_body("BR", encode_body("Br", text), 1 << 20).data, text);
}

TEST(body_decoder, stacked_encodings_decode_in_reverse_order) {
    std::string text = sample_text();
    // "gzip, br": gzip applied first, then br.
    std::string encoded = encode_body("br", encode_body("gzip", text));
    decoded_body d = decode_body("gzip, br", encoded, 1 << 20);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_FALSE(d.truncated);
    EXPECT_EQ(d.data, text);

    std::string triple = encode_body("zstd", encode_body("deflate", encode_body("gzip", text)));
    d = decode_body("gzip,deflate ,  zstd", triple, 1 << 20);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_EQ(d.data, text);

    // Wrong order fails cleanly.
    d = decode_body("br, gzip", encoded, 1 << 20);
    EXPECT_FALSE(d.ok);
    EXPECT_EQ(d.data, encoded);
}

TEST(body_decoder, identity_inside_a_stack_is_ignored) {
    std::string text = sample_text();
    decoded_body d = decode_body("identity, gzip", encode_body("gzip", text), 1 << 20);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_EQ(d.data, text);
}

TEST(body_decoder, limit_caps_output_and_sets_truncated) {
    std::string text = sample_text();
    for (const char* enc : {"gzip", "deflate", "br", "zstd", "identity"}) {
        decoded_body d = decode_body(enc, encode_body(enc, text), 1000);
        EXPECT_TRUE(d.ok) << enc << ": " << d.error;
        EXPECT_TRUE(d.truncated) << enc;
        EXPECT_EQ(d.data, text.substr(0, 1000)) << enc;
    }
}

TEST(body_decoder, limit_equal_to_size_is_not_truncated) {
    std::string text = sample_text();
    for (const char* enc : {"gzip", "deflate", "br", "zstd", "identity"}) {
        decoded_body d = decode_body(enc, encode_body(enc, text), text.size());
        EXPECT_TRUE(d.ok) << enc;
        EXPECT_FALSE(d.truncated) << enc;
        EXPECT_EQ(d.data, text) << enc;
    }
}

TEST(body_decoder, truncated_input_decodes_a_prefix) {
    std::string text = sample_text();
    for (const char* enc : {"gzip", "deflate", "br", "zstd"}) {
        std::string encoded = encode_body(enc, text);
        std::string cut = encoded.substr(0, encoded.size() / 2);
        decoded_body d = decode_body(enc, cut, 1 << 20);
        EXPECT_TRUE(d.ok) << enc << ": " << d.error;
        EXPECT_TRUE(d.truncated) << enc;
        EXPECT_LT(d.data.size(), text.size()) << enc;
        EXPECT_EQ(d.data, text.substr(0, d.data.size())) << enc;
    }
}

TEST(body_decoder, gzip_cut_inside_the_trailer_keeps_all_data) {
    std::string text = sample_text();
    std::string gz = encode_body("gzip", text);
    decoded_body d = decode_body("gzip", gz.substr(0, gz.size() - 4), 1 << 20);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_TRUE(d.truncated);
    EXPECT_EQ(d.data, text);
}

TEST(body_decoder, garbage_fails_with_input_preserved) {
    std::string garbage = "this is definitely not compressed data \x01\x02\x03";
    for (const char* enc : {"gzip", "deflate", "zstd"}) {
        decoded_body d = decode_body(enc, garbage, 1 << 20);
        EXPECT_FALSE(d.ok) << enc;
        EXPECT_EQ(d.data, garbage) << enc;
        EXPECT_FALSE(d.error.empty()) << enc;
    }
    // Brotli has no magic number; a stream that declares reserved bits is invalid.
    std::string bad_br = "\xff\xff\xff\xff\xff\xff\xff\xff";
    decoded_body d = decode_body("br", bad_br, 1 << 20);
    EXPECT_FALSE(d.ok);
    EXPECT_EQ(d.data, bad_br);
    EXPECT_NE(d.error.find("brotli"), std::string::npos) << d.error;
}

TEST(body_decoder, corrupt_gzip_body_fails) {
    std::string gz = encode_body("gzip", sample_text());
    gz[gz.size() / 2] = static_cast<char>(gz[gz.size() / 2] ^ 0x55);
    gz[gz.size() / 2 + 1] = static_cast<char>(gz[gz.size() / 2 + 1] ^ 0x55);
    decoded_body d = decode_body("gzip", gz, 1 << 20);
    EXPECT_FALSE(d.ok);
    EXPECT_EQ(d.data, gz);
}

TEST(body_decoder, unknown_encoding_fails) {
    decoded_body d = decode_body("compress", "abc", 1024);
    EXPECT_FALSE(d.ok);
    EXPECT_EQ(d.data, "abc");
    EXPECT_NE(d.error.find("compress"), std::string::npos);

    std::string gz = encode_body("gzip", "hello");
    d = decode_body("gzip, snappy", gz, 1024);
    EXPECT_FALSE(d.ok);
    EXPECT_EQ(d.data, gz);
}

TEST(body_decoder, deflate_accepts_zlib_and_raw) {
    std::string text = sample_text();
    decoded_body zlib = decode_body("deflate", encode_body("deflate", text), 1 << 20);
    EXPECT_TRUE(zlib.ok) << zlib.error;
    EXPECT_EQ(zlib.data, text);

    decoded_body raw = decode_body("deflate", raw_deflate(text), 1 << 20);
    EXPECT_TRUE(raw.ok) << raw.error;
    EXPECT_FALSE(raw.truncated);
    EXPECT_EQ(raw.data, text);
}

TEST(body_decoder, concatenated_gzip_members) {
    std::string gz = encode_body("gzip", "hello ") + encode_body("gzip", "world");
    decoded_body d = decode_body("gzip", gz, 1024);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_EQ(d.data, "hello world");
}

TEST(body_decoder, zstd_frame_without_content_size) {
    std::string text = sample_text();
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ASSERT_NE(cctx, nullptr);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    std::string out(ZSTD_compressBound(text.size()), '\0');
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    ZSTD_inBuffer ib{text.data(), text.size(), 0};
    std::size_t rest = ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_end);
    ZSTD_freeCCtx(cctx);
    ASSERT_EQ(rest, 0u);
    out.resize(ob.pos);
    ASSERT_EQ(ZSTD_getFrameContentSize(out.data(), out.size()), ZSTD_CONTENTSIZE_UNKNOWN);

    decoded_body d = decode_body("zstd", out, 1 << 20);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_FALSE(d.truncated);
    EXPECT_EQ(d.data, text);
}

TEST(body_decoder, zstd_concatenated_frames) {
    std::string z = encode_body("zstd", "hello ") + encode_body("zstd", "world");
    decoded_body d = decode_body("zstd", z, 1024);
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_EQ(d.data, "hello world");
}

TEST(body_decoder, big_compressible_body_is_capped_at_the_limit) {
    const std::size_t ten_mib = 10 * 1024 * 1024;
    const std::size_t one_mib = 1024 * 1024;
    std::string big(ten_mib, 'a');
    for (const char* enc : {"gzip", "deflate", "br", "zstd"}) {
        std::string encoded = encode_body(enc, big);
        EXPECT_LT(encoded.size(), one_mib / 10) << enc;
        decoded_body d = decode_body(enc, encoded, one_mib);
        EXPECT_TRUE(d.ok) << enc << ": " << d.error;
        EXPECT_TRUE(d.truncated) << enc;
        EXPECT_EQ(d.data.size(), one_mib) << enc;
        // The cap applies to allocation too, not just to the returned size.
        EXPECT_LE(d.data.capacity(), one_mib) << enc;
        EXPECT_EQ(d.data.find_first_not_of('a'), std::string::npos) << enc;
    }
}

TEST(body_decoder, zero_limit) {
    decoded_body d = decode_body("gzip", encode_body("gzip", "hello"), 0);
    EXPECT_TRUE(d.ok);
    EXPECT_TRUE(d.truncated);
    EXPECT_EQ(d.data, "");
}

TEST(body_decoder, encode_body_rejects_unknown_encodings) {
    EXPECT_THROW(encode_body("compress", "x"), std::invalid_argument);
    EXPECT_THROW(encode_body("gzip, br", "x"), std::invalid_argument);
    EXPECT_EQ(encode_body("identity", "x"), "x");
    EXPECT_EQ(encode_body("", "x"), "x");
}

}  // namespace
}  // namespace llm_proxy::record

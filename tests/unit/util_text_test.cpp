#include <gtest/gtest.h>

#include <string>

#include "llm_proxy/util/text.hpp"

using namespace llm_proxy;

TEST(UtilText, IequalsIgnoresAsciiCaseOnly) {
    EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
    EXPECT_FALSE(iequals("Content-Length", "Content-Lengt"));
    EXPECT_FALSE(iequals("\xC3\x84", "\xC3\xA4"));  // Ä and ä are different bytes
    EXPECT_FALSE(iequals("[", "{"));                // 0x5B and 0x7B differ by 0x20 too
    EXPECT_TRUE(iequals("", ""));
}

TEST(UtilText, IstartsWith) {
    EXPECT_TRUE(istarts_with("REDIS://host", "redis://"));
    EXPECT_FALSE(istarts_with("redis:/", "redis://"));
    EXPECT_TRUE(istarts_with("x", ""));
}

TEST(UtilText, IendsWithAndIcontains) {
    EXPECT_TRUE(iends_with("GPT-4o-Mini", "-mini"));
    EXPECT_FALSE(iends_with("mini", "-mini"));
    EXPECT_TRUE(iends_with("x", ""));
    EXPECT_TRUE(icontains("Claude-3-5-SONNET-latest", "sonnet"));
    EXPECT_TRUE(icontains("abc", "abc"));
    EXPECT_FALSE(icontains("abc", "abcd"));
    EXPECT_FALSE(icontains("a-b-c", "bc"));
    EXPECT_TRUE(icontains("", ""));
}

TEST(UtilText, ToLowerChangesOnlyAsciiLetters) {
    EXPECT_EQ(to_lower("Hello-World_42 \xC3\x84"), "hello-world_42 \xC3\x84");
}

TEST(UtilText, HexEncodesEveryByte) {
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<char>(i));
    }
    auto hex = hex_encode(all);
    ASSERT_EQ(hex.size(), 512u);
    EXPECT_EQ(hex.substr(0, 8), "00010203");
    EXPECT_EQ(hex.substr(0x7f * 2, 6), "7f8081");
    EXPECT_EQ(hex.substr(508), "feff");
    for (int i = 0; i < 256; ++i) {
        int v = hex_digit_value(hex[2 * i]) * 16 + hex_digit_value(hex[2 * i + 1]);
        EXPECT_EQ(v, i);
    }
    EXPECT_EQ(hex_digit_value('F'), 15);
    EXPECT_EQ(hex_digit_value('g'), -1);
    EXPECT_EQ(hex_digit_value('/'), -1);
}

TEST(UtilText, Base64MatchesRfc4648Vectors) {
    // RFC 4648 section 10.
    const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                           {"f", "Zg=="},
                                                           {"fo", "Zm8="},
                                                           {"foo", "Zm9v"},
                                                           {"foob", "Zm9vYg=="},
                                                           {"fooba", "Zm9vYmE="},
                                                           {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(plain), encoded);
        EXPECT_EQ(base64_decode(encoded).value_or("<fail>"), plain);
    }
    EXPECT_EQ(base64_encode("\xff\xfe\xfd"), "//79");
}

TEST(UtilText, Base64RoundTripsBinaryAndRejectsGarbage) {
    std::string bytes;
    for (int i = 0; i < 1000; ++i) {
        bytes.push_back(static_cast<char>((i * 37) & 0xff));
    }
    for (std::size_t n : {0u, 1u, 2u, 3u, 998u, 999u, 1000u}) {
        auto part = bytes.substr(0, n);
        EXPECT_EQ(base64_decode(base64_encode(part)).value_or("<fail>"), part) << n;
    }
    EXPECT_FALSE(base64_decode("Zm9v!").has_value());
    EXPECT_FALSE(base64_decode("Z").has_value());
    EXPECT_EQ(base64_decode("Zm8").value_or("<fail>"), "fo");  // padding optional
}

TEST(UtilText, PercentDecode) {
    EXPECT_EQ(percent_decode("Basic%20YWJj%3d"), "Basic YWJj=");
    EXPECT_EQ(percent_decode("a%2Cb%2cc"), "a,b,c");
    EXPECT_EQ(percent_decode("100%"), "100%");     // no digits: kept
    EXPECT_EQ(percent_decode("%zz%4"), "%zz%4");   // not hex, cut short: kept
    EXPECT_EQ(percent_decode("a+b"), "a+b");       // '+' is not a space here
    EXPECT_EQ(percent_decode("%00x").size(), 2u);  // a NUL is decoded (callers check)
}

// The eight-bytes-at-a-time scan against the plain definition, for every special byte at every
// position of strings up to three words long, from every start, with and without non-ASCII.
TEST(FindJsonSpecial, AgreesWithTheBytewiseDefinitionEverywhere) {
    auto expected = [](std::string_view s, std::size_t from, bool non_ascii) {
        for (std::size_t i = from; i < s.size(); ++i) {
            auto c = static_cast<unsigned char>(s[i]);
            if (c < 0x20 || c == '"' || c == '\\' || (non_ascii && c >= 0x80)) {
                return i;
            }
        }
        return s.size();
    };
    const std::string bytes("\x00\x01\x1f\x20\x21\"#[\\]\x7e\x7f\x80\xbf\xc3\xff", 16);
    for (std::size_t len = 0; len <= 24; ++len) {
        for (std::size_t at = 0; at <= len; ++at) {
            for (char b : bytes) {
                std::string s(len, 'a');
                if (at < len) {
                    s[at] = b;
                }
                for (std::size_t from = 0; from <= len; ++from) {
                    for (bool non_ascii : {false, true}) {
                        ASSERT_EQ(find_json_special(s, from, non_ascii),
                                  expected(s, from, non_ascii))
                            << "len " << len << " at " << at << " byte "
                            << int(static_cast<unsigned char>(b)) << " from " << from;
                    }
                }
            }
        }
    }
    // Several specials, and bytes just around them that are not.
    EXPECT_EQ(find_json_special("abcdefgh\x1f\"", 0, false), 8u);
    EXPECT_EQ(find_json_special("abcdefgh ijklmno\x7f\x80p", 0, false), 19u);
    EXPECT_EQ(find_json_special("abcdefgh ijklmno\x7f\x80p", 0, true), 17u);
}

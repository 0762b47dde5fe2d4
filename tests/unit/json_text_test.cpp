// JSON strings appended as text (records, spans, exports): escapes, UTF-8 kept whole, and every
// byte that is not UTF-8 replaced with U+FFFD wherever it stands in the text.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "../../src/export/json_text.hpp"

namespace llm_proxy::exporter::detail {
namespace {

std::string as_json(std::string_view s) {
    std::string out = "prefix";
    append_json_string(out, s);
    return out.substr(6);
}

const std::string fffd = "\xEF\xBF\xBD";

TEST(JsonText, AsciiIsCopiedWithTheEscapesJsonNeeds) {
    EXPECT_EQ(as_json(""), R"("")");
    EXPECT_EQ(as_json("gpt-4o-mini"), R"("gpt-4o-mini")");
    EXPECT_EQ(as_json("a\"b\\c\nd\re\tf\bg\fh"), R"("a\"b\\c\nd\re\tf\bg\fh")");
    EXPECT_EQ(as_json(std::string("x\x01y\x1fz\0", 6)), R"("x\u0001y\u001fz\u0000")");
    EXPECT_EQ(as_json("\x7f"), "\"\x7f\"");
}

TEST(JsonText, ValidUtf8IsKeptWherever) {
    EXPECT_EQ(as_json("é"), "\"é\"");
    EXPECT_EQ(as_json("Paris → 東京 🌧"), "\"Paris → 東京 🌧\"");
    EXPECT_EQ(as_json("\"quoted\" ünïcode\n"), "\"\\\"quoted\\\" ünïcode\\n\"");
}

TEST(JsonText, BytesThatAreNotUtf8BecomeReplacementCharacters) {
    // At the start, after an ASCII run, after valid multi-byte characters, and at the end.
    EXPECT_EQ(as_json("\xff"), "\"" + fffd + "\"");
    EXPECT_EQ(as_json("ab\xff"
                      "cd"),
              "\"ab" + fffd + "cd\"");
    EXPECT_EQ(as_json("é\xfe"
                      "ü"),
              "\"é" + fffd + "ü\"");
    EXPECT_EQ(as_json("x\"\xc3"), "\"x\\\"" + fffd + "\"");  // a sequence cut at the end
    EXPECT_EQ(as_json("x\xe2\x82"), "\"x" + fffd + fffd + "\"");
    EXPECT_EQ(as_json("\xc0\xaf"), "\"" + fffd + fffd + "\"");             // overlong
    EXPECT_EQ(as_json("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");  // surrogate
    EXPECT_EQ(as_json("a\tb\xf5"), "\"a\\tb" + fffd + "\"");
}

TEST(JsonText, EveryOutputParsesBackToTheSameValidText) {
    for (std::string s : {std::string("plain"), std::string("tab\there"), std::string("é\xff"),
                          std::string("\x80\x80"), std::string("ok 東京 then \xf0\x9f")}) {
        auto j = nlohmann::json::parse(as_json(s));
        ASSERT_TRUE(j.is_string()) << s;
        // What was valid stays as it was; nothing else survives.
        if (first_invalid_utf8(s) == std::string_view::npos) {
            EXPECT_EQ(j.get<std::string>(), s);
        } else {
            EXPECT_NE(j.get<std::string>().find(fffd), std::string::npos) << s;
        }
    }
}

}  // namespace
}  // namespace llm_proxy::exporter::detail

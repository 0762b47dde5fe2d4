// json_cursor: skipping JSON values in text that may be cut anywhere.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "llm_proxy/util/json_cursor.hpp"

using llm_proxy::json_cursor;

namespace {

// The length of the value at the start of `text`, or -1 when the cursor says it is cut.
long skipped(std::string_view text) {
    json_cursor c(text);
    return c.value() ? static_cast<long>(c.pos()) : -1;
}

}  // namespace

TEST(JsonCursor, SkipsWholeValues) {
    EXPECT_EQ(skipped(R"("a\"b" )"), 6);
    EXPECT_EQ(skipped(R"("\\" )"), 4);
    EXPECT_EQ(skipped(R"({"a":[1,{"b":"]}"}],"c":"\"}"} tail)"), 30);
    EXPECT_EQ(skipped("[[],{}]x"), 7);
    EXPECT_EQ(skipped("12.5e3,"), 6);
    EXPECT_EQ(skipped("true}"), 4);
    EXPECT_EQ(skipped("null "), 4);
}

TEST(JsonCursor, ReportsEveryCut) {
    const std::string whole = R"({"a":[1,{"b":"]}\"x"}],"c":"é"} )";
    // Cut before the closing brace, the value is never whole, wherever the cut falls
    // (inside a string, after a backslash, inside a UTF-8 sequence, between tokens).
    for (std::size_t n = 0; n + 1 < whole.size(); ++n) {
        EXPECT_EQ(skipped(whole.substr(0, n)), -1) << n;
    }
    EXPECT_EQ(skipped(whole), static_cast<long>(whole.size() - 1));
    // A number or literal at the very end may go on: not whole.
    EXPECT_EQ(skipped("123"), -1);
    EXPECT_EQ(skipped("tru"), -1);
    EXPECT_EQ(skipped("\"ab\\"), -1);
    EXPECT_EQ(skipped(""), -1);
}

TEST(JsonCursor, ReadsMemberKeys) {
    const std::string text = "{ \"model\" :\t\"m\" , \"a\\\"b\":1, \"x\": ";
    json_cursor c(text);
    ASSERT_TRUE(c.next('{'));
    std::vector<std::string> keys;
    std::string_view key;
    while (c.key(key)) {
        keys.emplace_back(key);
        c.space();
        if (!c.value() || !c.next(',')) {
            break;
        }
    }
    // The last key is read; its value is cut.
    EXPECT_EQ(keys, (std::vector<std::string>{"model", "a\\\"b", "x"}));
    EXPECT_TRUE(c.at_end());

    json_cursor no_colon(R"("k" 1)");
    EXPECT_FALSE(no_colon.key(key));
    json_cursor not_string("k:1");
    EXPECT_FALSE(not_string.key(key));
    EXPECT_EQ(not_string.pos(), 0u);
}

// Reading JSONL segments line by line: line numbers, byte offsets, stopping early, reading one
// line again from its offset, and a last line cut by a killed writer never taken.

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "llm_proxy/llm/record_reader.hpp"
#include "support/temp_dir.hpp"

namespace llm_proxy::llm {
namespace {

using seen = std::tuple<std::string, std::uint64_t, std::uint64_t>;

TEST(SegmentLines, EachWholeLineWithItsNumberAndOffset) {
    test::temp_dir dir("segment_lines");
    auto file = dir.path() / "s.jsonl";
    dir.write_file("s.jsonl", "a\n\nbb\nccc");  // an empty line, and a last line cut short
    std::vector<seen> lines;
    EXPECT_TRUE(for_each_segment_line_at(
        file, [&](const std::string& line, std::uint64_t n, std::uint64_t offset) {
            lines.emplace_back(line, n, offset);
            return true;
        }));
    EXPECT_EQ(lines, (std::vector<seen>{{"a", 1, 0}, {"bb", 3, 3}}));

    std::vector<seen> first;
    for_each_segment_line_at(file,
                             [&](const std::string& line, std::uint64_t n, std::uint64_t offset) {
                                 first.emplace_back(line, n, offset);
                                 return false;  // stop at the first line
                             });
    EXPECT_EQ(first, (std::vector<seen>{{"a", 1, 0}}));

    EXPECT_FALSE(for_each_segment_line_at(
        dir.path() / "missing.jsonl",
        [](const std::string&, std::uint64_t, std::uint64_t) { return true; }));
}

TEST(SegmentLines, OneLineIsReadAgainFromItsOffset) {
    test::temp_dir dir("segment_lines");
    auto file = dir.path() / "s.jsonl";
    dir.write_file("s.jsonl", "a\n\nbb\nccc");
    EXPECT_EQ(read_segment_line(file, 0), "a");
    EXPECT_EQ(read_segment_line(file, 3), "bb");
    EXPECT_EQ(read_segment_line(file, 4), "b");              // wherever it is asked to start
    EXPECT_EQ(read_segment_line(file, 2), std::nullopt);     // the empty line
    EXPECT_EQ(read_segment_line(file, 6), std::nullopt);     // no newline: cut
    EXPECT_EQ(read_segment_line(file, 9), std::nullopt);     // at the end
    EXPECT_EQ(read_segment_line(file, 1000), std::nullopt);  // past it
    EXPECT_EQ(read_segment_line(dir.path() / "missing.jsonl", 0), std::nullopt);
}

}  // namespace
}  // namespace llm_proxy::llm

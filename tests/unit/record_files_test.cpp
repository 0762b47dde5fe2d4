// exporter::for_each_record_file: which files `report`, `export` and `web` read. Record files
// of a directory tree (hidden ones and other extensions skipped), each once however the inputs
// overlap, and a clear error for an input that does not exist.

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "llm_proxy/export/record_source.hpp"
#include "support/temp_dir.hpp"

namespace llm_proxy::exporter {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> visited(const std::vector<fs::path>& inputs, const fs::path& root) {
    std::vector<std::string> out;
    for_each_record_file(inputs, [&](const fs::path& file) {
        out.push_back(file.lexically_normal().lexically_relative(root).generic_string());
    });
    std::sort(out.begin(), out.end());
    return out;
}

TEST(RecordFiles, EachFileOnceHoweverTheInputsOverlap) {
    test::temp_dir dir("record_files");
    dir.write_file("a.json", "{}");
    dir.write_file("sub/b.json", "{}");
    dir.write_file("sub/c.jsonl", "{}\n");
    dir.write_file("sub/.hidden.json", "{}");
    dir.write_file("sub/notes.txt", "x");
    const auto& root = dir.path();
    const std::vector<std::string> all{"a.json", "sub/b.json", "sub/c.jsonl"};

    EXPECT_EQ(visited({root}, root), all);
    EXPECT_EQ(visited({root, root}, root), all);
    EXPECT_EQ(visited({root / "sub", root}, root), all);
    EXPECT_EQ(visited({root, root / "sub", root / "a.json"}, root), all);
    EXPECT_EQ(visited({root / "." / "sub" / ".." / "sub", root / "sub"}, root),
              (std::vector<std::string>{"sub/b.json", "sub/c.jsonl"}));
    EXPECT_EQ(visited({root / "a.json", root / "a.json"}, root),
              (std::vector<std::string>{"a.json"}));
    // Two directories side by side are both read.
    EXPECT_EQ(visited({root / "sub", root / "a.json"}, root), all);
    EXPECT_EQ(count_record_files({root, root / "sub"}), 3u);
}

TEST(RecordFiles, AMissingInputIsAnErrorEvenUnderAnotherInput) {
    test::temp_dir dir("record_files_missing");
    dir.write_file("a.json", "{}");
    EXPECT_THROW(visited({dir.path(), dir.path() / "missing.json"}, dir.path()),
                 std::invalid_argument);
    EXPECT_THROW(visited({dir.path() / "nowhere"}, dir.path()), std::invalid_argument);
}

}  // namespace
}  // namespace llm_proxy::exporter

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "llm_proxy/util/files.hpp"

namespace fs = std::filesystem;
using namespace llm_proxy;

namespace {

class UtilFiles : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/llm_proxy_files_test_XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::permissions(dir_, fs::perms::owner_all, ec);
        fs::remove_all(dir_, ec);
    }
    static mode_t mode_of(const fs::path& p) {
        struct stat st {};
        EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
        return st.st_mode & 07777;
    }
    static std::string read(const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    fs::path dir_;
};

}  // namespace

TEST_F(UtilFiles, MakeDirectoriesCreatesEveryLevelWithTheMode) {
    auto deep = dir_ / "a" / "b" / "c";
    ASSERT_EQ(files::make_directories(deep / ""), "");
    EXPECT_TRUE(fs::is_directory(deep));
    EXPECT_EQ(mode_of(dir_ / "a"), 0700u);
    EXPECT_EQ(mode_of(deep), 0700u);
    EXPECT_EQ(files::make_directories(deep), "") << "existing directories are fine";
}

TEST_F(UtilFiles, MakeDirectoriesReportsAFileInTheWay) {
    std::ofstream(dir_ / "file") << "x";
    auto error = files::make_directories(dir_ / "file" / "sub");
    EXPECT_NE(error.find("not a directory"), std::string::npos) << error;
    EXPECT_NE(error.find((dir_ / "file").string()), std::string::npos) << error;
    EXPECT_NE(files::make_directories(""), "");
}

TEST_F(UtilFiles, MakePrivateDirectoryTightensAnExistingDirectory) {
    auto d = dir_ / "keys";
    fs::create_directory(d);
    ::chmod(d.c_str(), 0755);
    ASSERT_EQ(files::make_private_directory(d), "");
    EXPECT_EQ(mode_of(d), 0700u);
}

TEST_F(UtilFiles, WriteNewFileRefusesToOverwrite) {
    auto p = dir_ / "one.json";
    ASSERT_EQ(files::write_new_file(p, "first"), "");
    EXPECT_EQ(mode_of(p), 0600u);
    auto error = files::write_new_file(p, "second");
    EXPECT_NE(error, "");
    EXPECT_EQ(read(p), "first") << "someone else's file is left alone";
}

TEST_F(UtilFiles, WriteFileAtomicallyReplacesWithExactModeAndLeavesNoTemporary) {
    auto p = dir_ / "ca.pem";
    ASSERT_EQ(files::write_file_atomically(p, "old", 0644), "");
    auto old_umask = ::umask(0077);
    ASSERT_EQ(
        files::write_file_atomically(p, std::string(100000, 'n'), 0644, files::durability::fsync),
        "");
    ::umask(old_umask);
    EXPECT_EQ(read(p), std::string(100000, 'n'));
    EXPECT_EQ(mode_of(p), 0644u) << "the mode does not depend on the umask";
    int entries = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) {
        ++entries;
    }
    EXPECT_EQ(entries, 1) << "a temporary was left behind";
}

TEST_F(UtilFiles, WriteFileAtomicallyFailsCleanlyInAMissingDirectory) {
    auto error = files::write_file_atomically(dir_ / "missing" / "x", "data");
    EXPECT_NE(error.find((dir_ / "missing" / "x").string()), std::string::npos) << error;
}

// dir_logger when the disk fails under it: full, read-only, or the output directory removed.
// Proxying goes on, each lost record is reported, no partial or temporary file stays, and
// records resume once the disk is usable again. The full and read-only cases run on a small
// tmpfs mounted for the test (root with CAP_SYS_ADMIN); elsewhere they are skipped by name.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "e2e_fixture.hpp"

namespace llm_proxy::test {

class RecordFaults : public e2e_test {
  protected:
    void TearDown() override {
        if (proxy_) {
            proxy_->stop();
        }
        if (mounted_) {
            ::umount2(log_dir().c_str(), MNT_DETACH);
        }
    }

    // A tmpfs of `kib` KiB at the log directory; false when this machine does not allow it.
    bool mount_small_disk(int kib) {
        std::filesystem::create_directories(log_dir());
        std::string opts = "size=" + std::to_string(kib) + "k,mode=0700";
        if (::mount("tmpfs", log_dir().c_str(), "tmpfs", 0, opts.c_str()) != 0) {
            return false;
        }
        mounted_ = true;
        return true;
    }

    bool remount(bool read_only) {
        unsigned long flags = MS_REMOUNT | (read_only ? MS_RDONLY : 0);
        return ::mount("tmpfs", log_dir().c_str(), "tmpfs", flags, nullptr) == 0;
    }

    // Fills the file system of the log directory until writes fail.
    void fill_disk() {
        int fd = ::open(filler().c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        std::string block(4096, 'x');
        while (::write(fd, block.data(), block.size()) > 0) {
        }
        int err = errno;
        ::close(fd);
        ASSERT_EQ(err, ENOSPC) << std::strerror(err);
    }

    std::filesystem::path filler() const { return log_dir() / ".filler"; }

    void post_chats(int n) {
        auto client = proxied_client();
        for (int i = 0; i < n; ++i) {
            auto r = client.post(
                "https://api.openai.com/v1/chat/completions",
                R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})",
                {{"Content-Type", "application/json"}});
            ASSERT_EQ(r.status, 200u) << "request " << i;
        }
    }

    std::size_t failures_reported() const {
        std::string err = proxy_->stderr_text();
        std::size_t n = 0;
        for (auto at = err.find("failed to write log record"); at != std::string::npos;
             at = err.find("failed to write log record", at + 1)) {
            ++n;
        }
        return n;
    }

    // Waits (bounded) until `n` failures have been reported.
    bool wait_for_failures(std::size_t n) {
        for (int i = 0; i < 500 && failures_reported() < n; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return failures_reported() == n;
    }

    // Files in the log directory other than finished records and the filler.
    std::vector<std::string> stray_files() const {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(log_dir())) {
            auto name = e.path().filename().string();
            bool record = e.path().extension() == ".json" && name.front() != '.';
            if (!record && e.path() != filler()) {
                out.push_back(name);
            }
        }
        return out;
    }

    bool mounted_ = false;
};

TEST_F(RecordFaults, DiskFullLosesRecordsLoudlyAndTheyResumeWithSpace) {
    if (!mount_small_disk(256)) {
        GTEST_SKIP() << "cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): "
                     << std::strerror(errno);
    }
    start_dir_logger();
    post_chats(1);
    ASSERT_EQ(wait_for_records(1).size(), 1u);

    fill_disk();
    post_chats(5);  // every client is still answered
    EXPECT_TRUE(wait_for_failures(5)) << proxy_->stderr_text();
    EXPECT_NE(proxy_->stderr_text().find("No space left on device"), std::string::npos)
        << proxy_->stderr_text();
    EXPECT_EQ(wait_for_records(1, std::chrono::milliseconds(0)).size(), 1u);
    EXPECT_TRUE(stray_files().empty()) << stray_files().front();

    std::filesystem::remove(filler());
    post_chats(3);
    EXPECT_EQ(wait_for_records(4).size(), 4u);
    EXPECT_EQ(failures_reported(), 5u);
    EXPECT_TRUE(stray_files().empty());
    EXPECT_TRUE(proxy_->running());
}

TEST_F(RecordFaults, ReadOnlyOutputLosesRecordsLoudlyAndTheyResumeWhenWritable) {
    if (!mount_small_disk(1024)) {
        GTEST_SKIP() << "cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): "
                     << std::strerror(errno);
    }
    start_dir_logger();
    ASSERT_TRUE(remount(true)) << std::strerror(errno);
    post_chats(4);
    EXPECT_TRUE(wait_for_failures(4)) << proxy_->stderr_text();
    EXPECT_NE(proxy_->stderr_text().find("Read-only file system"), std::string::npos)
        << proxy_->stderr_text();

    ASSERT_TRUE(remount(false)) << std::strerror(errno);
    post_chats(2);
    EXPECT_EQ(wait_for_records(2).size(), 2u);
    EXPECT_EQ(failures_reported(), 4u);
    EXPECT_TRUE(stray_files().empty());
}

// --format jsonl: a line that does not fit is taken back whole; the segment goes on.
TEST_F(RecordFaults, DiskFullLeavesWholeLinesInJsonlSegments) {
    if (!mount_small_disk(256)) {
        GTEST_SKIP() << "cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): "
                     << std::strerror(errno);
    }
    start_dir_logger({"--format", "jsonl"});
    post_chats(1);
    ASSERT_EQ(wait_for_records(1).size(), 1u);

    fill_disk();
    post_chats(5);
    EXPECT_TRUE(wait_for_failures(5)) << proxy_->stderr_text();
    EXPECT_EQ(wait_for_records(1, std::chrono::milliseconds(0)).size(), 1u);

    std::filesystem::remove(filler());
    post_chats(3);
    EXPECT_EQ(wait_for_records(4).size(), 4u);  // each line parses: none was left cut
    EXPECT_EQ(failures_reported(), 5u);
    EXPECT_TRUE(stray_files().size() == 1 && stray_files()[0].ends_with(".jsonl"))
        << stray_files().size();
}

TEST_F(RecordFaults, RemovedOutputDirectoryIsCreatedAgain) {
    start_dir_logger();
    post_chats(1);
    ASSERT_EQ(wait_for_records(1).size(), 1u);
    std::filesystem::remove_all(log_dir());

    post_chats(2);
    EXPECT_EQ(wait_for_records(2).size(), 2u);
    EXPECT_NE(proxy_->stderr_text().find("was gone; created it again"), std::string::npos)
        << proxy_->stderr_text();
    EXPECT_EQ(failures_reported(), 0u);
}

}  // namespace llm_proxy::test

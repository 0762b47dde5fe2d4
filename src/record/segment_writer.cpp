#include "segment_writer.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <string>

#include "llm_proxy/util/files.hpp"

namespace llm_proxy::record {

namespace fs = std::filesystem;

namespace {

std::string fail(std::string_view what, const fs::path& path, int err) {
    return std::string(what) + " " + path.string() + ": " + files::errno_message(err);
}

// "20261201T084500Z" for now.
std::string utc_stamp() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

}  // namespace

segment_writer::segment_writer(fs::path dir, std::string proxy_id, segment_options options,
                               bool durable)
    : dir_(std::move(dir)),
      proxy_id_(proxy_id.substr(0, 8)),
      options_(options),
      durable_(durable) {}

segment_writer::~segment_writer() {
    close();
}

void segment_writer::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

bool segment_writer::must_rotate(std::size_t next) const {
    if (bytes_ > 0 && bytes_ + next > options_.rotate_bytes) {
        return true;
    }
    if (std::chrono::steady_clock::now() - opened_ >= options_.rotate_interval) {
        return true;
    }
    // The directory (or the segment) was removed: lines would go to a file nobody can see.
    struct stat st {};
    return ::fstat(fd_, &st) != 0 || st.st_nlink == 0;
}

std::string segment_writer::open_next() {
    std::error_code ec;
    if (!fs::exists(dir_, ec) && !ec) {
        if (auto made = files::make_directories(dir_, 0777); made.empty()) {
            spdlog::warn("output directory {} was gone; created it again", dir_.string());
        }
    }
    for (int attempt = 0; attempt < 1000; ++attempt) {
        ++sequence_;
        char seq[16];
        std::snprintf(seq, sizeof seq, "%04u", sequence_);
        auto path = dir_ / ("llm_proxy-" + utc_stamp() + "-" + proxy_id_ + "-" + seq + ".jsonl");
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
            continue;
        }
        if (fd < 0) {
            return fail("open", path, errno);
        }
        fd_ = fd;
        path_ = path;
        bytes_ = 0;
        opened_ = std::chrono::steady_clock::now();
        if (durable_) {
            if (auto synced = files::sync_directory(dir_); !synced.empty()) {
                spdlog::warn("segment {} created, but maybe not on disk: {}", path_.string(),
                             synced);
            }
        }
        return {};
    }
    return "no free segment name in " + dir_.string();
}

std::string segment_writer::append(std::string_view line) {
    if (fd_ >= 0 && must_rotate(line.size())) {
        close();
    }
    if (fd_ < 0) {
        if (auto error = open_next(); !error.empty()) {
            return error;
        }
    }
    std::string_view rest = line;
    while (!rest.empty()) {
        ssize_t n = ::write(fd_, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int err = errno;
            // Part of the line may be in the file: take it back, so the segment holds whole
            // lines only. O_APPEND: the next line goes to the new end.
            if (::ftruncate(fd_, static_cast<off_t>(bytes_)) != 0) {
                close();  // the next line starts a new segment
            }
            return fail("write", path_, err);
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    bytes_ += line.size();
    if (durable_ && ::fdatasync(fd_) != 0) {
        return fail("fdatasync", path_, errno);
    }
    return {};
}

std::size_t repair_segments(const fs::path& dir, std::chrono::seconds quiet_for) {
    std::size_t repaired = 0;
    std::error_code ec;
    auto old = fs::file_time_type::clock::now() - quiet_for;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code entry_ec;
        const auto& p = it->path();
        if (p.extension() != ".jsonl" || !it->is_regular_file(entry_ec) ||
            it->last_write_time(entry_ec) > old || entry_ec) {
            continue;
        }
        int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        struct stat st {};
        off_t end_at = ::fstat(fd, &st) == 0 ? st.st_size : 0;
        // The last '\n', read from the end in blocks.
        off_t keep = -1;
        char buf[65536];
        for (off_t at = end_at; at > 0 && keep < 0;) {
            off_t from = at > static_cast<off_t>(sizeof buf) ? at - sizeof buf : 0;
            ssize_t n = ::pread(fd, buf, static_cast<std::size_t>(at - from), from);
            if (n <= 0) {
                break;
            }
            for (ssize_t i = n - 1; i >= 0; --i) {
                if (buf[i] == '\n') {
                    keep = from + i + 1;
                    break;
                }
            }
            at = from;
        }
        if (keep < 0) {
            keep = 0;
        }
        if (keep < end_at && ::ftruncate(fd, keep) == 0) {
            spdlog::warn(
                "segment {}: removed a cut last line ({} bytes) left by an interrupted "
                "proxy",
                p.string(), end_at - keep);
            ++repaired;
        }
        ::close(fd);
    }
    return repaired;
}

}  // namespace llm_proxy::record

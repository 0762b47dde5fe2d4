#include "llm_proxy/record/record_writer.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "llm_proxy/util/ids.hpp"

namespace llm_proxy::record {

namespace {

std::string errno_message(int err) {
    return std::system_category().message(err);
}

// The flow id becomes a file name, so anything but a plain id (path separators, a leading dot,
// empty) gets replaced by a fresh UUID instead of escaping the directory.
std::string file_stem(const std::string& id) {
    bool plain = !id.empty() && id.size() <= 128 && id.front() != '.';
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        plain = plain && ok;
    }
    return plain ? id : make_uuid();
}

// Writes `data` to a new file at `path` with mode 0600; returns an error message or "". On
// failure after creating the file it removes it again; a file that already existed (O_EXCL) is
// someone else's and left alone.
std::string write_new_file(const std::filesystem::path& path, std::string_view data) {
    int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        return "open " + path.string() + ": " + errno_message(errno);
    }
    std::string error;
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            error = "write " + path.string() + ": " + errno_message(errno);
            break;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    // close() can report delayed write errors (NFS, quota), so check it.
    if (::close(fd) != 0 && error.empty()) {
        error = "close " + path.string() + ": " + errno_message(errno);
    }
    if (!error.empty()) {
        ::unlink(path.c_str());
    }
    return error;
}

}  // namespace

record_writer::record_writer(std::filesystem::path dir, record_options options,
                             std::string proxy_id)
    : dir_(std::move(dir)), options_(std::move(options)), proxy_id_(std::move(proxy_id)) {
    auto fail = [this](const std::string& reason) {
        throw std::runtime_error("cannot write to output directory " + dir_.string() + ": " +
                                 reason);
    };
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
        fail(ec.message());
    }
    if (!std::filesystem::is_directory(dir_, ec)) {
        fail(ec ? ec.message() : std::string("not a directory"));
    }
    // Permission bits do not tell the whole story (read-only mounts, ACLs, root), so probe by
    // creating a file the same way records are written.
    auto probe = dir_ / (".write_test." + make_uuid() + ".tmp");
    std::string error = write_new_file(probe, {});
    if (!error.empty()) {
        fail(error);
    }
    ::unlink(probe.c_str());

    thread_ = std::thread([this] { run(); });
}

record_writer::~record_writer() {
    close();
}

void record_writer::submit(std::shared_ptr<const flow> f) {
    {
        std::lock_guard lock(mutex_);
        if (!closing_) {
            queue_.push_back(std::move(f));
            // A busy writer takes the queue when it is done: no wake-up (a syscall and a
            // context switch) per record under load.
            if (writer_idle_) {
                cv_.notify_one();
            }
            return;
        }
    }
    // Late flows (e.g. connections finishing during shutdown) are written on the caller's
    // thread rather than dropped.
    write_one(*f);
}

void record_writer::close() {
    std::lock_guard close_lock(close_mutex_);
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

std::uint64_t record_writer::written() const {
    std::lock_guard lock(mutex_);
    return written_;
}

std::uint64_t record_writer::failed() const {
    std::lock_guard lock(mutex_);
    return failed_;
}

void record_writer::run() {
    std::unique_lock lock(mutex_);
    std::deque<std::shared_ptr<const flow>> batch;
    while (true) {
        writer_idle_ = true;
        cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
        writer_idle_ = false;
        if (queue_.empty()) {
            return;  // closing, and everything queued has been written
        }
        batch.swap(queue_);
        lock.unlock();
        for (const auto& f : batch) {
            write_one(*f);
        }
        batch.clear();
        lock.lock();
    }
}

void record_writer::write_one(const flow& f) {
    std::string error;
    try {
        std::string text = render_record(f, options_, proxy_id_);
        std::string stem = file_stem(f.id);
        // Hidden temporary in the same directory: rename() is atomic only within a file
        // system, and readers globbing *.json never see a half-written record. (O_TMPFILE +
        // linkat would save the rename, but ext4 serialises O_TMPFILE on its orphan list and
        // was several times slower under load.)
        auto tmp = dir_ / ("." + stem + ".json.tmp");
        auto target = dir_ / (stem + ".json");
        error = write_new_file(tmp, text);
        if (error.empty() && ::rename(tmp.c_str(), target.c_str()) != 0) {
            error =
                "rename " + tmp.string() + " to " + target.string() + ": " + errno_message(errno);
            ::unlink(tmp.c_str());
        }
    } catch (const std::exception& e) {
        // Only record building and path handling throw, before any file exists.
        error = e.what();
    }

    if (!error.empty()) {
        spdlog::error("failed to write log record for flow {}: {}", f.id, error);
    }
    std::lock_guard lock(mutex_);
    if (error.empty()) {
        ++written_;
    } else {
        ++failed_;
    }
}

}  // namespace llm_proxy::record

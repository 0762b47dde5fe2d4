#include "llm_proxy/record/record_writer.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <stdexcept>
#include <utility>

#include "llm_proxy/util/files.hpp"
#include "llm_proxy/util/ids.hpp"

namespace llm_proxy::record {

namespace {

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

}  // namespace

record_writer::record_writer(std::filesystem::path dir, record_options options,
                             std::string proxy_id)
    : dir_(std::move(dir)), options_(std::move(options)), proxy_id_(std::move(proxy_id)) {
    auto fail = [this](const std::string& reason) {
        throw std::runtime_error("cannot write to output directory " + dir_.string() + ": " +
                                 reason);
    };
    // 0777: the directories' mode follows the umask (docs/log-format.md).
    if (auto error = files::make_directories(dir_, 0777); !error.empty()) {
        fail(error);
    }
    // Permission bits do not tell the whole story (read-only mounts, ACLs, root), so probe by
    // creating a file the same way records are written.
    auto probe = dir_ / (".write_test." + make_uuid() + ".tmp");
    if (auto error = files::write_new_file(probe, {}); !error.empty()) {
        fail(error);
    }
    ::unlink(probe.c_str());
}

record_writer::~record_writer() {
    close();
}

void record_writer::submit(std::shared_ptr<const flow> f) {
    {
        std::lock_guard lock(mutex_);
        if (!closing_) {
            queue_.push_back(std::move(f));
            ++queued_;
            if (!drain_posted_) {
                // Posted under the lock: close() cannot join the pool between the decision
                // and the post, which would strand the batch.
                drain_posted_ = true;
                boost::asio::post(pool_, [this] { drain(); });
            }
            return;
        }
        ++queued_;
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
    if (!joined_) {
        // Without stop(), join() waits for every posted drain(), which writes what it finds.
        pool_.join();
        joined_ = true;
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

std::uint64_t record_writer::queued() const {
    std::lock_guard lock(mutex_);
    return queued_;
}

void record_writer::drain() {
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (queue_.empty()) {
                drain_posted_ = false;
                return;
            }
            batch_.swap(queue_);
        }
        for (const auto& f : batch_) {
            write_one(*f);
        }
        batch_.clear();
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
        error = files::write_new_file(tmp, text);
        if (error.empty() && ::rename(tmp.c_str(), target.c_str()) != 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            error = "rename " + tmp.string() + " to " + target.string() + ": " +
                    files::errno_message(err);
        }
    } catch (const std::exception& e) {
        // Only record building and path handling throw, before any file exists.
        error = e.what();
    }

    if (!error.empty()) {
        spdlog::error("failed to write log record for flow {}: {}", f.id, error);
    }
    std::lock_guard lock(mutex_);
    --queued_;
    if (error.empty()) {
        ++written_;
    } else {
        ++failed_;
    }
}

}  // namespace llm_proxy::record

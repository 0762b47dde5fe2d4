#include "llm_proxy/record/record_writer.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <stdexcept>
#include <utility>

#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/util/files.hpp"
#include "llm_proxy/util/ids.hpp"
#include "segment_writer.hpp"

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

bool is_record_temporary(const std::string& name) {
    constexpr std::string_view suffix = ".json.tmp";
    return name.size() > suffix.size() + 1 && name.front() == '.' &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::optional<fsync_mode> parse_fsync_mode(std::string_view text) {
    if (text == "none") {
        return fsync_mode::none;
    }
    if (text == "record") {
        return fsync_mode::record;
    }
    if (text == "interval") {
        return fsync_mode::interval;
    }
    return std::nullopt;
}

record_writer::record_writer(std::filesystem::path dir, record_options options,
                             std::string proxy_id, std::size_t max_queue_bytes,
                             durability_options durability, segment_options segments)
    : dir_(std::move(dir)),
      options_(std::move(options)),
      proxy_id_(std::move(proxy_id)),
      max_queue_bytes_(max_queue_bytes),
      durability_(durability) {
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
    remove_stale_temporaries();
    if (segments.jsonl) {
        repair_segments(dir_);
        segments_ = std::make_unique<segment_writer>(dir_, proxy_id_, segments,
                                                     durability_.mode == fsync_mode::record);
    }
}

// A proxy killed while it wrote a record leaves its hidden temporary behind (never a partial
// *.json). Another proxy may be writing into the same directory, so only old ones go.
void record_writer::remove_stale_temporaries() {
    std::error_code ec;
    auto old = std::filesystem::file_time_type::clock::now() - std::chrono::minutes(1);
    std::size_t removed = 0;
    for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end;
         it.increment(ec)) {
        std::error_code entry_ec;
        if (!is_record_temporary(it->path().filename().string()) ||
            !it->is_regular_file(entry_ec) || it->last_write_time(entry_ec) > old || entry_ec) {
            continue;
        }
        if (std::filesystem::remove(it->path(), entry_ec)) {
            ++removed;
        }
    }
    if (removed > 0) {
        spdlog::info("removed {} temporary record files left by an interrupted proxy in {}",
                     removed, dir_.string());
    }
}

record_writer::~record_writer() {
    close();
}

void record_writer::submit(std::shared_ptr<const flow> f) {
    if (durability_.mode == fsync_mode::record) {
        std::lock_guard lock(mutex_);
        // Written before the response's end went out; written again only when the flow then
        // failed (the client left during that last write).
        // A segment's lines are only appended: there the first line stands.
        if (written_early_.erase(f->id) > 0 && (f->error_kind == flow_error::none || segments_)) {
            return;
        }
    }
    queued_bytes_.fetch_add(flow_footprint(*f), std::memory_order_relaxed);
    {
        std::lock_guard lock(mutex_);
        if (!closing_) {
            queue_.push_back(std::move(f));
            ++queued_;
            if (!drain_posted_) {
                // Posted under the lock: close() cannot join the pool between the decision
                // and the post, which would strand the batch.
                // The batch window starts on the writer thread (the timer is its own).
                drain_posted_ = true;
                boost::asio::post(pool_, [this] {
                    batch_timer_.expires_after(batch_window);
                    batch_timer_.async_wait([this](const boost::system::error_code&) { drain(); });
                });
            }
            return;
        }
        ++queued_;
    }
    // Late flows (e.g. connections finishing during shutdown) are written on the caller's
    // thread rather than dropped.
    write_one(*f);
    queued_bytes_.fetch_sub(flow_footprint(*f), std::memory_order_relaxed);
}

boost::asio::awaitable<void> record_writer::write_now(const flow& f) {
    bool ok = false;
    // Started on the worker's thread while the coroutine suspends; the writer thread writes
    // and posts the coroutine's resumption back to the worker's executor.
    auto start = [this, &f, &ok](auto handler) {
        std::unique_lock lock(mutex_);
        ++queued_;
        if (!closing_) {
            // Posted under the lock, as in submit(): close() cannot join the pool in between.
            boost::asio::post(pool_, [this, &f, &ok, handler = std::move(handler)]() mutable {
                ok = write_one(f);
                auto ex = boost::asio::get_associated_executor(handler);
                boost::asio::post(ex, std::move(handler));
            });
            return;
        }
        // The writer thread is stopping: written here, like a late submit().
        lock.unlock();
        ok = write_one(f);
        auto ex = boost::asio::get_associated_executor(handler);
        boost::asio::post(ex, std::move(handler));
    };
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>, void()>(
        start, boost::asio::use_awaitable);
    if (ok) {
        std::lock_guard lock(mutex_);
        written_early_.insert(f.id);
    }
}

boost::asio::awaitable<void> record_writer::wait_for_room() {
    if (max_queue_bytes_ == 0 || queued_bytes() < max_queue_bytes_) {
        co_return;
    }
    if (waits_.fetch_add(1, std::memory_order_relaxed) == 0) {
        spdlog::warn(
            "the record writer falls behind: new requests wait for room in the record queue "
            "({} MiB, --record-queue-mib)",
            max_queue_bytes_ >> 20);
    }
    // Polling keeps the writer thread free of handles into the workers' event loops (which
    // may be gone at shutdown while the writer drains). A wait only happens while the writer
    // has a full queue to work through, so a few milliseconds of polling cost nothing.
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    while (queued_bytes() >= max_queue_bytes_) {
        timer.expires_after(std::chrono::milliseconds(5));
        boost::system::error_code ec;
        co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        if (ec) {
            co_return;  // cancelled: the session is closing
        }
    }
}

void record_writer::close() {
    std::lock_guard close_lock(close_mutex_);
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    if (!joined_) {
        // A waiting batch is written now (its handler runs on cancel); a pending sync would
        // keep join() waiting, so the last one is done below instead.
        boost::asio::post(pool_, [this] {
            batch_timer_.cancel();
            sync_timer_.cancel();
        });
        // Without stop(), join() waits for every posted drain(), which writes what it finds.
        pool_.join();
        joined_ = true;
        if (dirty_) {
            sync_now();
        }
        if (auto n = waits(); n > 0) {
            spdlog::info("requests waited for room in the record queue {} times", n);
        }
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
        if (segments_) {
            write_lines(batch_);
        } else {
            for (auto& f : batch_) {
                write_one(*f);
                std::size_t bytes = flow_footprint(*f);
                f.reset();  // the flow's memory goes now, not with the whole batch
                queued_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
            }
        }
        batch_.clear();
        if (durability_.mode == fsync_mode::interval) {
            dirty_ = true;
            schedule_sync();
        }
    }
}

// A sync now if the last one is `interval` old, else one when it will be (writer thread).
void record_writer::schedule_sync() {
    if (sync_armed_) {
        return;
    }
    auto due = last_sync_ + durability_.interval;
    if (std::chrono::steady_clock::now() >= due) {
        sync_now();
        return;
    }
    sync_armed_ = true;
    sync_timer_.expires_at(due);
    sync_timer_.async_wait([this](const boost::system::error_code& ec) {
        sync_armed_ = false;
        if (!ec && dirty_) {
            sync_now();
        }
    });
}

void record_writer::sync_now() {
    dirty_ = false;
    last_sync_ = std::chrono::steady_clock::now();
    if (auto error = files::sync_file_system(dir_); !error.empty()) {
        spdlog::error("records may not be on disk yet: {}", error);
        return;
    }
    syncs_.fetch_add(1, std::memory_order_relaxed);
}

std::string record_writer::append_line(const flow& f) {
    std::string text = render_record(f, options_, proxy_id_, record_layout::line);
    std::lock_guard lock(segment_mutex_);
    return segments_->append(text);
}

std::string record_writer::write_file(const flow& f, bool durable) {
    const auto sync = durable ? files::durability::fsync : files::durability::none;
    std::string text = render_record(f, options_, proxy_id_);
    std::string stem = file_stem(f.id);
    // Hidden temporary in the same directory: rename() is atomic only within a file system,
    // and readers globbing *.json never see a half-written record. (O_TMPFILE + linkat would
    // save the rename, but ext4 serialises O_TMPFILE on its orphan list and was several times
    // slower under load.)
    auto tmp = dir_ / ("." + stem + ".json.tmp");
    auto target = dir_ / (stem + ".json");
    std::string error = files::write_new_file(tmp, text, 0600, sync);
    std::error_code ec;
    if (!error.empty() && !std::filesystem::exists(dir_, ec) && !ec) {
        // The output directory was removed while the proxy ran: made again, as at start.
        if (auto made = files::make_directories(dir_, 0777); made.empty()) {
            spdlog::warn("output directory {} was gone; created it again", dir_.string());
            error = files::write_new_file(tmp, text, 0600, sync);
        }
    }
    if (error.empty() && ::rename(tmp.c_str(), target.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        error =
            "rename " + tmp.string() + " to " + target.string() + ": " + files::errno_message(err);
    }
    if (error.empty() && durable) {
        // The new name is durable only once the directory is.
        if (auto synced = files::sync_directory(dir_); !synced.empty()) {
            spdlog::warn("record of flow {} written, but maybe not on disk: {}", f.id, synced);
        }
    }
    return error;
}

void record_writer::write_lines(std::vector<std::shared_ptr<const flow>>& batch) {
    for (auto& f : batch) {
        before_write(*f);
        const std::size_t mark = lines_.size();
        try {
            append_record(lines_, *f, options_, proxy_id_, record_layout::line);
            lines_ids_.push_back(f->id);
        } catch (const std::exception& e) {
            // Only record building throws: this record fails alone.
            lines_.resize(mark);
            spdlog::error("failed to write log record for flow {}: {}", f->id, e.what());
            count(false);
        }
        std::size_t bytes = flow_footprint(*f);
        f.reset();  // rendered: the flow's memory goes now
        queued_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
        if (lines_.size() > max_append_bytes && mark > 0 && lines_ids_.size() > 1) {
            // The lines before this one go first, so that an append stays within the bound
            // unless one line alone is longer (segments then rotate as they would line by line).
            append_lines(mark, lines_ids_.size() - 1);
        }
        if (lines_.size() >= max_append_bytes) {
            append_lines(lines_.size(), lines_ids_.size());
        }
    }
    append_lines(lines_.size(), lines_ids_.size());
}

void record_writer::append_lines(std::size_t bytes, std::size_t records) {
    if (records == 0) {
        return;
    }
    std::string error;
    {
        std::lock_guard lock(segment_mutex_);
        error = segments_->append(std::string_view(lines_).substr(0, bytes));
    }
    for (std::size_t i = 0; i < records; ++i) {
        if (!error.empty()) {
            spdlog::error("failed to write log record for flow {}: {}", lines_ids_[i], error);
        }
        count(error.empty());
    }
    lines_ids_.erase(lines_ids_.begin(), lines_ids_.begin() + static_cast<std::ptrdiff_t>(records));
    lines_.erase(0, bytes);
    // A burst's buffer is not kept for ever.
    if (lines_.empty() && lines_.capacity() > 4 * max_append_bytes) {
        std::string().swap(lines_);
    }
}

void record_writer::count(bool ok) {
    std::lock_guard lock(mutex_);
    --queued_;
    if (ok) {
        ++written_;
    } else {
        ++failed_;
    }
}

bool record_writer::write_one(const flow& f) {
    before_write(f);
    std::string error;
    try {
        error = segments_ ? append_line(f) : write_file(f, durability_.mode == fsync_mode::record);
    } catch (const std::exception& e) {
        // Only record building and path handling throw, before any file exists.
        error = e.what();
    }

    if (!error.empty()) {
        spdlog::error("failed to write log record for flow {}: {}", f.id, error);
    }
    count(error.empty());
    return error.empty();
}

}  // namespace llm_proxy::record

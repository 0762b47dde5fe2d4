#include "llm_proxy/record/record_writer.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

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

std::size_t fields_bytes(const header_list& headers) {
    std::size_t n = headers.capacity() * sizeof(header_list::value_type);
    for (const auto& [name, value] : headers) {
        n += name.capacity() + value.capacity();
    }
    return n;
}

// What a queued flow holds on the heap, roughly: the strings that grow with the traffic, and
// a fixed allowance for the rest (the flow itself, small strings, allocator overhead).
std::size_t footprint(const flow& f) {
    std::size_t n = 2048 + f.request_body.data.capacity() + f.response_body.data.capacity() +
                    f.local_response_body.capacity() + f.request.target.capacity() +
                    f.error.capacity() + fields_bytes(f.request.headers);
    if (f.response) {
        n += fields_bytes(f.response->headers);
    }
    for (const auto& [k, v] : f.tags) {
        n += 64 + k.capacity() + v.capacity();
    }
    if (f.rejected) {
        n += f.rejected->raw_head.capacity() + f.rejected->target.capacity();
    }
    if (f.llm) {
        n += 1024;
        for (const auto& a : f.llm->call.answers) {
            n += 256 + a.content.value_or("").capacity() + a.refusal.value_or("").capacity() +
                 a.reasoning.value_or("").capacity();
            for (const auto& t : a.tool_calls) {
                n += 128 + t.arguments.capacity() + t.name.capacity() + t.id.capacity();
            }
        }
    }
    return n;
}

}  // namespace

record_writer::record_writer(std::filesystem::path dir, record_options options,
                             std::string proxy_id, std::size_t max_queue_bytes)
    : dir_(std::move(dir)),
      options_(std::move(options)),
      proxy_id_(std::move(proxy_id)),
      max_queue_bytes_(max_queue_bytes) {
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
    queued_bytes_.fetch_add(footprint(*f), std::memory_order_relaxed);
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
    queued_bytes_.fetch_sub(footprint(*f), std::memory_order_relaxed);
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
        // Without stop(), join() waits for every posted drain(), which writes what it finds.
        pool_.join();
        joined_ = true;
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
        for (auto& f : batch_) {
            write_one(*f);
            std::size_t bytes = footprint(*f);
            f.reset();  // the flow's memory goes now, not with the whole batch
            queued_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
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
        std::error_code ec;
        if (!error.empty() && !std::filesystem::exists(dir_, ec) && !ec) {
            // The output directory was removed while the proxy ran: made again, as at start.
            if (auto made = files::make_directories(dir_, 0777); made.empty()) {
                spdlog::warn("output directory {} was gone; created it again", dir_.string());
                error = files::write_new_file(tmp, text);
            }
        }
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

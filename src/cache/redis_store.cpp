// The Redis store: get, put, clear and stats over the connection (redis_connection.hpp),
// with the store's own thread running the io_context.

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <charconv>
#include <exception>
#include <functional>
#include <future>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "llm_proxy/cache/redis_store.hpp"
#include "redis_connection.hpp"
#include "redis_scripts.hpp"

namespace llm_proxy::cache {

namespace {

// Escapes the glob metacharacters of a SCAN MATCH pattern.
std::string glob_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
            out.push_back('\\');
        }
        out.push_back(c);
    }
    return out;
}

struct clear_job {
    std::promise<void> done;
    std::atomic<bool> abandoned{false};  // the caller stopped waiting
    bool finished = false;

    void finish(std::exception_ptr error = nullptr) {
        if (finished) {
            return;
        }
        finished = true;
        if (error) {
            done.set_exception(error);
        } else {
            done.set_value();
        }
    }
};

class redis_store final : public store {
  public:
    redis_store(redis_url url, store_limits limits, redis_store_options options);
    ~redis_store() override;

    redis_store(const redis_store&) = delete;
    redis_store& operator=(const redis_store&) = delete;

    std::string_view engine() const override { return "redis"; }
    void async_get(const std::string& key, std::function<void(get_result)> done) override;
    void put(const std::string& key, std::string value, std::int64_t created_ms) override;
    void clear() override;
    store_stats stats() override;
    void close() override;

  private:
    // All of the following run on the store thread.
    get_result unavailable(const std::string& why) const;
    void complete(std::function<void(get_result)>& done, get_result result);
    void do_get(const std::string& key, std::function<void(get_result)> done);
    void do_put(const std::string& key, std::string value, std::int64_t created_ms);
    void clear_batch(const std::shared_ptr<clear_job>& job);
    void clear_scan(const std::shared_ptr<clear_job>& job, std::string cursor);

    bool on_store_thread() const { return std::this_thread::get_id() == thread_id_; }
    std::string entry_key(const std::string& key) const { return entry_prefix_ + key; }

    const redis_url url_;
    const std::string display_;
    const store_limits limits_;
    const redis_store_options options_;
    const std::string entry_prefix_;
    const std::string lru_key_;
    const std::string sizes_key_;
    const std::string bytes_key_;

    redis_scripts scripts_;
    asio::io_context io_{1};
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    redis_connection conn_;          // store thread only
    bool put_error_logged_ = false;  // store thread only

    std::atomic<bool> close_called_{false};
    std::thread thread_;
    std::thread::id thread_id_;
};

// --- construction and shutdown --------------------------------------------------------------

redis_store::redis_store(redis_url url, store_limits limits, redis_store_options options)
    : url_(std::move(url)),
      display_(url_.display()),
      limits_(limits),
      options_(std::move(options)),
      entry_prefix_(options_.key_prefix + "e:"),
      lru_key_(options_.key_prefix + "lru"),
      sizes_key_(options_.key_prefix + "sizes"),
      bytes_key_(options_.key_prefix + "bytes"),
      work_(asio::make_work_guard(io_)),
      conn_(io_, url_, display_, options_, {&scripts_.get, &scripts_.put, &scripts_.clear}) {
    auto connected = conn_.first_connect();
    thread_ = std::thread([this] {
        // hiredis writes with write(2): a closed socket must give EPIPE, not kill the process.
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
        for (;;) {
            try {
                io_.run();
                return;
            } catch (const std::exception& e) {
                spdlog::error("redis store {}: {}", display_, e.what());
            }
        }
    });
    thread_id_ = thread_.get_id();
    asio::post(io_, [this] { conn_.start(); });

    std::string error;
    if (connected.wait_for(options_.connect_timeout + std::chrono::seconds(2)) !=
        std::future_status::ready) {
        error = "timed out";
    } else {
        error = connected.get();
    }
    if (!error.empty()) {
        close();
        throw std::runtime_error("redis " + display_ + ": cannot connect: " + error);
    }
}

redis_store::~redis_store() {
    try {
        close();
    } catch (const std::exception& e) {
        spdlog::error("redis store {}: close: {}", display_, e.what());
    }
}

void redis_store::close() {
    if (!thread_.joinable()) {
        return;
    }
    if (on_store_thread()) {
        throw std::logic_error("redis store: close() called from a store callback");
    }
    close_called_ = true;
    // run() returns once the remaining handlers (cancellations, link clean-up) have run.
    asio::post(io_, [this] { conn_.close([this] { work_.reset(); }); });
    thread_.join();
}

// --- get / put ------------------------------------------------------------------------------

get_result redis_store::unavailable(const std::string& why) const {
    get_result r;
    r.state = get_result::status::unavailable;
    r.error = "redis " + display_ + " unavailable" + (why.empty() ? "" : ": " + why);
    return r;
}

void redis_store::complete(std::function<void(get_result)>& done, get_result result) {
    try {
        done(std::move(result));
    } catch (const std::exception& e) {
        spdlog::error("redis store: get callback threw: {}", e.what());
    } catch (...) {
        spdlog::error("redis store: get callback threw");
    }
}

void redis_store::async_get(const std::string& key, std::function<void(get_result)> done) {
    if (close_called_) {
        complete(done, unavailable("store closed"));
        return;
    }
    asio::post(io_,
               [this, key, done = std::move(done)]() mutable { do_get(key, std::move(done)); });
}

void redis_store::do_get(const std::string& key, std::function<void(get_result)> done) {
    if (!conn_.usable()) {
        complete(done, unavailable(conn_.closed() ? "store closed" : conn_.last_error()));
        return;
    }
    conn_.run_script(
        scripts_.get, 4, {lru_key_, sizes_key_, bytes_key_, entry_key(key), key},
        [this, done = std::move(done)](const redisReply* reply, const std::string& error) mutable {
            get_result result;
            if (!reply) {
                result = unavailable(error);
            } else if (reply->type == REDIS_REPLY_STRING) {
                result.state = get_result::status::hit;
                result.value = reply_text(reply);
            } else if (reply->type == REDIS_REPLY_NIL) {
                result.state = get_result::status::miss;
            } else {
                const std::string why =
                    is_error(reply) ? reply_text(reply) : "unexpected reply to the get script";
                spdlog::debug("redis {}: get: {}", display_, why);
                result = unavailable(why);
            }
            complete(done, std::move(result));
        });
}

void redis_store::put(const std::string& key, std::string value, std::int64_t created_ms) {
    if (close_called_) {
        return;
    }
    asio::post(io_, [this, key, value = std::move(value), created_ms]() mutable {
        do_put(key, std::move(value), created_ms);
    });
}

void redis_store::do_put(const std::string& key, std::string value, std::int64_t created_ms) {
    if (limits_.max_bytes > 0 && value.size() > limits_.max_bytes) {
        spdlog::debug("redis {}: not caching {} bytes (max_bytes {})", display_, value.size(),
                      limits_.max_bytes);
        return;
    }
    std::int64_t px = 0;
    const std::int64_t ttl = limits_.ttl.count();
    if (ttl > 0) {
        px = std::min(ttl, ttl - (unix_ms_now() - created_ms));
        if (px <= 0) {
            return;  // already expired
        }
    }
    if (!conn_.usable()) {
        spdlog::debug("redis {}: unavailable, put dropped", display_);
        return;
    }
    conn_.run_script(
        scripts_.put, 4,
        {lru_key_, sizes_key_, bytes_key_, entry_key(key), key, std::move(value),
         std::to_string(px), std::to_string(limits_.max_entries), std::to_string(limits_.max_bytes),
         std::to_string(std::max<std::int64_t>(ttl, 0)), entry_prefix_},
        [this](const redisReply* reply, const std::string& error) {
            if (reply && !is_error(reply)) {
                put_error_logged_ = false;
                return;
            }
            // Connection failures are reported by the link; log refusals once per streak
            // (e.g. OOM when Redis' maxmemory is reached with noeviction).
            const std::string why = reply ? reply_text(reply) : error;
            if (reply && !put_error_logged_) {
                spdlog::warn("redis {}: cannot store an entry: {}", display_, why);
                put_error_logged_ = true;
            } else {
                spdlog::debug("redis {}: put failed: {}", display_, why);
            }
        });
}

// --- clear / stats --------------------------------------------------------------------------

void redis_store::clear() {
    if (close_called_) {
        throw std::logic_error("redis store: clear() after close()");
    }
    if (on_store_thread()) {
        throw std::logic_error("redis store: clear() called from a store callback");
    }
    auto job = std::make_shared<clear_job>();
    auto done = job->done.get_future();
    asio::post(io_, [this, job] { clear_batch(job); });
    // Every command is bounded by the watchdog; this only bounds a huge or ever-growing prefix.
    const auto limit = std::chrono::seconds(60);
    if (done.wait_for(limit) != std::future_status::ready) {
        job->abandoned = true;
        throw std::runtime_error("redis " + display_ + ": clear did not finish within 60 s");
    }
    done.get();
}

// Phase 1: empty the index, a batch per script run (each atomic, so the accounting stays
// consistent for the other proxies).
void redis_store::clear_batch(const std::shared_ptr<clear_job>& job) {
    if (job->abandoned) {
        return;
    }
    if (!conn_.usable()) {
        job->finish(std::make_exception_ptr(std::runtime_error(
            "redis " + display_ + " unavailable" +
            (conn_.last_error().empty() ? std::string() : ": " + conn_.last_error()))));
        return;
    }
    conn_.run_script(scripts_.clear, 3, {lru_key_, sizes_key_, bytes_key_, entry_prefix_, "500"},
                     [this, job](const redisReply* reply, const std::string& error) {
                         if (!reply || reply->type != REDIS_REPLY_INTEGER) {
                             const std::string why = reply ? reply_text(reply) : error;
                             job->finish(std::make_exception_ptr(
                                 std::runtime_error("redis " + display_ + ": clear: " + why)));
                         } else if (reply->integer > 0) {
                             clear_batch(job);
                         } else {
                             clear_scan(job, "0");
                         }
                     });
}

// Phase 2: delete whatever else is under the prefix (entries that were not indexed).
void redis_store::clear_scan(const std::shared_ptr<clear_job>& job, std::string cursor) {
    if (job->abandoned) {
        return;
    }
    if (!conn_.usable()) {
        job->finish(std::make_exception_ptr(
            std::runtime_error("redis " + display_ + ": clear: connection lost")));
        return;
    }
    const std::string pattern = glob_escape(options_.key_prefix) + "*";
    conn_.issue(
        {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"},
        [this, job](const redisReply* reply, const std::string& error) {
            if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                reply->element[0]->type != REDIS_REPLY_STRING ||
                reply->element[1]->type != REDIS_REPLY_ARRAY) {
                const std::string why = reply ? reply_text(reply) : error;
                job->finish(std::make_exception_ptr(
                    std::runtime_error("redis " + display_ + ": clear: SCAN: " + why)));
                return;
            }
            std::string next = reply_text(reply->element[0]);
            std::vector<std::string> keys;
            const redisReply* found = reply->element[1];
            for (std::size_t i = 0; i < found->elements; ++i) {
                std::string key = reply_text(found->element[i]);
                // The index keys were emptied atomically by phase 1; deleting them now
                // could lose another proxy's accounting.
                if (key != lru_key_ && key != sizes_key_ && key != bytes_key_) {
                    keys.push_back(std::move(key));
                }
            }
            auto proceed = [this, job, next]() {
                if (next == "0") {
                    job->finish();
                } else {
                    clear_scan(job, next);
                }
            };
            if (keys.empty()) {
                proceed();
                return;
            }
            std::vector<std::string_view> args{"DEL"};
            args.insert(args.end(), keys.begin(), keys.end());
            conn_.issue(args, [this, job, proceed](const redisReply* del, const std::string& why) {
                if (!del || is_error(del)) {
                    job->finish(std::make_exception_ptr(std::runtime_error(
                        "redis " + display_ + ": clear: DEL: " + (del ? reply_text(del) : why))));
                    return;
                }
                proceed();
            });
        });
}

store_stats redis_store::stats() {
    if (close_called_ || on_store_thread()) {
        return {};
    }
    auto promise = std::make_shared<std::promise<store_stats>>();
    auto future = promise->get_future();
    asio::post(io_, [this, promise] {
        if (!conn_.usable()) {
            promise->set_value({});
            return;
        }
        auto result = std::make_shared<store_stats>();
        auto ok = std::make_shared<bool>(true);
        // Pipelined; the second reply completes the promise.
        conn_.issue({"ZCARD", lru_key_}, [result, ok](const redisReply* reply, const std::string&) {
            if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
                result->entries = static_cast<std::uint64_t>(reply->integer);
            } else if (!reply || is_error(reply)) {
                *ok = false;
            }
        });
        conn_.issue({"GET", bytes_key_}, [result, ok, promise](const redisReply* reply,
                                                               const std::string&) {
            if (reply && reply->type == REDIS_REPLY_STRING) {
                const std::string text = reply_text(reply);
                std::int64_t total = 0;
                std::from_chars(text.data(), text.data() + text.size(), total);
                result->bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(total, 0));
            } else if (!reply || is_error(reply)) {
                *ok = false;
            }
            promise->set_value(*ok ? *result : store_stats{});
        });
    });
    if (future.wait_for(options_.command_timeout + std::chrono::milliseconds(500)) !=
        std::future_status::ready) {
        return {};
    }
    return future.get();
}

}  // namespace

std::unique_ptr<store> connect_redis_store(const std::string& url, store_limits limits,
                                           redis_store_options options) {
    return std::make_unique<redis_store>(parse_redis_url(url), limits, std::move(options));
}

std::unique_ptr<store> connect_redis_store(const std::string& url, store_limits limits,
                                           std::string key_prefix) {
    redis_store_options options;
    options.key_prefix = std::move(key_prefix);
    return connect_redis_store(url, limits, std::move(options));
}

}  // namespace llm_proxy::cache

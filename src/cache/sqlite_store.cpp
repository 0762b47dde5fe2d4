#include "llm_proxy/cache/sqlite_store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>
#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "llm_proxy/util/files.hpp"

namespace llm_proxy::cache {

namespace {

namespace fs = std::filesystem;

constexpr const char* db_file_name = "cache.sqlite3";
constexpr int busy_timeout_ms = 5000;
// Jobs handled in one transaction: enough to amortize the commit, few enough that other
// processes waiting for the write lock are not held up for long.
constexpr std::size_t max_batch = 256;
// Values waiting to be written beyond this are dropped (it is a cache) rather than letting a
// slow disk grow the queue without bound.
constexpr std::uint64_t max_queued_put_bytes = 64ull << 20;
// The WAL file is truncated back to this after a checkpoint if it grew larger.
constexpr std::int64_t journal_size_limit = 64ll << 20;
constexpr int schema_version = 1;

// `totals` holds the entry count and byte sum, kept exact by triggers inside the same
// transactions that change `entries`, so every process enforces the limits from the database
// without scanning it. `size` and the timestamps come before `value` in each row so reading
// them does not walk the blob's overflow pages.
constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY NOT NULL,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL,
    last_used INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries (last_used);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, entries, bytes)
    SELECT 1, count(*), coalesce(sum(size), 0) FROM entries;
CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
    UPDATE totals SET entries = entries + 1, bytes = bytes + new.size WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
    UPDATE totals SET entries = entries - 1, bytes = bytes - old.size WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS entries_update AFTER UPDATE OF size ON entries BEGIN
    UPDATE totals SET bytes = bytes - old.size + new.size WHERE id = 1;
END;
)sql";

// mkdir -p; the directories it creates get mode 0700.
void make_dirs(const fs::path& dir) {
    if (dir.empty()) {
        throw std::runtime_error("cache dir: empty path");
    }
    if (auto error = files::make_directories(dir, 0700); !error.empty()) {
        throw std::runtime_error("cache dir " + dir.string() + ": " + error);
    }
}

// Creates the database file with mode 0600 (SQLite would use 0644; its -wal and -shm files
// copy the database's mode) and checks that it can be opened for writing.
void create_db_file(const fs::path& file) {
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        throw std::runtime_error("cache db " + file.string() +
                                 ": cannot open: " + files::errno_message(errno));
    }
    ::close(fd);
}

// A SQLite failure while the store runs; caught per job by the store's thread.
struct sqlite_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct db_closer {
    void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using db_ptr = std::unique_ptr<sqlite3, db_closer>;

struct stmt_finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_finalizer>;

// Resets a statement when one use of it ends, so no statement keeps a read open.
class stmt_use {
  public:
    explicit stmt_use(const stmt_ptr& s) : s_(s.get()) {}
    ~stmt_use() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    stmt_use(const stmt_use&) = delete;
    stmt_use& operator=(const stmt_use&) = delete;
    sqlite3_stmt* get() const { return s_; }

  private:
    sqlite3_stmt* s_;
};

// Queued work. get and stats deliver results after the batch's transaction has ended.
struct get_job {
    std::string key;
    std::function<void(get_result)> done;
    get_result result;
};
struct put_job {
    std::string key;
    std::string value;
    std::int64_t created_ms;
};
struct clear_job {
    std::promise<void> finished;
};
struct stats_job {
    std::promise<store_stats> finished;
    store_stats result;
};
using job = std::variant<get_job, put_job, clear_job, stats_job>;

class sqlite_store final : public store {
  public:
    sqlite_store(const fs::path& dir, store_limits limits)
        : db_path_(dir / db_file_name), limits_(limits) {
        make_dirs(dir);
        create_db_file(db_path_);
        open_db();
    }

    ~sqlite_store() override { close(); }

    sqlite_store(const sqlite_store&) = delete;
    sqlite_store& operator=(const sqlite_store&) = delete;

    std::string_view engine() const override { return "sqlite"; }

    void async_get(const std::string& key, std::function<void(get_result)> done) override {
        {
            std::lock_guard lock(mutex_);
            if (!closing_) {
                enqueue(get_job{key, std::move(done), {}});
                return;
            }
        }
        done(get_result{get_result::status::unavailable, {}, "cache store is closed"});
    }

    void put(const std::string& key, std::string value, std::int64_t created_ms) override {
        std::lock_guard lock(mutex_);
        if (closing_) {
            return;
        }
        if (queued_put_bytes_ > 0 && queued_put_bytes_ + value.size() > max_queued_put_bytes) {
            if (!dropping_) {
                spdlog::warn("cache {}: write queue full, dropping new entries", db_path_.string());
                dropping_ = true;
            }
            return;
        }
        queued_put_bytes_ += value.size();
        enqueue(put_job{key, std::move(value), created_ms});
    }

    void clear() override {
        clear_job j;
        auto finished = j.finished.get_future();
        if (run_sync(std::move(j))) {
            finished.wait();
        }
    }

    store_stats stats() override {
        stats_job j;
        auto finished = j.finished.get_future();
        return run_sync(std::move(j)) ? finished.get() : store_stats{};
    }

    void close() override {
        std::lock_guard close_lock(close_mutex_);
        if (closed_) {
            return;
        }
        closed_ = true;
        {
            std::lock_guard lock(mutex_);
            closing_ = true;
        }
        // Nothing is queued after closing_; this finishes what was, then the pool has no work.
        boost::asio::post(pool_, [this] { finish(); });
        pool_.join();
        if (db_) {
            for (auto* s : {&get_, &touch_, &remove_, &upsert_, &totals_, &newest_, &oldest_,
                            &remove_rowid_, &clear_}) {
                s->reset();
            }
            if (int rc = sqlite3_close(db_.release()); rc != SQLITE_OK) {
                spdlog::warn("cache {}: close: {}", db_path_.string(), sqlite3_errstr(rc));
            }
        }
    }

  private:
    // ---- open time: errors throw ----

    [[noreturn]] void open_failed(const std::string& what) const {
        throw std::runtime_error("cache db " + db_path_.string() + ": " + what);
    }

    void exec_or_throw(const char* sql) {
        if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
            open_failed(sqlite3_errmsg(db_.get()));
        }
    }

    // Runs a statement that returns one row and gives its first column as text.
    std::string query_text(const char* sql) {
        stmt_ptr s = prepare(sql);
        if (sqlite3_step(s.get()) != SQLITE_ROW) {
            open_failed(sqlite3_errmsg(db_.get()));
        }
        const auto* text = sqlite3_column_text(s.get(), 0);
        return text ? reinterpret_cast<const char*>(text) : "";
    }

    stmt_ptr prepare(const char* sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
            SQLITE_OK) {
            open_failed(sqlite3_errmsg(db_.get()));
        }
        return stmt_ptr(s);
    }

    void open_db() {
        sqlite3* raw = nullptr;
        int rc = sqlite3_open_v2(db_path_.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
        db_.reset(raw);  // a handle is returned even on failure and must be closed
        if (rc != SQLITE_OK) {
            open_failed(raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
        }
        sqlite3_busy_timeout(db_.get(), busy_timeout_ms);

        // The first statement that reads the file: "file is not a database" shows up here.
        std::string mode = query_text("PRAGMA journal_mode = WAL");
        if (mode != "wal") {
            // Still crash-safe with a rollback journal, only slower with several processes.
            spdlog::warn("cache {}: WAL mode unavailable, using journal_mode={}", db_path_.string(),
                         mode);
        }
        exec_or_throw("PRAGMA synchronous = NORMAL");
        query_text(("PRAGMA journal_size_limit = " + std::to_string(journal_size_limit)).c_str());

        // One transaction, so two processes creating the schema at once do not race.
        exec_or_throw("BEGIN IMMEDIATE");
        int version = std::stoi(query_text("PRAGMA user_version"));
        if (version > schema_version) {
            open_failed("written by a newer llm_proxy (cache schema " + std::to_string(version) +
                        ", this one knows " + std::to_string(schema_version) + ")");
        }
        exec_or_throw(schema_sql);
        exec_or_throw(("PRAGMA user_version = " + std::to_string(schema_version)).c_str());
        exec_or_throw("COMMIT");

        get_ = prepare("SELECT rowid, created, value FROM entries WHERE key = ?1");
        touch_ = prepare("UPDATE entries SET last_used = ?2 WHERE rowid = ?1");
        remove_ = prepare("DELETE FROM entries WHERE key = ?1");
        upsert_ = prepare(
            "INSERT INTO entries (key, size, created, last_used, value) "
            "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO UPDATE SET "
            "size = excluded.size, created = excluded.created, "
            "last_used = excluded.last_used, value = excluded.value");
        totals_ = prepare("SELECT entries, bytes FROM totals WHERE id = 1");
        newest_ = prepare("SELECT max(last_used) FROM entries");
        oldest_ = prepare("SELECT rowid, size FROM entries ORDER BY last_used");
        remove_rowid_ = prepare("DELETE FROM entries WHERE rowid = ?1");
        clear_ = prepare("DELETE FROM entries");
    }

    // ---- the store's thread ----

    // Queues a job whose caller waits for it. On the store's own thread (a `done` callback
    // calling clear() or stats()) waiting would deadlock, so the job runs right there: callbacks
    // run after the batch's transaction, with no statement in use. Returns false when closed.
    bool run_sync(job j) {
        if (pool_.get_executor().running_in_this_thread()) {
            std::vector<job> batch;
            batch.push_back(std::move(j));
            process(batch);
            return true;
        }
        std::lock_guard lock(mutex_);
        if (closing_) {
            return false;
        }
        enqueue(std::move(j));
        return true;
    }

    // Adds a job to the queue and makes sure a drain() is on its way. Requires mutex_.
    void enqueue(job j) {
        queue_.push_back(std::move(j));
        if (!drain_posted_) {
            drain_posted_ = true;
            boost::asio::post(pool_, [this] { drain(); });
        }
    }

    // Takes up to max_batch jobs off the queue (in order). Requires mutex_.
    std::vector<job> take_batch() {
        std::vector<job> batch;
        while (!queue_.empty() && batch.size() < max_batch) {
            if (auto* p = std::get_if<put_job>(&queue_.front())) {
                queued_put_bytes_ -= p->value.size();
            }
            batch.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
        if (queued_put_bytes_ == 0) {
            dropping_ = false;
        }
        return batch;
    }

    // Runs one batch, then posts itself again while jobs remain, so the touch timer gets its
    // turn between batches. One drain() at a time is posted (drain_posted_).
    void drain() {
        std::vector<job> batch;
        {
            std::lock_guard lock(mutex_);
            batch = take_batch();
            if (batch.empty()) {
                drain_posted_ = false;
                return;
            }
        }
        process(batch);
        arm_touch_timer();
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
            drain_posted_ = false;
        } else {
            boost::asio::post(pool_, [this] { drain(); });
        }
    }

    // Hits not yet written are flushed a touch_flush_interval after the batch that made them
    // (if nothing flushed them meanwhile).
    void arm_touch_timer() {
        if (pending_touches_.empty() || touch_timer_armed_) {
            return;
        }
        touch_timer_armed_ = true;
        touch_timer_.expires_after(touch_flush_interval);
        touch_timer_.async_wait([this](const boost::system::error_code& ec) {
            touch_timer_armed_ = false;
            if (ec) {
                return;
            }
            if (touches_due()) {
                std::vector<job> none;
                process(none);  // an empty batch: flushes the touches
            }
            arm_touch_timer();
        });
    }

    // The last task on the pool (close): runs every job still queued, writes the pending
    // touches, and stops the timer so that the pool runs out of work.
    void finish() {
        for (;;) {
            std::vector<job> batch;
            {
                std::lock_guard lock(mutex_);
                batch = take_batch();
            }
            if (batch.empty()) {
                break;
            }
            process(batch);
        }
        if (!pending_touches_.empty()) {
            last_flush_ = {};  // make them due
            std::vector<job> none;
            process(none);
        }
        touch_timer_.cancel();
    }

    // Runs a batch of jobs in one transaction, then delivers the results.
    void process(std::vector<job>& batch) {
        bool writes = touches_due() || std::any_of(batch.begin(), batch.end(), [](const job& j) {
                          return !std::holds_alternative<get_job>(j);
                      });
        std::string begin_error;
        if (sqlite3_exec(db_.get(), writes ? "BEGIN IMMEDIATE" : "BEGIN", nullptr, nullptr,
                         nullptr) != SQLITE_OK) {
            begin_error = std::string("begin transaction: ") + sqlite3_errmsg(db_.get());
            spdlog::warn("cache {}: {}", db_path_.string(), begin_error);
        } else if (writes) {
            try {
                flush_touches();
            } catch (const std::exception& e) {
                pending_touches_.clear();  // only the LRU order suffers
                spdlog::warn("cache {}: {}", db_path_.string(), e.what());
            }
        }
        bool rolled_back = false;
        for (auto& j : batch) {
            if (!begin_error.empty()) {
                fail(j, begin_error);
                continue;
            }
            try {
                std::visit([this](auto& x) { handle(x); }, j);
            } catch (const std::exception& e) {
                fail(j, e.what());
            }
            // Some errors (disk full, I/O) roll the whole transaction back; the jobs after
            // that run in autocommit mode.
            if (!rolled_back && sqlite3_get_autocommit(db_.get())) {
                rolled_back = true;
                spdlog::warn("cache {}: transaction rolled back; earlier writes in it are lost",
                             db_path_.string());
            }
        }
        if (!sqlite3_get_autocommit(db_.get()) &&
            sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
            spdlog::warn("cache {}: commit: {}", db_path_.string(), sqlite3_errmsg(db_.get()));
            sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        }
        for (auto& j : batch) {
            std::visit([this](auto& x) { complete(x); }, j);
        }
    }

    void handle(get_job& j) {
        j.result = get_result{};
        std::int64_t rowid = 0;
        bool expired = false;
        std::string value;
        {
            stmt_use s(get_);
            bind_text(s, 1, j.key);
            int rc = sqlite3_step(s.get());
            if (rc == SQLITE_DONE) {
                return;  // miss
            }
            check(rc, SQLITE_ROW, "get");
            rowid = sqlite3_column_int64(s.get(), 0);
            std::int64_t created = sqlite3_column_int64(s.get(), 1);
            expired = limits_.ttl.count() > 0 && unix_ms_now() - created > limits_.ttl.count();
            if (!expired) {  // the blob is read only when needed
                const void* data = sqlite3_column_blob(s.get(), 2);
                int size = sqlite3_column_bytes(s.get(), 2);
                if (size > 0) {
                    value.assign(static_cast<const char*>(data), static_cast<std::size_t>(size));
                } else if (data == nullptr && sqlite3_errcode(db_.get()) == SQLITE_NOMEM) {
                    throw sqlite_error("get: out of memory");
                }
            }
        }
        // The statement is reset before the row changes: writing a row that an unfinished read
        // is on is best avoided.
        if (expired) {
            stmt_use r(remove_rowid_);
            sqlite3_bind_int64(r.get(), 1, rowid);
            check(sqlite3_step(r.get()), SQLITE_DONE, "remove expired entry");
            return;
        }
        pending_touches_[rowid] = next_stamp();
        j.result = get_result{get_result::status::hit, std::move(value), {}};
    }

    void handle(put_job& j) {
        flush_touches();  // hits earlier in this batch count for the eviction below
        if (limits_.max_bytes != 0 && j.value.size() > limits_.max_bytes) {
            // Too big to keep. Drop what the key held before, so that a get never returns a
            // value older than the last put.
            stmt_use r(remove_);
            bind_text(r, 1, j.key);
            check(sqlite3_step(r.get()), SQLITE_DONE, "put");
            return;
        }
        {
            stmt_use s(upsert_);
            bind_text(s, 1, j.key);
            sqlite3_bind_int64(s.get(), 2, static_cast<std::int64_t>(j.value.size()));
            sqlite3_bind_int64(s.get(), 3, j.created_ms);
            sqlite3_bind_int64(s.get(), 4, next_stamp());
            // data() of an empty string is not null, so this binds an empty blob, not NULL.
            check(sqlite3_bind_blob64(s.get(), 5, j.value.data(), j.value.size(), SQLITE_STATIC),
                  SQLITE_OK, "put");
            check(sqlite3_step(s.get()), SQLITE_DONE, "put");
        }
        evict();
    }

    void handle(clear_job&) {
        pending_touches_.clear();
        stmt_use s(clear_);
        check(sqlite3_step(s.get()), SQLITE_DONE, "clear");
    }

    void handle(stats_job& j) { j.result = read_totals(); }

    // Records why a job could not be done: a get reports it, the rest log it.
    void fail(job& j, const std::string& error) {
        if (auto* g = std::get_if<get_job>(&j)) {
            g->result = get_result{get_result::status::unavailable, {}, error};
        } else if (std::holds_alternative<put_job>(j)) {
            spdlog::warn("cache {}: entry not stored: {}", db_path_.string(), error);
        } else if (std::holds_alternative<clear_job>(j)) {
            spdlog::warn("cache {}: clear failed: {}", db_path_.string(), error);
        } else {
            spdlog::warn("cache {}: stats: {}", db_path_.string(), error);
        }
    }

    void complete(get_job& j) {
        try {
            j.done(std::move(j.result));
        } catch (const std::exception& e) {
            spdlog::warn("cache {}: get callback threw: {}", db_path_.string(), e.what());
        } catch (...) {
            spdlog::warn("cache {}: get callback threw", db_path_.string());
        }
    }
    void complete(put_job&) {}
    void complete(clear_job& j) { j.finished.set_value(); }
    void complete(stats_job& j) { j.finished.set_value(j.result); }

    // Deletes least-recently-used entries until the limits hold. Runs right after a put, in
    // its transaction, from the totals in the database (other processes write to it too).
    void evict() {
        if (limits_.max_entries == 0 && limits_.max_bytes == 0) {
            return;
        }
        store_stats now = read_totals();
        std::uint64_t excess_entries = limits_.max_entries != 0 && now.entries > limits_.max_entries
                                           ? now.entries - limits_.max_entries
                                           : 0;
        std::uint64_t excess_bytes = limits_.max_bytes != 0 && now.bytes > limits_.max_bytes
                                         ? now.bytes - limits_.max_bytes
                                         : 0;
        std::vector<std::int64_t> victims;
        {
            stmt_use s(oldest_);
            while (excess_entries > 0 || excess_bytes > 0) {
                int rc = sqlite3_step(s.get());
                if (rc == SQLITE_DONE) {
                    break;
                }
                check(rc, SQLITE_ROW, "evict");
                victims.push_back(sqlite3_column_int64(s.get(), 0));
                auto size = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 1));
                excess_entries -= std::min<std::uint64_t>(excess_entries, 1);
                excess_bytes -= std::min(excess_bytes, size);
            }
        }
        // Deleted after the scan ends: changing a table while reading it is undefined.
        for (std::int64_t rowid : victims) {
            stmt_use r(remove_rowid_);
            sqlite3_bind_int64(r.get(), 1, rowid);
            check(sqlite3_step(r.get()), SQLITE_DONE, "evict");
        }
    }

    store_stats read_totals() {
        stmt_use s(totals_);
        check(sqlite3_step(s.get()), SQLITE_ROW, "read totals");
        auto count = sqlite3_column_int64(s.get(), 0);
        auto bytes = sqlite3_column_int64(s.get(), 1);
        return store_stats{static_cast<std::uint64_t>(std::max<std::int64_t>(count, 0)),
                           static_cast<std::uint64_t>(std::max<std::int64_t>(bytes, 0))};
    }

    // The last_used value for a hit or put: the time in ms, but always above every last_used
    // in the database, so the LRU order is exact even for several uses within one ms. Reads
    // the newest value each time, as other processes may have written since.
    std::int64_t next_stamp() {
        stmt_use s(newest_);
        check(sqlite3_step(s.get()), SQLITE_ROW, "read last_used");
        std::int64_t newest = sqlite3_column_int64(s.get(), 0);  // 0 when the table is empty
        last_stamp_ = std::max({unix_ms_now(), newest + 1, last_stamp_ + 1});
        return last_stamp_;
    }

    // Hits record their new last_used here; the rows are updated before anything reads the
    // LRU order (a put's eviction), at least once a second, and at close. Hits then cost a
    // read transaction only: no WAL write, no lock shared with other processes.
    void flush_touches() {
        for (auto [rowid, stamp] : pending_touches_) {
            stmt_use t(touch_);
            sqlite3_bind_int64(t.get(), 1, rowid);
            sqlite3_bind_int64(t.get(), 2, stamp);
            check(sqlite3_step(t.get()), SQLITE_DONE, "update last_used");
        }
        pending_touches_.clear();
        last_flush_ = std::chrono::steady_clock::now();
    }

    bool touches_due() const {
        return !pending_touches_.empty() &&
               std::chrono::steady_clock::now() - last_flush_ >= touch_flush_interval;
    }

    void bind_text(const stmt_use& s, int index, const std::string& text) {
        check(sqlite3_bind_text64(s.get(), index, text.data(), text.size(), SQLITE_STATIC,
                                  SQLITE_UTF8),
              SQLITE_OK, "bind");
    }

    void check(int rc, int expected, const char* what) {
        if (rc != expected) {
            throw sqlite_error(std::string(what) + ": " + sqlite3_errmsg(db_.get()));
        }
    }

    const fs::path db_path_;
    const store_limits limits_;

    // Used by the store's thread only (and by the constructor and close(), before it starts
    // and after it ends). Declared after db_ so they are finalized before it closes.
    db_ptr db_;
    stmt_ptr get_, touch_, remove_, upsert_, totals_, newest_, oldest_, remove_rowid_, clear_;
    // Store thread only: hits not yet written (rowid -> last_used), see flush_touches().
    std::unordered_map<std::int64_t, std::int64_t> pending_touches_;
    std::int64_t last_stamp_ = 0;
    std::chrono::steady_clock::time_point last_flush_{};
    static constexpr std::chrono::seconds touch_flush_interval{1};

    std::mutex mutex_;
    std::deque<job> queue_;
    std::uint64_t queued_put_bytes_ = 0;
    bool dropping_ = false;      // puts are being dropped; warned once until the queue drains
    bool closing_ = false;       // nothing more is queued
    bool drain_posted_ = false;  // a drain() is posted or running

    std::mutex close_mutex_;  // so that concurrent close() calls join the pool once
    bool closed_ = false;     // close() ran (guarded by close_mutex_)

    // The store's one thread; all database work runs on it. Declared before the timer, which
    // must go first.
    boost::asio::thread_pool pool_{1};
    boost::asio::steady_timer touch_timer_{pool_};  // pool thread only
    bool touch_timer_armed_ = false;                // pool thread only
};

}  // namespace

std::unique_ptr<store> open_sqlite_store(const std::filesystem::path& dir, store_limits limits) {
    return std::make_unique<sqlite_store>(dir, limits);
}

}  // namespace llm_proxy::cache

// What only the sqlite store does; the store contract is checked for every engine in
// cache_store_conformance_test.cpp.

#include "llm_proxy/cache/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

namespace llm_proxy::cache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using status = get_result::status;

// Waits for an async_get, failing (instead of hanging) when the store never answers.
std::future<get_result> start_get(store& s, const std::string& key) {
    auto p = std::make_shared<std::promise<get_result>>();
    auto f = p->get_future();
    s.async_get(key, [p](get_result r) { p->set_value(std::move(r)); });
    return f;
}

get_result wait(std::future<get_result>& f, const std::string& what = "async_get") {
    if (f.wait_for(5s) != std::future_status::ready) {
        ADD_FAILURE() << what << " did not complete within 5 s";
        return get_result{status::unavailable, {}, "timeout"};
    }
    return f.get();
}

get_result get(store& s, const std::string& key) {
    auto f = start_get(s, key);
    return wait(f, "async_get(" + key + ")");
}

std::string key_of(int n) {
    std::string k = std::to_string(n);
    return std::string(64 - k.size(), '0') + k;  // the shape of a real key: 64 hex digits
}

mode_t mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

// A connection of the test's own to the database, to look at it from outside the store.
class raw_db {
  public:
    explicit raw_db(const fs::path& file) {
        if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << "open " << file << ": " << sqlite3_errmsg(db_);
        }
        sqlite3_busy_timeout(db_, 5000);
    }
    ~raw_db() { sqlite3_close(db_); }
    raw_db(const raw_db&) = delete;
    raw_db& operator=(const raw_db&) = delete;

    // The first column of the first row, as text.
    std::string query(const std::string& text) {
        const char* sql = text.c_str();
        sqlite3_stmt* s = nullptr;
        std::string out;
        if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
            return out;
        }
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
            out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        }
        sqlite3_finalize(s);
        return out;
    }

    void exec(const char* sql) {
        EXPECT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), SQLITE_OK)
            << sql << ": " << sqlite3_errmsg(db_);
    }

  private:
    sqlite3* db_ = nullptr;
};

class sqlite_store : public ::testing::Test {
  protected:
    std::unique_ptr<store> open(store_limits limits = {}) {
        return open_sqlite_store(dir(), limits);
    }
    fs::path dir() const { return tmp_ / "cache"; }
    fs::path db_file() const { return dir() / "cache.sqlite3"; }

    test::temp_dir tmp_{"sqlite_store_test"};
};

// What open_sqlite_store throws, or "" when it does not.
std::string open_error(const fs::path& dir) {
    try {
        open_sqlite_store(dir, {});
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

TEST_F(sqlite_store, creates_directories_and_database_with_private_modes) {
    auto nested = tmp_ / "a" / "b" / "c";
    auto s = open_sqlite_store(nested.string() + "/", {});
    EXPECT_EQ(s->engine(), "sqlite");
    EXPECT_EQ(mode_of(tmp_ / "a"), 0700u);
    EXPECT_EQ(mode_of(tmp_ / "a" / "b"), 0700u);
    EXPECT_EQ(mode_of(nested), 0700u);
    EXPECT_EQ(mode_of(nested / "cache.sqlite3"), 0600u);
    s->close();
}

TEST_F(sqlite_store, database_is_in_wal_mode) {
    auto s = open();
    s->put(key_of(1), "v", unix_ms_now());
    s->stats();  // waits for the put
    EXPECT_TRUE(fs::exists(db_file().string() + "-wal"));
    EXPECT_EQ(mode_of(db_file().string() + "-wal"), 0600u);
    raw_db raw(db_file());
    EXPECT_EQ(raw.query("PRAGMA journal_mode"), "wal");
    s->close();
}

TEST_F(sqlite_store, expired_entry_is_deleted_from_the_database) {
    store_limits limits;
    limits.ttl = 50ms;
    auto s = open(limits);
    s->put(key_of(1), "old", unix_ms_now() - 1000);
    s->put(key_of(2), "young", unix_ms_now());
    std::this_thread::sleep_for(70ms);
    EXPECT_EQ(get(*s, key_of(1)).state, status::miss);
    EXPECT_EQ(get(*s, key_of(2)).state, status::miss);
    s->close();
    raw_db raw(db_file());
    EXPECT_EQ(raw.query("SELECT count(*) FROM entries"), "0");
}

// Unlike the redis store, which leaves the old value in place.
TEST_F(sqlite_store, oversize_value_is_not_stored_and_drops_the_old_one) {
    auto s = open({.max_bytes = 10});
    s->put(key_of(1), "small", unix_ms_now());
    s->put(key_of(2), "kept", unix_ms_now());
    s->put(key_of(1), std::string(11, 'x'), unix_ms_now());
    EXPECT_EQ(get(*s, key_of(1)).state, status::miss);
    EXPECT_EQ(get(*s, key_of(2)).value, "kept");
    auto st = s->stats();
    EXPECT_EQ(st.entries, 1u);
    EXPECT_EQ(st.bytes, 4u);
}

TEST_F(sqlite_store, entries_persist_across_close_and_reopen) {
    {
        auto s = open();
        s->put(key_of(1), std::string("persisted\0!", 11), unix_ms_now());
        s->close();  // finishes the queued put
    }
    {
        auto s = open();
        EXPECT_EQ(get(*s, key_of(1)).value, std::string("persisted\0!", 11));
        s->put(key_of(2), "written before destruction", unix_ms_now());
        // No close(): the destructor finishes the put.
    }
    auto s = open();
    EXPECT_EQ(get(*s, key_of(2)).value, "written before destruction");
    auto st = s->stats();
    EXPECT_EQ(st.entries, 2u);
    EXPECT_EQ(st.bytes, 11u + 26u);
}

TEST_F(sqlite_store, hits_are_read_only_until_their_lru_order_is_written) {
    {
        auto s = open();
        s->put(key_of(1), "one", unix_ms_now());
        s->put(key_of(2), "two", unix_ms_now());
        s->stats();  // both committed
        raw_db db(db_file());
        auto before = db.query("SELECT last_used FROM entries WHERE key = '" + key_of(1) + "'");
        auto data_version = db.query("PRAGMA data_version");
        EXPECT_EQ(get(*s, key_of(1)).state, status::hit);
        // The hit wrote nothing yet...
        EXPECT_EQ(db.query("PRAGMA data_version"), data_version);
        EXPECT_EQ(db.query("SELECT last_used FROM entries WHERE key = '" + key_of(1) + "'"),
                  before);
        s->close();  // ...and its new place in the LRU order is written at close.
        EXPECT_GT(
            std::stoll(db.query("SELECT last_used FROM entries WHERE key = '" + key_of(1) + "'")),
            std::stoll(db.query("SELECT last_used FROM entries WHERE key = '" + key_of(2) + "'")));
    }
    // Another store's eviction sees it: 2 is the least recently used.
    auto s = open({.max_entries = 2});
    s->put(key_of(3), "three", unix_ms_now());
    EXPECT_EQ(get(*s, key_of(2)).state, status::miss);
    EXPECT_EQ(get(*s, key_of(1)).state, status::hit);
}

TEST_F(sqlite_store, a_hit_and_a_put_in_one_batch_keep_their_order) {
    auto s = open({.max_entries = 2});
    s->put(key_of(1), "one", unix_ms_now());
    s->put(key_of(2), "two", unix_ms_now());
    s->stats();
    // Queued back to back, these likely run in one transaction: the hit on 1 must still count
    // when the put of 3 evicts.
    auto hit = start_get(*s, key_of(1));
    s->put(key_of(3), "three", unix_ms_now());
    EXPECT_EQ(wait(hit).state, status::hit);
    EXPECT_EQ(get(*s, key_of(2)).state, status::miss);
    EXPECT_EQ(get(*s, key_of(1)).state, status::hit);
    EXPECT_EQ(get(*s, key_of(3)).state, status::hit);
}

TEST_F(sqlite_store, two_stores_on_one_directory_share_entries_and_limits) {
    auto a = open({.max_entries = 3});
    auto b = open();
    a->put(key_of(1), "from a", unix_ms_now());
    a->stats();  // waits until the put is committed
    EXPECT_EQ(get(*b, key_of(1)).value, "from a");
    for (int i = 2; i <= 5; ++i) {
        b->put(key_of(i), "from b", unix_ms_now());
    }
    EXPECT_EQ(b->stats().entries, 5u);              // b has no limit
    EXPECT_EQ(get(*a, key_of(2)).value, "from b");  // 2 becomes the most recently used

    // a's next put enforces its limit on everything in the database, oldest first.
    a->put(key_of(6), "from a", unix_ms_now());
    EXPECT_EQ(a->stats().entries, 3u);
    for (int i : {1, 3, 4}) {
        EXPECT_EQ(get(*b, key_of(i)).state, status::miss) << i;
    }
    for (int i : {2, 5, 6}) {
        EXPECT_EQ(get(*b, key_of(i)).state, status::hit) << i;
    }
    b->clear();
    EXPECT_EQ(a->stats().entries, 0u);
}

TEST_F(sqlite_store, entries_survive_kill_9) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // Only the child's own code runs here; no gtest assertions.
        try {
            auto s = open();
            for (int i = 0; i < 20; ++i) {
                s->put(key_of(i), "value " + std::to_string(i), unix_ms_now());
            }
            s->stats();  // committed once this returns
            ::kill(::getpid(), SIGKILL);
        } catch (...) {
        }
        ::_exit(2);
    }
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << wstatus;
    EXPECT_TRUE(fs::exists(db_file().string() + "-wal"));  // never checkpointed by a close

    auto s = open();
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(get(*s, key_of(i)).value, "value " + std::to_string(i)) << i;
    }
    EXPECT_EQ(s->stats().entries, 20u);
}

TEST_F(sqlite_store, open_fails_under_a_regular_file) {
    auto file = tmp_.write_file("plain", "not a directory");
    auto bad = file / "cache";
    std::string error = open_error(bad);
    EXPECT_NE(error.find(bad.string()), std::string::npos) << error;
    EXPECT_NE(error.find("not a directory"), std::string::npos) << error;
}

TEST_F(sqlite_store, open_fails_when_dir_is_a_regular_file) {
    auto file = tmp_.write_file("plain", "not a directory");
    std::string error = open_error(file);
    EXPECT_NE(error.find(file.string()), std::string::npos) << error;
    EXPECT_NE(error.find("not a directory"), std::string::npos) << error;
}

TEST_F(sqlite_store, open_fails_when_database_path_is_a_directory) {
    fs::create_directories(db_file());
    std::string error = open_error(dir());
    EXPECT_NE(error.find(db_file().string()), std::string::npos) << error;
    EXPECT_NE(error.find("Is a directory"), std::string::npos) << error;
}

TEST_F(sqlite_store, open_fails_on_a_file_that_is_not_a_database) {
    std::string junk;
    while (junk.size() < 8192) {
        junk += "this is not an SQLite database. ";
    }
    tmp_.write_file("cache/cache.sqlite3", junk);
    std::string error = open_error(dir());
    EXPECT_NE(error.find(db_file().string()), std::string::npos) << error;
    EXPECT_NE(error.find("not a database"), std::string::npos) << error;
    EXPECT_EQ(test::read_file(db_file()), junk);  // left alone
}

TEST_F(sqlite_store, database_errors_make_gets_unavailable) {
    auto s = open({.max_entries = 10});
    s->put(key_of(1), "v", unix_ms_now());
    ASSERT_EQ(get(*s, key_of(1)).state, status::hit);
    {
        raw_db raw(db_file());
        raw.exec("DROP TABLE entries");
    }
    auto r = get(*s, key_of(1));
    EXPECT_EQ(r.state, status::unavailable);
    EXPECT_NE(r.error.find("entries"), std::string::npos) << r.error;
    EXPECT_NO_THROW(s->put(key_of(2), "v", unix_ms_now()));  // logged, not thrown
    EXPECT_NO_THROW(s->clear());
    EXPECT_EQ(get(*s, key_of(2)).state, status::unavailable);
    s->close();
}

TEST_F(sqlite_store, callback_may_use_the_store) {
    auto s = open();
    s->put(key_of(1), "12345", unix_ms_now());
    auto p = std::make_shared<std::promise<store_stats>>();
    auto f = p->get_future();
    store* raw = s.get();
    s->async_get(key_of(1), [raw, p](get_result) { p->set_value(raw->stats()); });
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready) << "stats() from a callback hung";
    EXPECT_EQ(f.get().bytes, 5u);
}

TEST_F(sqlite_store, calls_after_close_do_not_crash) {
    auto s = open();
    s->put(key_of(1), "v", unix_ms_now());
    s->close();
    auto r = get(*s, key_of(1));
    EXPECT_EQ(r.state, status::unavailable);
    EXPECT_NO_THROW(s->put(key_of(2), "v", unix_ms_now()));
    EXPECT_EQ(s->stats().entries, 0u);
    s->close();  // idempotent
}

}  // namespace
}  // namespace llm_proxy::cache

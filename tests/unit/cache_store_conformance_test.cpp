// The contract of cache::store (store.hpp), checked the same way for each engine: memory,
// sqlite (in a temporary directory) and redis (against a real redis-server). What only one
// engine does is tested in its own file (memory_store_test, sqlite_store_test,
// redis_store_test).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "llm_proxy/cache/memory_store.hpp"
#include "llm_proxy/cache/redis_store.hpp"
#include "llm_proxy/cache/sqlite_store.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

namespace llm_proxy::cache {
namespace {

using namespace std::chrono_literals;
using status = get_result::status;

// --- the engines ------------------------------------------------------------------------------

struct memory_engine {
    static constexpr std::string_view name = "memory";
    static constexpr int concurrent_rounds = 300;
    static void set_up_suite() {}
    static void tear_down_suite() {}

    std::unique_ptr<store> open(store_limits limits) { return make_memory_store(limits); }
};

struct sqlite_engine {
    static constexpr std::string_view name = "sqlite";
    static constexpr int concurrent_rounds = 150;
    static void set_up_suite() {}
    static void tear_down_suite() {}

    // Every store a test opens uses the same directory, so they share the database.
    std::unique_ptr<store> open(store_limits limits) {
        return open_sqlite_store(tmp / "cache", limits);
    }

    test::temp_dir tmp{"store_conformance_test"};
};

struct redis_engine {
    static constexpr std::string_view name = "redis";
    static constexpr int concurrent_rounds = 150;
    // One server for the suite; each test has its own key prefix.
    static void set_up_suite() { server = new test::redis_server(); }
    static void tear_down_suite() {
        delete server;
        server = nullptr;
    }

    std::unique_ptr<store> open(store_limits limits) {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        return connect_redis_store(server->url(), limits,
                                   std::string("conformance:") + info->name() + ":");
    }

    static inline test::redis_server* server = nullptr;
};

template <class Engine>
class StoreConformance : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { Engine::set_up_suite(); }
    static void TearDownTestSuite() { Engine::tear_down_suite(); }

    std::unique_ptr<store> open(store_limits limits = {}) { return engine_.open(limits); }

    Engine engine_;
};

struct engine_names {
    template <class Engine>
    static std::string GetName(int) {
        return std::string(Engine::name);
    }
};

using engines = ::testing::Types<memory_engine, sqlite_engine, redis_engine>;
TYPED_TEST_SUITE(StoreConformance, engines, engine_names);

// --- helpers ----------------------------------------------------------------------------------

std::future<get_result> start_get(store& s, const std::string& key) {
    auto p = std::make_shared<std::promise<get_result>>();
    auto f = p->get_future();
    s.async_get(key, [p](get_result r) { p->set_value(std::move(r)); });
    return f;
}

// Waits for an async_get, failing (instead of hanging) when the store never answers.
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

bool is_hit(store& s, const std::string& key, const std::string& value) {
    get_result r = get(s, key);
    return r.state == status::hit && r.value == value;
}

bool is_miss(store& s, const std::string& key) {
    return get(s, key).state == status::miss;
}

std::string key_of(int n) {
    std::string k = std::to_string(n);
    return std::string(64 - k.size(), '0') + k;  // the shape of a real key: 64 hex digits
}

store_limits ttl_limit(std::chrono::milliseconds ttl) {
    store_limits l;
    l.ttl = ttl;
    return l;
}

store_limits entries_limit(std::uint64_t max_entries) {
    store_limits l;
    l.max_entries = max_entries;
    return l;
}

store_limits bytes_limit(std::uint64_t max_bytes) {
    store_limits l;
    l.max_bytes = max_bytes;
    return l;
}

// --- the contract -----------------------------------------------------------------------------

TYPED_TEST(StoreConformance, EngineName) {
    EXPECT_EQ(this->open()->engine(), TypeParam::name);
}

TYPED_TEST(StoreConformance, MissOnEmptyStore) {
    auto s = this->open();
    auto r = get(*s, key_of(1));
    EXPECT_EQ(r.state, status::miss);
    EXPECT_TRUE(r.value.empty());
    EXPECT_TRUE(r.error.empty());
}

TYPED_TEST(StoreConformance, PutThenHitReturnsIdenticalBytes) {
    auto s = this->open();
    const std::string binary("a\0b\0\xff\x01z", 7);
    const std::string crlf("a\0b\r\n\0\xff\x80z", 9);
    std::string large(1 << 20, '\0');  // spans many pages, bulk strings, ...
    std::mt19937 rng(42);
    for (auto& c : large) {
        c = static_cast<char>(rng());
    }
    s->put(key_of(1), binary, unix_ms_now());
    s->put(key_of(2), "", unix_ms_now());
    s->put(key_of(3), large, unix_ms_now());
    s->put(key_of(4), crlf, unix_ms_now());
    auto r = get(*s, key_of(1));
    ASSERT_EQ(r.state, status::hit);
    EXPECT_EQ(r.value, binary);
    EXPECT_EQ(r.value.size(), 7u);
    auto empty = get(*s, key_of(2));
    EXPECT_EQ(empty.state, status::hit);
    EXPECT_EQ(empty.value, "");
    auto big = get(*s, key_of(3));
    ASSERT_EQ(big.state, status::hit);
    EXPECT_TRUE(big.value == large);
    EXPECT_TRUE(is_hit(*s, key_of(4), crlf));
    EXPECT_EQ(get(*s, key_of(5)).state, status::miss);
    EXPECT_EQ(s->stats().bytes, binary.size() + large.size() + crlf.size());
}

TYPED_TEST(StoreConformance, GetQueuedAfterPutSeesIt) {
    auto s = this->open();
    std::vector<std::future<get_result>> results;
    for (int i = 0; i < 100; ++i) {
        s->put(key_of(i), "value " + std::to_string(i), unix_ms_now());
        results.push_back(start_get(*s, key_of(i)));  // no waiting in between
    }
    for (int i = 0; i < 100; ++i) {
        auto r = wait(results[static_cast<std::size_t>(i)]);
        ASSERT_EQ(r.state, status::hit) << i;
        EXPECT_EQ(r.value, "value " + std::to_string(i));
    }
    // And one at a time.
    for (int i = 100; i < 200; ++i) {
        s->put(key_of(i), "v" + std::to_string(i), unix_ms_now());
        ASSERT_TRUE(is_hit(*s, key_of(i), "v" + std::to_string(i))) << i;
    }
}

TYPED_TEST(StoreConformance, PutReplacesValue) {
    auto s = this->open();
    s->put(key_of(1), "first value", unix_ms_now());
    s->put(key_of(1), "second", unix_ms_now());
    EXPECT_EQ(get(*s, key_of(1)).value, "second");
    auto st = s->stats();
    EXPECT_EQ(st.entries, 1u);
    EXPECT_EQ(st.bytes, 6u);
}

TYPED_TEST(StoreConformance, ExpiredEntryIsAMissAndIsRemoved) {
    auto s = this->open(ttl_limit(50ms));
    s->put(key_of(1), "old", unix_ms_now() - 1000);
    EXPECT_EQ(get(*s, key_of(1)).state, status::miss);
    EXPECT_EQ(s->stats().entries, 0u);

    auto put_at = std::chrono::steady_clock::now();
    s->put(key_of(2), "young", unix_ms_now());
    auto r = get(*s, key_of(2));
    if (std::chrono::steady_clock::now() - put_at < 40ms) {  // else the machine stalled
        EXPECT_EQ(r.state, status::hit);
    }
    std::this_thread::sleep_for(70ms);
    EXPECT_EQ(get(*s, key_of(2)).state, status::miss);
    auto st = s->stats();
    EXPECT_EQ(st.entries, 0u);
    EXPECT_EQ(st.bytes, 0u);
}

TYPED_TEST(StoreConformance, EntriesExpireTheTtlAfterTheirCreation) {
    auto s = this->open(ttl_limit(200ms));
    s->put(key_of(1), "v", unix_ms_now());
    EXPECT_TRUE(is_hit(*s, key_of(1), "v"));
    EXPECT_EQ(s->stats().entries, 1u);
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(is_miss(*s, key_of(1)));
    // The miss dropped it.
    EXPECT_EQ(s->stats().entries, 0u);
    EXPECT_EQ(s->stats().bytes, 0u);

    // Created longer ago than the TTL: never a hit. Created 100 ms ago: 100 ms left.
    s->put(key_of(2), "v", unix_ms_now() - 1000);
    EXPECT_TRUE(is_miss(*s, key_of(2)));
    s->put(key_of(3), "v", unix_ms_now() - 100);
    EXPECT_TRUE(is_hit(*s, key_of(3), "v"));
    std::this_thread::sleep_for(150ms);
    EXPECT_TRUE(is_miss(*s, key_of(3)));
}

TYPED_TEST(StoreConformance, NoTtlMeansNoExpiry) {
    auto s = this->open();
    s->put(key_of(1), "ancient", 0);
    EXPECT_TRUE(is_hit(*s, key_of(1), "ancient"));
}

TYPED_TEST(StoreConformance, EvictsLeastRecentlyUsedByEntryCount) {
    {
        auto s = this->open(entries_limit(3));
        for (int i = 1; i <= 3; ++i) {
            s->put(key_of(i), "v" + std::to_string(i), unix_ms_now());
        }
        ASSERT_EQ(get(*s, key_of(1)).state, status::hit);  // 1 is now the most recently used
        s->put(key_of(4), "v4", unix_ms_now());            // evicts 2
        EXPECT_EQ(get(*s, key_of(2)).state, status::miss);
        s->put(key_of(5), "v5", unix_ms_now());  // evicts 3
        EXPECT_EQ(get(*s, key_of(3)).state, status::miss);
        EXPECT_EQ(get(*s, key_of(1)).value, "v1");
        EXPECT_EQ(get(*s, key_of(4)).value, "v4");
        EXPECT_EQ(get(*s, key_of(5)).value, "v5");
        EXPECT_EQ(s->stats().entries, 3u);
        s->clear();
    }
    // The survivors after one eviction.
    auto s = this->open(entries_limit(3));
    s->put(key_of(11), "1", unix_ms_now());
    s->put(key_of(12), "2", unix_ms_now());
    s->put(key_of(13), "3", unix_ms_now());
    EXPECT_TRUE(is_hit(*s, key_of(11), "1"));  // 11 is now more recent than 12 and 13
    s->put(key_of(14), "4", unix_ms_now());
    EXPECT_TRUE(is_miss(*s, key_of(12)));
    EXPECT_TRUE(is_hit(*s, key_of(11), "1"));
    EXPECT_TRUE(is_hit(*s, key_of(13), "3"));
    EXPECT_TRUE(is_hit(*s, key_of(14), "4"));
    EXPECT_EQ(s->stats().entries, 3u);
}

TYPED_TEST(StoreConformance, EvictsLeastRecentlyUsedByBytes) {
    {
        auto s = this->open(bytes_limit(100));
        s->put(key_of(1), std::string(40, 'a'), unix_ms_now());
        s->put(key_of(2), std::string(40, 'b'), unix_ms_now());
        ASSERT_EQ(get(*s, key_of(1)).state, status::hit);
        s->put(key_of(3), std::string(30, 'c'), unix_ms_now());  // 110 bytes: 2 goes
        EXPECT_EQ(get(*s, key_of(2)).state, status::miss);
        EXPECT_EQ(get(*s, key_of(1)).state, status::hit);
        EXPECT_EQ(get(*s, key_of(3)).state, status::hit);
        EXPECT_EQ(s->stats().bytes, 70u);
        s->put(key_of(4), std::string(100, 'd'), unix_ms_now());  // exactly the limit
        auto st = s->stats();
        EXPECT_EQ(st.entries, 1u);  // all else went
        EXPECT_EQ(st.bytes, 100u);
        EXPECT_EQ(get(*s, key_of(4)).value, std::string(100, 'd'));
        s->clear();
    }
    // Without hits in between: the oldest goes first.
    auto s = this->open(bytes_limit(10));
    s->put(key_of(11), "aaaa", unix_ms_now());
    s->put(key_of(12), "bbbb", unix_ms_now());
    s->put(key_of(13), "cccc", unix_ms_now());  // 12 bytes > 10: 11 goes
    EXPECT_TRUE(is_miss(*s, key_of(11)));
    EXPECT_TRUE(is_hit(*s, key_of(12), "bbbb"));
    EXPECT_TRUE(is_hit(*s, key_of(13), "cccc"));
    s->put(key_of(14), std::string(10, 't'), unix_ms_now());  // fits alone: evicts the rest
    EXPECT_TRUE(is_hit(*s, key_of(14), std::string(10, 't')));
    EXPECT_TRUE(is_miss(*s, key_of(12)));
    auto st = s->stats();
    EXPECT_EQ(st.entries, 1u);
    EXPECT_EQ(st.bytes, 10u);
}

TYPED_TEST(StoreConformance, OversizeValueIsNotStored) {
    auto s = this->open(bytes_limit(10));
    s->put(key_of(2), "kept", unix_ms_now());
    s->put(key_of(1), std::string(11, 'x'), unix_ms_now());  // larger than max_bytes
    EXPECT_EQ(get(*s, key_of(1)).state, status::miss);
    EXPECT_EQ(get(*s, key_of(2)).value, "kept");
    auto st = s->stats();
    EXPECT_EQ(st.entries, 1u);
    EXPECT_EQ(st.bytes, 4u);
}

// Values totalling max_bytes - 1 and max_bytes are all kept; one byte more evicts the least
// recently used. Only the values count: the 64-digit keys are not part of the total.
TYPED_TEST(StoreConformance, TotalBytesAtTheBound) {
    auto s = this->open(bytes_limit(30));
    s->put(key_of(1), std::string(10, 'a'), unix_ms_now());
    s->put(key_of(2), std::string(10, 'b'), unix_ms_now());
    s->put(key_of(3), std::string(9, 'c'), unix_ms_now());  // 29 bytes: max - 1
    auto st = s->stats();
    EXPECT_EQ(st.entries, 3u);
    EXPECT_EQ(st.bytes, 29u);
    ASSERT_TRUE(is_hit(*s, key_of(1), std::string(10, 'a')));  // 2 is now the LRU
    s->put(key_of(4), "d", unix_ms_now());                     // 30 bytes: exactly max
    st = s->stats();
    EXPECT_EQ(st.entries, 4u);
    EXPECT_EQ(st.bytes, 30u);
    EXPECT_TRUE(is_hit(*s, key_of(2), std::string(10, 'b')));  // 3 is now the LRU
    s->put(key_of(5), "e", unix_ms_now());                     // 31 bytes: max + 1, 3 goes
    EXPECT_TRUE(is_miss(*s, key_of(3)));
    EXPECT_TRUE(is_hit(*s, key_of(1), std::string(10, 'a')));
    EXPECT_TRUE(is_hit(*s, key_of(2), std::string(10, 'b')));
    EXPECT_TRUE(is_hit(*s, key_of(4), "d"));
    EXPECT_TRUE(is_hit(*s, key_of(5), "e"));
    st = s->stats();
    EXPECT_EQ(st.entries, 4u);
    EXPECT_EQ(st.bytes, 22u);
}

// max_entries N: N - 1 and N entries are kept, entry N + 1 evicts the least recently used,
// which a get makes the most recently used.
TYPED_TEST(StoreConformance, EntryCountAtTheBound) {
    auto s = this->open(entries_limit(5));
    for (int i = 1; i <= 4; ++i) {
        s->put(key_of(i), "v" + std::to_string(i), unix_ms_now());
    }
    EXPECT_EQ(s->stats().entries, 4u);  // N - 1
    s->put(key_of(5), "v5", unix_ms_now());
    EXPECT_EQ(s->stats().entries, 5u);  // N
    for (int i = 1; i <= 5; ++i) {
        // In this order: 1 is the least recently used again afterwards.
        EXPECT_TRUE(is_hit(*s, key_of(i), "v" + std::to_string(i))) << i;
    }
    ASSERT_TRUE(is_hit(*s, key_of(1), "v1"));  // now 2 is the least recently used
    s->put(key_of(6), "v6", unix_ms_now());    // N + 1
    EXPECT_EQ(s->stats().entries, 5u);
    EXPECT_TRUE(is_miss(*s, key_of(2)));
    for (int i : {1, 3, 4, 5, 6}) {
        EXPECT_TRUE(is_hit(*s, key_of(i), "v" + std::to_string(i))) << i;
    }
    s->put(key_of(3), "v3 again", unix_ms_now());  // a replacement is not a new entry
    EXPECT_EQ(s->stats().entries, 5u);
    EXPECT_TRUE(is_hit(*s, key_of(4), "v4"));
}

// A value of exactly max_bytes is stored, replacing what the key held and evicting all else.
TYPED_TEST(StoreConformance, ValueOfExactlyMaxBytesIsStored) {
    auto s = this->open(bytes_limit(10));
    s->put(key_of(1), "old", unix_ms_now());
    s->put(key_of(2), "other", unix_ms_now());
    s->put(key_of(1), std::string(10, 'n'), unix_ms_now());
    EXPECT_TRUE(is_hit(*s, key_of(1), std::string(10, 'n')));
    EXPECT_TRUE(is_miss(*s, key_of(2)));
    auto st = s->stats();
    EXPECT_EQ(st.entries, 1u);
    EXPECT_EQ(st.bytes, 10u);
}

TYPED_TEST(StoreConformance, ClearAndStats) {
    auto s = this->open();
    auto st = s->stats();
    EXPECT_EQ(st.entries, 0u);
    EXPECT_EQ(st.bytes, 0u);
    s->put(key_of(1), "12345", unix_ms_now());
    s->put(key_of(2), "123", unix_ms_now());
    s->put(key_of(3), "", unix_ms_now());  // an entry of no bytes
    st = s->stats();
    EXPECT_EQ(st.entries, 3u);
    EXPECT_EQ(st.bytes, 8u);
    s->clear();
    st = s->stats();
    EXPECT_EQ(st.entries, 0u);
    EXPECT_EQ(st.bytes, 0u);
    EXPECT_EQ(get(*s, key_of(1)).state, status::miss);
    s->put(key_of(1), "again", unix_ms_now());  // usable after clear
    EXPECT_EQ(get(*s, key_of(1)).value, "again");
    EXPECT_EQ(s->stats().entries, 1u);
    s->close();
}

TYPED_TEST(StoreConformance, CallbackMayPutToTheStore) {
    auto s = this->open();
    s->put(key_of(1), "v", unix_ms_now());
    auto called = std::make_shared<std::promise<status>>();
    auto result = called->get_future();
    store* raw = s.get();
    s->async_get(key_of(1), [raw, called](get_result r) {
        raw->put(key_of(2), "from callback", unix_ms_now());
        called->set_value(r.state);
    });
    ASSERT_EQ(result.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(result.get(), status::hit);
    // A put from the store's own thread need not be ordered before a get from this one (the
    // redis store's io_context runs it after the handler): wait for it, boundedly.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!is_hit(*s, key_of(2), "from callback") && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(get(*s, key_of(2)).value, "from callback");
}

TYPED_TEST(StoreConformance, ConcurrentGetsAndPuts) {
    auto s = this->open(entries_limit(150));
    constexpr int threads = 4;
    constexpr int per_thread = TypeParam::concurrent_rounds;
    std::atomic<int> bad{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                int n = (t * per_thread + i) % 200;
                s->put(key_of(n), "value " + std::to_string(n), unix_ms_now());
                int other = (n * 7) % 200;
                get_result r = get(*s, key_of(other));
                // Whatever is found must be the value for that key.
                if (r.state == status::unavailable ||
                    (r.state == status::hit && r.value != "value " + std::to_string(other))) {
                    ++bad;
                }
            }
        });
    }
    for (auto& th : pool) {
        th.join();
    }
    EXPECT_EQ(bad.load(), 0);
    auto st = s->stats();
    EXPECT_EQ(st.entries, 150u);
    std::uint64_t bytes = 0;
    int hits = 0;
    for (int n = 0; n < 200; ++n) {
        auto r = get(*s, key_of(n));
        if (r.state == status::hit) {
            ++hits;
            bytes += r.value.size();
            EXPECT_EQ(r.value, "value " + std::to_string(n));
        }
    }
    EXPECT_EQ(hits, 150);
    EXPECT_EQ(st.bytes, bytes);
}

TYPED_TEST(StoreConformance, ConcurrentGetsFromManyThreadsAllComplete) {
    auto s = this->open();
    for (int i = 0; i < 10; ++i) {
        s->put(key_of(i), "v" + std::to_string(i), unix_ms_now());
    }
    get(*s, key_of(0));  // the puts are done
    constexpr int kThreads = 8;
    constexpr int kPerThread = 250;
    std::atomic<int> hits{0}, misses{0}, wrong{0}, done{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kPerThread; ++i) {
                const int n = (t * kPerThread + i) % 20;  // 0..9 exist, 10..19 do not
                s->async_get(key_of(n), [&, n](get_result r) {
                    if (r.state == status::hit && r.value == "v" + std::to_string(n) && n < 10) {
                        ++hits;
                    } else if (r.state == status::miss && n >= 10) {
                        ++misses;
                    } else {
                        ++wrong;
                    }
                    ++done;
                });
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (done < kThreads * kPerThread && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(done, kThreads * kPerThread);
    EXPECT_EQ(hits, kThreads * kPerThread / 2);
    EXPECT_EQ(misses, kThreads * kPerThread / 2);
    EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace llm_proxy::cache

#include "llm_proxy/cache/memory_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace llm_proxy::cache {
namespace {

using namespace std::chrono_literals;
using status = get_result::status;

// The memory store completes lookups before async_get returns; anything else is a bug.
get_result get(store& s, const std::string& key) {
    bool called = false;
    get_result out;
    out.state = status::unavailable;
    out.error = "done was not called before async_get returned";
    s.async_get(key, [&](get_result r) {
        EXPECT_FALSE(called) << "done called twice";
        called = true;
        out = std::move(r);
    });
    return out;
}

std::string key_of(int n) {
    std::string k = std::to_string(n);
    return std::string(64 - k.size(), '0') + k;  // the shape of a real key: 64 hex digits
}

std::unique_ptr<store> make(store_limits limits = {}) {
    return make_memory_store(limits);
}

TEST(memory_store, engine_name) {
    EXPECT_EQ(make()->engine(), "memory");
}

TEST(memory_store, miss_on_empty_store) {
    auto s = make();
    auto r = get(*s, key_of(1));
    EXPECT_EQ(r.state, status::miss);
    EXPECT_TRUE(r.value.empty());
}

TEST(memory_store, put_then_hit_returns_identical_bytes) {
    auto s = make();
    std::string binary("a\0b\0\xff\x01z", 7);
    s->put(key_of(1), binary, unix_ms_now());
    s->put(key_of(2), "", unix_ms_now());
    auto r = get(*s, key_of(1));
    ASSERT_EQ(r.state, status::hit);
    EXPECT_EQ(r.value, binary);
    EXPECT_EQ(r.value.size(), 7u);
    auto empty = get(*s, key_of(2));
    EXPECT_EQ(empty.state, status::hit);
    EXPECT_EQ(empty.value, "");
    EXPECT_EQ(get(*s, key_of(3)).state, status::miss);
}

TEST(memory_store, put_replaces_value) {
    auto s = make();
    s->put(key_of(1), "first value", unix_ms_now());
    s->put(key_of(1), "second", unix_ms_now());
    EXPECT_EQ(get(*s, key_of(1)).value, "second");
    auto st = s->stats();
    EXPECT_EQ(st.entries, 1u);
    EXPECT_EQ(st.bytes, 6u);
}

TEST(memory_store, expired_entry_is_a_miss_and_is_removed) {
    auto s = make({.ttl = 50ms});
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
    EXPECT_EQ(s->stats().entries, 0u);
    EXPECT_EQ(s->stats().bytes, 0u);
}

TEST(memory_store, no_ttl_means_no_expiry) {
    auto s = make();
    s->put(key_of(1), "ancient", 0);
    EXPECT_EQ(get(*s, key_of(1)).state, status::hit);
}

TEST(memory_store, evicts_least_recently_used_by_entry_count) {
    auto s = make({.max_entries = 3});
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
}

TEST(memory_store, evicts_least_recently_used_by_bytes) {
    auto s = make({.max_bytes = 100});
    s->put(key_of(1), std::string(40, 'a'), unix_ms_now());
    s->put(key_of(2), std::string(40, 'b'), unix_ms_now());
    ASSERT_EQ(get(*s, key_of(1)).state, status::hit);
    s->put(key_of(3), std::string(30, 'c'), unix_ms_now());  // 110 bytes: 2 goes
    EXPECT_EQ(get(*s, key_of(2)).state, status::miss);
    EXPECT_EQ(get(*s, key_of(1)).state, status::hit);
    EXPECT_EQ(get(*s, key_of(3)).state, status::hit);
    EXPECT_EQ(s->stats().bytes, 70u);
    s->put(key_of(4), std::string(100, 'd'), unix_ms_now());  // exactly the limit: all else goes
    EXPECT_EQ(s->stats().entries, 1u);
    EXPECT_EQ(s->stats().bytes, 100u);
    EXPECT_EQ(get(*s, key_of(4)).value, std::string(100, 'd'));
}

TEST(memory_store, oversize_value_is_not_stored_and_drops_the_old_one) {
    auto s = make({.max_bytes = 10});
    s->put(key_of(1), "small", unix_ms_now());
    s->put(key_of(2), "kept", unix_ms_now());
    s->put(key_of(1), std::string(11, 'x'), unix_ms_now());
    EXPECT_EQ(get(*s, key_of(1)).state, status::miss);
    EXPECT_EQ(get(*s, key_of(2)).value, "kept");
    EXPECT_EQ(s->stats().entries, 1u);
    EXPECT_EQ(s->stats().bytes, 4u);
}

TEST(memory_store, clear_and_stats) {
    auto s = make();
    EXPECT_EQ(s->stats().entries, 0u);
    s->put(key_of(1), "12345", unix_ms_now());
    s->put(key_of(2), "123", unix_ms_now());
    auto st = s->stats();
    EXPECT_EQ(st.entries, 2u);
    EXPECT_EQ(st.bytes, 8u);
    s->clear();
    EXPECT_EQ(s->stats().entries, 0u);
    EXPECT_EQ(s->stats().bytes, 0u);
    EXPECT_EQ(get(*s, key_of(1)).state, status::miss);
    s->put(key_of(1), "again", unix_ms_now());  // usable after clear
    EXPECT_EQ(get(*s, key_of(1)).value, "again");
    s->close();
}

TEST(memory_store, callback_may_use_the_store) {
    auto s = make();
    s->put(key_of(1), "v", unix_ms_now());
    bool done = false;
    s->async_get(key_of(1), [&](get_result r) {
        EXPECT_EQ(r.state, status::hit);
        s->put(key_of(2), "from callback", unix_ms_now());  // would deadlock under the lock
        done = true;
    });
    EXPECT_TRUE(done);
    EXPECT_EQ(get(*s, key_of(2)).value, "from callback");
}

TEST(memory_store, concurrent_gets_and_puts) {
    auto s = make({.max_entries = 150});
    constexpr int threads = 4;
    constexpr int per_thread = 300;
    std::atomic<int> bad{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                int n = (t * per_thread + i) % 200;
                s->put(key_of(n), "value " + std::to_string(n), unix_ms_now());
                get_result r = get(*s, key_of((n * 7) % 200));
                // Whatever is found must be the value for that key.
                if (r.state == status::unavailable ||
                    (r.state == status::hit &&
                     r.value != "value " + std::to_string((n * 7) % 200))) {
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

}  // namespace
}  // namespace llm_proxy::cache

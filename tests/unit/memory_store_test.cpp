// What only the memory store does; the store contract is checked for every engine in
// cache_store_conformance_test.cpp.

#include "llm_proxy/cache/memory_store.hpp"

#include <gtest/gtest.h>

#include <string>

namespace llm_proxy::cache {
namespace {

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

TEST(memory_store, lookups_complete_before_async_get_returns) {
    auto s = make_memory_store({});
    EXPECT_EQ(get(*s, key_of(1)).state, status::miss);
    s->put(key_of(1), "v", unix_ms_now());
    EXPECT_EQ(get(*s, key_of(1)).value, "v");
}

TEST(memory_store, callback_may_use_the_store) {
    auto s = make_memory_store({});
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

// Unlike the redis store, which leaves the old value in place.
TEST(memory_store, oversize_value_is_not_stored_and_drops_the_old_one) {
    store_limits limits;
    limits.max_bytes = 10;
    auto s = make_memory_store(limits);
    s->put(key_of(1), "small", unix_ms_now());
    s->put(key_of(2), "kept", unix_ms_now());
    s->put(key_of(1), std::string(11, 'x'), unix_ms_now());
    EXPECT_EQ(get(*s, key_of(1)).state, status::miss);
    EXPECT_EQ(get(*s, key_of(2)).value, "kept");
    EXPECT_EQ(s->stats().entries, 1u);
    EXPECT_EQ(s->stats().bytes, 4u);
}

}  // namespace
}  // namespace llm_proxy::cache

// The response cache addon on synthetic flows (tests/support/addon_test_kit): where its work
// runs, and MISS then HIT without sockets.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "llm_proxy/addons/response_cache.hpp"
#include "llm_proxy/cache/memory_store.hpp"
#include "support/addon_test_kit.hpp"

using namespace llm_proxy;

namespace {

std::string body_of(std::size_t n) {
    std::string s(n, 'x');
    for (std::size_t i = 0; i < s.size(); i += 13) {
        s[i] = static_cast<char>('a' + i % 26);
    }
    return s;
}

struct cache_fixture {
    std::shared_ptr<addons::response_cache> cache = std::make_shared<addons::response_cache>(
        cache::make_memory_store(cache::store_limits{}), addons::response_cache_options{});
    addon_chain chain;
    cache_fixture() { chain.add(cache); }
    ~cache_fixture() { cache->close(); }

    test::simulated post(const std::string& body, const std::string& answer) {
        auto f = test::make_flow("POST", "https://api.openai.com/echo",
                                 {{"Content-Type", "application/json"}}, body);
        return test::simulate(chain, f, {200, "OK", 11, {{"Content-Type", "application/json"}}},
                              {answer});
    }

    // Waits (bounded) until the cache's work thread has done `n` pieces of work.
    bool wait_for_work(std::uint64_t n) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (cache->off_loop_work() < n && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return cache->off_loop_work() >= n;
    }
};

}  // namespace

// Hashing the key of a large request and decoding/storing its large answer run on the
// cache's own thread, never on the thread running the hooks (an event loop in the proxy).
TEST(ResponseCache, LargeBodiesAreHashedAndStoredOnTheCachesOwnThread) {
    cache_fixture c;
    auto small = c.post(body_of(1000), body_of(1000));
    EXPECT_TRUE(small.upstream_called);
    // A small body is hashed and stored in place: nothing went to the work thread.
    EXPECT_EQ(c.cache->off_loop_work(), 0u);

    const std::string big = body_of(300 * 1024);
    const std::string answer = body_of(200 * 1024);
    auto first = c.post(big, answer);
    EXPECT_TRUE(first.upstream_called);
    ASSERT_TRUE(c.wait_for_work(2)) << "key hash and store of the large flow";
    EXPECT_NE(c.cache->work_thread(), std::this_thread::get_id());
    EXPECT_NE(c.cache->work_thread(), std::thread::id{});

    auto second = c.post(big, "not asked");
    EXPECT_TRUE(second.answered_locally);
    EXPECT_FALSE(second.upstream_called);
    EXPECT_EQ(second.client_body, answer);
    EXPECT_GE(c.cache->off_loop_work(), 3u) << "the second key was hashed off the loop too";
}

TEST(ResponseCache, MissThenHitOnSyntheticFlows) {
    cache_fixture c;
    auto miss = c.post(R"({"q":1})", R"({"a":1})");
    EXPECT_TRUE(miss.upstream_called);
    auto hit = c.post(R"({"q":1})", "unused");
    EXPECT_TRUE(hit.answered_locally);
    EXPECT_EQ(hit.client_body, R"({"a":1})");
    auto other = c.post(R"({"q":2})", R"({"a":2})");
    EXPECT_TRUE(other.upstream_called);
}

// Coalescing of concurrent identical misses.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>

#include "llm_proxy/cache/inflight.hpp"

namespace llm_proxy::cache {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}
}  // namespace

TEST(Inflight, WaitersOnOtherThreadsGetTheLeadersEntry) {
    auto table = std::make_shared<inflight_table>(10s);
    asio::io_context leader_ctx;
    asio::io_context waiter_ctx;
    std::atomic<int> answered{0};
    std::atomic<bool> led{false};
    asio::co_spawn(
        leader_ctx,
        [&]() -> asio::awaitable<void> {
            auto j = co_await table->join("k");
            EXPECT_TRUE(j.leader);
            led = true;
            co_await sleep_for(100ms);  // the upstream request
            auto e = std::make_shared<entry>();
            e->status = 200;
            e->body = "answer";
            j.leader->publish(e);
        },
        asio::detached);
    std::thread leader([&] { leader_ctx.run(); });
    while (!led) {
        std::this_thread::sleep_for(1ms);
    }
    for (int i = 0; i < 5; ++i) {
        asio::co_spawn(
            waiter_ctx,
            [&]() -> asio::awaitable<void> {
                auto j = co_await table->join("k");
                EXPECT_FALSE(j.leader);
                if (j.answer && j.answer->body == "answer") {
                    ++answered;
                }
            },
            asio::detached);
    }
    waiter_ctx.run_for(5s);
    leader.join();
    EXPECT_EQ(answered, 5);
    EXPECT_EQ(table->size(), 0u);
}

TEST(Inflight, DroppedLeadReleasesWaitersEmptyHanded) {
    auto table = std::make_shared<inflight_table>(10s);
    asio::io_context ctx;
    int released = 0;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto j = co_await table->join("k");
            co_await sleep_for(50ms);
            // The leader fails: its lead goes away without a publish.
        },
        asio::detached);
    for (int i = 0; i < 3; ++i) {
        asio::co_spawn(
            ctx,
            [&]() -> asio::awaitable<void> {
                auto j = co_await table->join("k");
                if (!j.leader && !j.answer) {
                    ++released;
                }
            },
            asio::detached);
    }
    ctx.run_for(5s);
    EXPECT_EQ(released, 3);
    // The key is free again: the next flow leads.
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto j = co_await table->join("k");
            EXPECT_TRUE(j.leader);
        },
        asio::detached);
    ctx.restart();
    ctx.run_for(1s);
}

TEST(Inflight, WaitersGiveUpAfterTheLimitAndKeysAreIndependent) {
    auto table = std::make_shared<inflight_table>(50ms);
    asio::io_context ctx;
    std::unique_ptr<lead> held;
    bool other_led = false;
    bool gave_up = false;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto j = co_await table->join("slow");
            held = std::move(j.leader);
            auto o = co_await table->join("other");
            other_led = o.leader != nullptr;
            auto w = co_await table->join("slow");
            gave_up = !w.leader && !w.answer;
            held->publish(nullptr);  // a late publish finds nobody waiting
        },
        asio::detached);
    auto start = std::chrono::steady_clock::now();
    ctx.run_for(5s);
    EXPECT_TRUE(other_led);
    EXPECT_TRUE(gave_up);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(Inflight, CloseStopsCoalescing) {
    auto table = std::make_shared<inflight_table>(10s);
    asio::io_context ctx;
    int leaders = 0;
    table->close();
    for (int i = 0; i < 2; ++i) {
        asio::co_spawn(
            ctx,
            [&]() -> asio::awaitable<void> {
                auto j = co_await table->join("k");
                leaders += j.leader ? 1 : 0;
                EXPECT_FALSE(j.answer);
            },
            asio::detached);
    }
    ctx.run_for(1s);
    EXPECT_EQ(leaders, 0);
    EXPECT_EQ(table->size(), 0u);
}

}  // namespace llm_proxy::cache

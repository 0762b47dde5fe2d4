// The engine hands a finished upstream connection back to its pool, which may free it at once
// (a full pool, or one closed for shutdown). Found by fuzz/fuzz_engine_client: the response's
// body source, which reads the connection's buffer, outlived that hand-back and touched the
// freed buffer when it went (a heap-use-after-free under AddressSanitizer, the CI's sanitizer
// run; silent memory corruption without it).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/tls/contexts.hpp"
#include "proxy/client_session.hpp"
#include "proxy/upstream.hpp"
#include "proxy/worker.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Answers every request on a connection with a two-byte body, keeping the connection open.
asio::awaitable<void> serve(tcp::socket s, int& served) {
    beast::flat_buffer buffer;
    for (;;) {
        http::request<http::string_body> req;
        auto [ec, n] = co_await http::async_read(s, buffer, req, use_tuple);
        if (ec) {
            break;
        }
        std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        auto [wec, wn] = co_await asio::async_write(s, asio::buffer(response), use_tuple);
        if (wec) {
            break;
        }
        ++served;
    }
}

void run_two_requests(llm_proxy::proxy_config config, bool close_pool_first) {
    using namespace llm_proxy;
    proxy::shared_state shared;
    shared.config = std::move(config);
    shared.chain = std::make_shared<addon_chain>();
    shared.upstream_tls = tls::make_upstream_context(true, std::nullopt);
    proxy::worker w(shared);
    if (close_pool_first) {
        w.pool.close_all();  // as at shutdown: flows still running release into a closed pool
    }
    const tcp::endpoint loopback(asio::ip::make_address("127.0.0.1"), 0);
    tcp::acceptor upstream(w.ioc, loopback);
    tcp::acceptor proxy_listener(w.ioc, loopback);
    shared.config.connect_to.push_back(connect_to_rule{
        .host = "",
        .port = 0,
        .connect_host = "127.0.0.1",
        .connect_port = upstream.local_endpoint().port(),
    });

    int served = 0;
    int upstream_connections = 0;
    asio::co_spawn(
        w.ioc,
        [&]() -> asio::awaitable<void> {
            for (;;) {
                auto [ec, s] = co_await upstream.async_accept(use_tuple);
                if (ec) {
                    co_return;
                }
                ++upstream_connections;
                asio::co_spawn(w.ioc, serve(std::move(s), served), asio::detached);
            }
        },
        asio::detached);

    tcp::socket client(w.ioc);
    client.connect(proxy_listener.local_endpoint());
    proxy::client_session::start(w, proxy_listener.accept());

    const std::string requests =
        "GET http://upstream.test/a HTTP/1.1\r\nHost: upstream.test\r\n\r\n"
        "GET http://upstream.test/b HTTP/1.1\r\nHost: upstream.test\r\n\r\n";
    std::string received;
    bool done = false;
    asio::co_spawn(
        w.ioc,
        [&]() -> asio::awaitable<void> {
            co_await asio::async_write(client, asio::buffer(requests), use_tuple);
            beast::error_code ec;
            client.shutdown(tcp::socket::shutdown_send, ec);
            char buf[4096];
            for (;;) {
                auto [rec, n] = co_await client.async_read_some(asio::buffer(buf), use_tuple);
                if (rec) {
                    break;
                }
                received.append(buf, n);
            }
            done = true;
        },
        asio::detached);

    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!(done && w.session_count.load() == 0) && std::chrono::steady_clock::now() < give_up) {
        w.ioc.run_one_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(done);
    EXPECT_EQ(served, 2);
    // Both answers arrived; with no connection kept, each request had its own.
    EXPECT_NE(received.find("HTTP/1.1 200 OK"), std::string::npos);
    EXPECT_NE(received.find("HTTP/1.1 200 OK", received.find("HTTP/1.1 200 OK") + 1),
              std::string::npos);
    EXPECT_EQ(upstream_connections, 2);
    beast::error_code ec;
    upstream.close(ec);
    w.pool.close_all();
    w.ioc.run_for(std::chrono::milliseconds(50));
}

}  // namespace

TEST(UpstreamPoolRelease, ResponseSourceIsGoneBeforeAPoolWithoutRoomFreesTheConnection) {
    llm_proxy::proxy_config config;
    config.max_idle_upstream = 0;  // every released connection is closed and freed at once
    run_two_requests(config, false);
}

TEST(UpstreamPoolRelease, ResponseSourceIsGoneBeforeAClosedPoolFreesTheConnection) {
    run_two_requests(llm_proxy::proxy_config{}, true);
}

// --- The idle pool's bounds: per host (max_idle_upstream_per_host) and per worker
// (max_idle_upstream), each at N-1, N and N+1 released connections ---

namespace {

using llm_proxy::proxy::upstream_connection;
using llm_proxy::proxy::upstream_pool;
using llm_proxy::proxy::upstream_target;

// Connections handed to an upstream_pool directly, each a real loopback TCP connection whose
// far end the test keeps: a connection the pool closes shows there as EOF. Any new connection
// the pool opens (no idle one to reuse) arrives at the same acceptor (--connect-to), so a
// reuse that did not happen is seen.
class IdlePoolBounds : public testing::Test {
  protected:
    IdlePoolBounds() {
        config.connect_to.push_back(llm_proxy::connect_to_rule{
            .host = "",
            .port = 0,
            .connect_host = "127.0.0.1",
            .connect_port = acceptor.local_endpoint().port(),
        });
    }
    ~IdlePoolBounds() override {
        if (pool) {
            pool->close_all();
            ioc.restart();
            ioc.run_for(std::chrono::milliseconds(20));  // lets the sweep loop end
        }
    }

    void make_pool() { pool = std::make_unique<upstream_pool>(ioc, config, tls); }

    static upstream_target target(const std::string& host) {
        return upstream_target{.scheme = "http", .host = host, .port = 80, .address = ""};
    }

    // Opens connection number peers.size() to `host`; its far end is peers[that number].
    std::unique_ptr<upstream_connection> open(const std::string& host) {
        acceptor.non_blocking(false);
        tcp::socket c(ioc);
        c.connect(acceptor.local_endpoint());
        peers.push_back(acceptor.accept());
        ports.push_back(c.local_endpoint().port());
        auto conn = std::make_unique<upstream_connection>(beast::tcp_stream(std::move(c)));
        conn->key = target(host).key();
        return conn;
    }

    // Opens a connection to `host` and releases it into the pool; returns its number.
    std::size_t release_new(const std::string& host) {
        auto conn = open(host);
        pool->release(std::move(conn));
        return peers.size() - 1;
    }

    // Whether the far end of connection i has seen EOF: waits up to 5 s when `wait`, else
    // looks once.
    bool closed(std::size_t i, bool wait) {
        pollfd p{.fd = peers[i].native_handle(), .events = POLLIN, .revents = 0};
        if (::poll(&p, 1, wait ? 5000 : 0) <= 0) {
            return false;
        }
        char b;
        return ::recv(p.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
    }

    // Expects exactly the connections in `closed_ones` closed: waits for each of those
    // (their close came after any wrong one), then looks at the others once.
    void expect_closed_exactly(const std::set<std::size_t>& closed_ones) {
        for (auto i : closed_ones) {
            EXPECT_TRUE(closed(i, true)) << "connection " << i << " should have been closed";
        }
        for (std::size_t i = 0; i < peers.size(); ++i) {
            if (!closed_ones.contains(i)) {
                EXPECT_FALSE(closed(i, false)) << "connection " << i << " should be open";
            }
        }
    }

    // acquire(target(host)), run to completion (bounded).
    std::unique_ptr<upstream_connection> acquire(const std::string& host) {
        std::unique_ptr<upstream_connection> out;
        bool done = false;
        ioc.restart();
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                auto r = co_await pool->acquire(target(host));
                out = std::move(r.connection);
                done = true;
            },
            asio::detached);
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!done && std::chrono::steady_clock::now() < give_up) {
            ioc.run_one_for(std::chrono::milliseconds(100));
        }
        EXPECT_TRUE(done) << "acquire did not finish";
        return out;
    }

    // The number of the released connection `c` is (by its local port), or SIZE_MAX.
    std::size_t number_of(upstream_connection& c) {
        auto port = c.stream.tcp().socket().local_endpoint().port();
        for (std::size_t i = 0; i < ports.size(); ++i) {
            if (ports[i] == port) {
                return i;
            }
        }
        return SIZE_MAX;
    }

    // New connections the pool opened (instead of reusing one) since the last call.
    int new_connections() {
        acceptor.non_blocking(true);
        int n = 0;
        for (;;) {
            beast::error_code ec;
            tcp::socket s = acceptor.accept(ec);
            if (ec) {
                break;
            }
            ++n;
        }
        return n;
    }

    asio::io_context ioc;
    llm_proxy::proxy_config config;
    asio::ssl::context tls{asio::ssl::context::tls_client};
    tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    std::vector<tcp::socket> peers;
    std::vector<std::uint16_t> ports;
    std::unique_ptr<upstream_pool> pool;
};

TEST_F(IdlePoolBounds, PerHostListKeeps16AndClosesThe17th) {
    ASSERT_EQ(config.max_idle_upstream_per_host, 16u);
    ASSERT_GT(config.max_idle_upstream, 17u);  // only the per-host bound is reached
    make_pool();
    for (int i = 0; i < 15; ++i) {
        release_new("a.test");
    }
    EXPECT_EQ(pool->idle_count(), 15u);  // N-1
    release_new("a.test");
    EXPECT_EQ(pool->idle_count(), 16u);  // N
    const std::size_t seventeenth = release_new("a.test");
    EXPECT_EQ(pool->idle_count(), 16u);  // N+1: the list was full
    expect_closed_exactly({seventeenth});
    // Another host has a list of its own.
    release_new("b.test");
    EXPECT_EQ(pool->idle_count(), 17u);

    // The 16 kept are reused, each once, with no new connection to the upstream...
    std::set<std::size_t> reused;
    std::vector<std::unique_ptr<upstream_connection>> held;
    for (int i = 0; i < 16; ++i) {
        auto c = acquire("a.test");
        ASSERT_TRUE(c);
        EXPECT_TRUE(c->reused);
        std::size_t n = number_of(*c);
        EXPECT_LT(n, 16u) << "not one of the 16 kept";
        reused.insert(n);
        held.push_back(std::move(c));
    }
    EXPECT_EQ(reused.size(), 16u);
    EXPECT_EQ(new_connections(), 0);
    // ...and a 17th request to the host needs a new one.
    auto c = acquire("a.test");
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->reused);
    EXPECT_EQ(number_of(*c), SIZE_MAX);
    EXPECT_EQ(new_connections(), 1);
    EXPECT_EQ(pool->idle_count(), 1u);  // b.test's
}

TEST_F(IdlePoolBounds, PerWorkerTotalClosesTheConnectionIdleLongestOverAllHosts) {
    config.max_idle_upstream = 3;
    make_pool();
    const std::size_t a1 = release_new("a.test");
    const std::size_t b1 = release_new("b.test");
    EXPECT_EQ(pool->idle_count(), 2u);  // N-1
    const std::size_t a2 = release_new("a.test");
    EXPECT_EQ(pool->idle_count(), 3u);  // N
    expect_closed_exactly({});
    const std::size_t c1 = release_new("c.test");
    EXPECT_EQ(pool->idle_count(), 3u);  // N+1: a1, idle the longest, made room
    expect_closed_exactly({a1});
    const std::size_t d1 = release_new("d.test");
    EXPECT_EQ(pool->idle_count(), 3u);  // b1 now the longest idle (not a2, a.test's newer one)
    expect_closed_exactly({a1, b1});

    // The three kept are the ones reused, with no new connection to the upstream.
    const std::pair<const char*, std::size_t> kept[] = {
        {"a.test", a2}, {"c.test", c1}, {"d.test", d1}};
    for (auto [host, expected] : kept) {
        auto c = acquire(host);
        ASSERT_TRUE(c) << host;
        EXPECT_TRUE(c->reused) << host;
        EXPECT_EQ(number_of(*c), expected) << host;
    }
    EXPECT_EQ(new_connections(), 0);
    EXPECT_EQ(pool->idle_count(), 0u);
    // b.test's only one was closed: its request gets a new connection.
    auto b = acquire("b.test");
    ASSERT_TRUE(b);
    EXPECT_FALSE(b->reused);
    EXPECT_EQ(new_connections(), 1);
}

TEST_F(IdlePoolBounds, AFullHostListClosesTheNewcomerWithoutEvictingWhenTheTotalIsFullToo) {
    config.max_idle_upstream = 16;  // the worker total equals the per-host bound
    make_pool();
    for (int i = 0; i < 16; ++i) {
        release_new("a.test");
    }
    EXPECT_EQ(pool->idle_count(), 16u);
    const std::size_t extra = release_new("a.test");  // its host's list is full: it goes
    EXPECT_EQ(pool->idle_count(), 16u);
    expect_closed_exactly({extra});
    release_new("b.test");  // the total is full: a.test's first one goes
    EXPECT_EQ(pool->idle_count(), 16u);
    expect_closed_exactly({0, extra});
}

TEST_F(IdlePoolBounds, ATotalOfZeroKeepsNone) {
    config.max_idle_upstream = 0;
    make_pool();
    const std::size_t first = release_new("a.test");
    EXPECT_EQ(pool->idle_count(), 0u);
    expect_closed_exactly({first});
    EXPECT_EQ(pool->idle_count_published(), 0u);
    auto c = acquire("a.test");
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->reused);
    EXPECT_EQ(new_connections(), 1);
}

TEST_F(IdlePoolBounds, ATotalOfOneKeepsTheNewest) {
    config.max_idle_upstream = 1;
    make_pool();
    const std::size_t a1 = release_new("a.test");
    EXPECT_EQ(pool->idle_count(), 1u);
    expect_closed_exactly({});
    const std::size_t b1 = release_new("b.test");
    EXPECT_EQ(pool->idle_count(), 1u);
    expect_closed_exactly({a1});
    auto c = acquire("b.test");
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->reused);
    EXPECT_EQ(number_of(*c), b1);
    EXPECT_EQ(new_connections(), 0);
}

}  // namespace

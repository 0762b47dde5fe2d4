// The engine hands a finished upstream connection back to its pool, which may free it at once
// (a full pool, or one closed for shutdown). Found by fuzz/fuzz_engine_client: the response's
// body source, which reads the connection's buffer, outlived that hand-back and touched the
// freed buffer when it went (a heap-use-after-free under AddressSanitizer, the CI's sanitizer
// run; silent memory corruption without it).
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/tls/contexts.hpp"
#include "proxy/client_session.hpp"
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

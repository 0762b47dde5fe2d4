#include "llm_proxy/util/side_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "llm_proxy/util/listen.hpp"

namespace llm_proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

side_server::side_server(const asio::ip::address& address, std::uint16_t port,
                         const std::string& what)
    : what_(what) {
    open_listener(acceptor_, tcp::endpoint(address, port), " for " + what);
}

side_server::~side_server() {
    stop();
}

void side_server::start(session s) {
    asio::co_spawn(ioc_, accept_loop(std::move(s)), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
}

asio::awaitable<void> side_server::accept_loop(session s) {
    constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (ec) {
            if (!acceptor_.is_open()) {
                co_return;
            }
            spdlog::debug("{}: accept failed: {}", what_, ec.message());
            continue;
        }
        asio::co_spawn(ioc_, s(std::move(socket)), asio::detached);
    }
}

void side_server::stop() {
    std::call_once(stopped_, [this] {
        asio::post(ioc_, [this] {
            boost::system::error_code ignored;
            acceptor_.close(ignored);
            ioc_.stop();
        });
        if (thread_.joinable()) {
            thread_.join();
        }
    });
}

}  // namespace llm_proxy

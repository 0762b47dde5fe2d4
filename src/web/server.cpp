#include "llm_proxy/web/server.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "api.hpp"
#include "http_guard.hpp"

namespace llm_proxy::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto io_timeout = std::chrono::seconds(30);
constexpr auto poll_interval = std::chrono::milliseconds(200);
constexpr auto heartbeat = std::chrono::seconds(15);
constexpr int max_event_streams = 16;

std::string where(const tcp::endpoint& ep) {
    auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" +
           std::to_string(ep.port());
}

}  // namespace

std::string make_token() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
        throw std::runtime_error("cannot make a random token");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

struct server::impl {
    std::shared_ptr<flow_store> store;
    server_options options;
    std::unique_ptr<http_guard> guard;
    asio::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::thread thread;
    std::once_flag stopped;
    std::atomic<int> streams{0};

    // The event stream: every change after the client's last event id (or ?since=), polled
    // from the store; a close-delimited body. A client too slow to take it times out.
    asio::awaitable<void> events(beast::tcp_stream& stream, const request& req) {
        std::uint64_t seen = 0;
        auto since =
            query_param(std::string_view(req.target().data(), req.target().size()), "since");
        if (auto it = req.find("Last-Event-ID"); it != req.end()) {
            since = std::string(it->value());
        }
        if (since) {
            try {
                seen = std::stoull(*since);
            } catch (const std::exception&) {
                seen = 0;
            }
        }
        std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n: connected\n\n";
        stream.expires_after(io_timeout);
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(head), use_tuple);
        asio::steady_timer timer(ioc);
        auto quiet_since = std::chrono::steady_clock::now();
        while (!ec) {
            std::uint64_t now = 0;
            std::string out;
            for (const auto& e : store->changed_since(seen, now)) {
                out += sse_event(e);
            }
            seen = now;
            auto t = std::chrono::steady_clock::now();
            if (out.empty() && t - quiet_since >= heartbeat) {
                out = ": ping\n\n";
            }
            if (!out.empty()) {
                quiet_since = t;
                stream.expires_after(std::chrono::seconds(10));
                std::tie(ec, n) = co_await asio::async_write(stream, asio::buffer(out), use_tuple);
                if (ec) {
                    break;
                }
            }
            timer.expires_after(poll_interval);
            std::tie(ec) = co_await timer.async_wait(use_tuple);
        }
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        beast::flat_buffer buffer;
        api_context ctx{*store, options.read, options.live};
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(16 * 1024);
            parser.body_limit(16 * 1024);
            stream.expires_after(io_timeout);
            auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
            if (ec) {
                break;
            }
            const auto& req = parser.get();
            bool set_cookie = false;
            auto refusal = guard->check(req, set_cookie);
            if (!refusal && req.method() == http::verb::get && target_path(req) == "/api/events") {
                if (++streams > max_event_streams) {
                    --streams;
                    refusal = json_error(req, http::status::service_unavailable,
                                         "too many event streams");
                } else {
                    co_await events(stream, req);
                    --streams;
                    break;
                }
            }
            auto res = refusal ? std::move(*refusal) : answer(ctx, req);
            if (set_cookie) {
                res.set(http::field::set_cookie, guard->cookie());
            }
            bool keep = res.keep_alive();
            auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
            if (wec || !keep) {
                break;
            }
        }
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.socket().close(ignored);
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
            if (ec) {
                if (!acceptor.is_open()) {
                    co_return;
                }
                spdlog::debug("web: accept failed: {}", ec.message());
                continue;
            }
            asio::co_spawn(ioc, serve(std::move(socket)), asio::detached);
        }
    }
};

server::server(std::shared_ptr<flow_store> store, server_options options)
    : impl_(std::make_unique<impl>()) {
    beast::error_code ec;
    auto address = asio::ip::make_address(options.host, ec);
    if (ec) {
        throw std::invalid_argument("--web: '" + options.host + "' is not an IP address");
    }
    if (!address.is_loopback() && options.token.empty() &&
        !(options.credentials && options.credentials->enabled())) {
        throw std::invalid_argument(
            "--web " + options.host +
            " is not a loopback address: the view shows prompts and answers. Add --web-token "
            "random (or --web-token TOKEN) to require a token, or --proxy-auth credentials");
    }
    impl_->store = std::move(store);
    impl_->options = std::move(options);
    tcp::endpoint ep(address, impl_->options.port);
    auto& a = impl_->acceptor;
    a.open(ep.protocol(), ec);
    if (!ec) {
        a.set_option(asio::socket_base::reuse_address(true), ec);
        a.bind(ep, ec);
    }
    if (!ec) {
        a.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        throw std::runtime_error("cannot listen for the web view on " + where(ep) + ": " +
                                 ec.message());
    }
    impl_->guard = std::make_unique<http_guard>(impl_->options.host, a.local_endpoint().port(),
                                                impl_->options.token, impl_->options.credentials);
    asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

server::~server() {
    stop();
}

tcp::endpoint server::local_endpoint() const {
    return impl_->acceptor.local_endpoint();
}

std::string server::url() const {
    auto url = "http://" + where(local_endpoint()) + "/";
    if (!impl_->options.token.empty()) {
        url += "?token=" + impl_->options.token;
    }
    return url;
}

void server::stop() {
    std::call_once(impl_->stopped, [this] {
        asio::post(impl_->ioc, [this] {
            beast::error_code ignored;
            impl_->acceptor.close(ignored);
            impl_->ioc.stop();
        });
        if (impl_->thread.joinable()) {
            impl_->thread.join();
        }
    });
}

}  // namespace llm_proxy::web

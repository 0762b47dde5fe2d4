#include "llm_proxy/metrics/endpoint.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "llm_proxy/metrics/text_format.hpp"

namespace llm_proxy::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto io_timeout = std::chrono::seconds(30);

http::response<http::string_body> answer(const registry& r,
                                         const http::request<http::string_body>& req) {
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (target != "/metrics") {
        res.result(http::status::not_found);
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = "not found: the metrics are at /metrics\n";
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.result(http::status::method_not_allowed);
        res.set(http::field::allow, "GET, HEAD");
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = "method not allowed\n";
    } else {
        res.result(http::status::ok);
        res.set(http::field::content_type, content_type);
        res.set(http::field::cache_control, "no-store");
        res.body() = r.render();
    }
    res.prepare_payload();
    if (req.method() == http::verb::head) {
        res.body().clear();  // Content-Length stays that of the body left out
    }
    return res;
}

}  // namespace

struct endpoint::impl {
    std::shared_ptr<const registry> reg;
    asio::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::thread thread;
    std::once_flag stopped;

    asio::awaitable<void> serve(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(16 * 1024);
            parser.body_limit(64 * 1024);
            stream.expires_after(io_timeout);
            auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
            if (ec) {
                break;
            }
            const auto& req = parser.get();
            auto res = answer(*reg, req);
            bool keep = res.keep_alive();
            if (req.method() == http::verb::head) {
                http::response_serializer<http::string_body> sr(res);
                sr.split(true);
                auto [wec, wn] = co_await http::async_write_header(stream, sr, use_tuple);
                if (wec) {
                    break;
                }
            } else {
                auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
                if (wec) {
                    break;
                }
            }
            if (!keep) {
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
                spdlog::debug("metrics: accept failed: {}", ec.message());
                continue;
            }
            asio::co_spawn(ioc, serve(std::move(socket)), asio::detached);
        }
    }
};

endpoint::endpoint(std::shared_ptr<const registry> registry, const std::string& host,
                   std::uint16_t port)
    : impl_(std::make_unique<impl>()) {
    impl_->reg = std::move(registry);
    beast::error_code ec;
    auto address = asio::ip::make_address(host, ec);
    if (ec) {
        throw std::runtime_error("--metrics-listen: '" + host + "' is not an IP address");
    }
    tcp::endpoint ep(address, port);
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
        std::string where = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
        throw std::runtime_error("cannot listen for metrics on " + where + ":" +
                                 std::to_string(port) + ": " + ec.message());
    }
    asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

endpoint::~endpoint() {
    stop();
}

tcp::endpoint endpoint::local_endpoint() const {
    return impl_->acceptor.local_endpoint();
}

void endpoint::stop() {
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

}  // namespace llm_proxy::metrics

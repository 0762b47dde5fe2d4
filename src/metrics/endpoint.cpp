#include "llm_proxy/metrics/endpoint.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <optional>

#include "llm_proxy/metrics/text_format.hpp"
#include "llm_proxy/util/side_server.hpp"

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
    std::optional<side_server> server;  // last: its sessions go before what they use

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
    impl_->server.emplace(address, port, "metrics");
    impl_->server->start([this](tcp::socket socket) { return impl_->serve(std::move(socket)); });
}

endpoint::~endpoint() {
    stop();
}

tcp::endpoint endpoint::local_endpoint() const {
    return impl_->server->local_endpoint();
}

void endpoint::stop() {
    impl_->server->stop();
}

}  // namespace llm_proxy::metrics

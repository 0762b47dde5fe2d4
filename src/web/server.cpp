#include "llm_proxy/web/server.hpp"

#include <openssl/rand.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>
#include <stdexcept>

#include "api.hpp"
#include "http_guard.hpp"
#include "llm_proxy/util/authority.hpp"
#include "llm_proxy/util/side_server.hpp"

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
    std::atomic<int> streams{0};
    std::optional<side_server> listener;  // last: its sessions go before what they use

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
        asio::steady_timer timer(listener->context());
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
        api_context ctx{*store, options.read, options.live, options.shown};
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
    auto& l = impl_->listener.emplace(address, impl_->options.port, "the web view");
    impl_->guard = std::make_unique<http_guard>(impl_->options.host, l.local_endpoint().port(),
                                                impl_->options.token, impl_->options.credentials);
    l.start([this](tcp::socket socket) { return impl_->serve(std::move(socket)); });
}

server::~server() {
    stop();
}

tcp::endpoint server::local_endpoint() const {
    return impl_->listener->local_endpoint();
}

std::string server::url() const {
    auto url = "http://" + endpoint_text(local_endpoint()) + "/";
    if (!impl_->options.token.empty()) {
        url += "?token=" + impl_->options.token;
    }
    return url;
}

void server::stop() {
    impl_->listener->stop();
}

}  // namespace llm_proxy::web

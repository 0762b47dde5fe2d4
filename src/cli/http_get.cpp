#include "cli/http_get.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <stdexcept>

#include "llm_proxy/tls/contexts.hpp"

namespace llm_proxy::cli {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct answer {
    unsigned status = 0;
    std::string location;
    std::string body;
};

template <class Stream>
asio::awaitable<answer> exchange(Stream& stream, beast::tcp_stream& tcp, const std::string& host,
                                 const std::string& target, const http_get_options& o) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "llm_proxy");
    req.set(http::field::accept, "application/json");
    tcp.expires_after(o.timeout);
    co_await http::async_write(stream, req, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(o.max_bytes);
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    auto& res = parser.get();
    answer a;
    a.status = res.result_int();
    if (auto it = res.find(http::field::location); it != res.end()) {
        a.location = std::string(it->value());
    }
    a.body = std::move(res.body());
    co_return a;
}

asio::awaitable<answer> fetch_once(const boost::urls::url_view& u, const http_get_options& o) {
    auto ex = co_await asio::this_coro::executor;
    std::string host(u.host_address());
    std::string port =
        u.has_port() ? std::string(u.port()) : (u.scheme() == "https" ? "443" : "80");
    std::string target(u.encoded_target());
    if (target.empty()) {
        target = "/";
    }
    std::string host_header(u.encoded_host_and_port());
    tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve(host, port, asio::use_awaitable);
    beast::tcp_stream tcp_stream(ex);
    tcp_stream.expires_after(o.timeout);
    co_await tcp_stream.async_connect(endpoints, asio::use_awaitable);
    if (u.scheme() == "http") {
        co_return co_await exchange(tcp_stream, tcp_stream, host_header, target, o);
    }
    auto ctx = tls::make_upstream_context(false, o.extra_ca);
    beast::ssl_stream<beast::tcp_stream&> tls(tcp_stream, *ctx);
    tls::prepare_upstream_ssl(tls.native_handle(), host, true);
    co_await tls.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    co_return co_await exchange(tls, tcp_stream, host_header, target, o);
}

}  // namespace

std::string http_get(const std::string& url_text, const http_get_options& o) {
    std::string current = url_text;
    for (int hop = 0; hop <= 5; ++hop) {
        auto parsed = boost::urls::parse_uri(current);
        if (!parsed || (parsed->scheme() != "http" && parsed->scheme() != "https") ||
            parsed->host().empty()) {
            throw std::runtime_error("not an http:// or https:// URL: " + current);
        }
        boost::urls::url u = *parsed;
        asio::io_context ioc;
        auto future = asio::co_spawn(ioc, fetch_once(u, o), asio::use_future);
        ioc.run();
        answer a;
        try {
            a = future.get();
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error(current + ": " + e.code().message());
        } catch (const std::exception& e) {
            throw std::runtime_error(current + ": " + e.what());
        }
        if (a.status >= 300 && a.status < 400 && !a.location.empty()) {
            boost::urls::url next;
            auto ref = boost::urls::parse_uri_reference(a.location);
            if (!ref || !boost::urls::resolve(u, *ref, next)) {
                throw std::runtime_error(current + ": bad redirect to " + a.location);
            }
            current = std::string(next.buffer());
            continue;
        }
        if (a.status != 200) {
            throw std::runtime_error(current + ": HTTP status " + std::to_string(a.status));
        }
        return std::move(a.body);
    }
    throw std::runtime_error(url_text + ": too many redirects");
}

}  // namespace llm_proxy::cli

#include "sender.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

#include "llm_proxy/tls/contexts.hpp"

namespace llm_proxy::otlp {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

template <class Stream>
asio::awaitable<post_result> exchange(Stream& stream, beast::tcp_stream& tcp, const target& t,
                                      const std::string& body, const post_options& o) {
    http::request<http::string_body> req{http::verb::post, t.path, 11};
    req.set(http::field::host, t.authority);
    req.set(http::field::user_agent, "llm_proxy/" LLM_PROXY_VERSION);
    req.set(http::field::content_type, "application/json");
    if (!o.content_encoding.empty()) {
        req.set(http::field::content_encoding, o.content_encoding);
    }
    for (const auto& [k, v] : o.headers) {
        req.set(k, v);
    }
    req.body() = body;
    req.prepare_payload();
    tcp.expires_after(o.timeout);
    co_await http::async_write(stream, req, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1u << 20);
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    auto& res = parser.get();
    post_result r;
    r.status = res.result_int();
    r.ok = r.status >= 200 && r.status < 300;
    r.retryable =
        r.status == 408 || r.status == 429 || r.status == 502 || r.status == 503 || r.status == 504;
    if (!r.ok) {
        r.error = "HTTP status " + std::to_string(r.status);
        auto text = res.body().substr(0, 200);
        if (!text.empty()) {
            r.error += ": " + text;
        }
    }
    if (auto it = res.find(http::field::retry_after); it != res.end()) {
        unsigned seconds = 0;
        auto v = it->value();
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
        if (ec == std::errc{} && p == v.data() + v.size()) {
            r.retry_after = std::chrono::seconds(std::min(seconds, 300u));
        }
    }
    co_return r;
}

}  // namespace

std::optional<target> parse_target(const std::string& url) {
    auto u = boost::urls::parse_uri(url);
    if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty()) {
        return std::nullopt;
    }
    target t;
    t.scheme = std::string(u->scheme());
    t.host = std::string(u->host_address());
    t.port = u->has_port() ? std::string(u->port()) : (t.scheme == "https" ? "443" : "80");
    t.path = std::string(u->encoded_target());
    if (t.path.empty()) {
        t.path = "/";
    }
    t.authority = std::string(u->encoded_host_and_port());
    return t;
}

asio::awaitable<post_result> post(const target& t, asio::ssl::context* tls, const std::string& body,
                                  const post_options& o) {
    auto ex = co_await asio::this_coro::executor;
    post_result failed;
    failed.retryable = true;
    try {
        tcp::resolver resolver(ex);
        auto endpoints = co_await resolver.async_resolve(t.host, t.port, asio::use_awaitable);
        beast::tcp_stream tcp_stream(ex);
        tcp_stream.expires_after(o.timeout);
        co_await tcp_stream.async_connect(endpoints, asio::use_awaitable);
        if (t.scheme == "http" || tls == nullptr) {
            co_return co_await exchange(tcp_stream, tcp_stream, t, body, o);
        }
        beast::ssl_stream<beast::tcp_stream&> stream(tcp_stream, *tls);
        tls::prepare_upstream_ssl(stream.native_handle(), t.host, true);
        co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
        co_return co_await exchange(stream, tcp_stream, t, body, o);
    } catch (const boost::system::system_error& e) {
        failed.error = e.code().message();
    } catch (const std::exception& e) {
        failed.error = e.what();
    }
    co_return failed;
}

}  // namespace llm_proxy::otlp

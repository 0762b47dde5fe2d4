#include "sender.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

#include "llm_proxy/tls/contexts.hpp"

namespace llm_proxy::otlp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

struct connection::state {
    const target& where;
    asio::ssl::context* tls;
    std::unique_ptr<beast::tcp_stream> tcp;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream&>> secure;  // https only
    beast::flat_buffer buffer;
    clock::time_point last_used{};
    std::uint64_t opened = 0;

    bool is_open() const { return tcp && tcp->socket().is_open(); }
    void close() {
        secure.reset();
        if (tcp) {
            boost::system::error_code ec;
            tcp->socket().shutdown(tcp::socket::shutdown_both, ec);
            tcp->socket().close(ec);
        }
        tcp.reset();
        buffer.clear();
    }

    asio::awaitable<void> open(const post_options& o) {
        close();
        auto ex = co_await asio::this_coro::executor;
        tcp::resolver resolver(ex);
        auto endpoints =
            co_await resolver.async_resolve(where.host, where.port, asio::use_awaitable);
        tcp = std::make_unique<beast::tcp_stream>(ex);
        tcp->expires_after(o.timeout);
        co_await tcp->async_connect(endpoints, asio::use_awaitable);
        ++opened;
        if (where.scheme == "https" && tls != nullptr) {
            secure = std::make_unique<beast::ssl_stream<beast::tcp_stream&>>(*tcp, *tls);
            tls::prepare_upstream_ssl(secure->native_handle(), where.host, true);
            co_await secure->async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
        }
    }

    // One request and its response on the open connection. `answered` tells whether any byte
    // of a response came (then the POST is not sent again).
    template <class Stream>
    asio::awaitable<post_result> exchange(Stream& stream, std::string_view body,
                                          const post_options& o, bool& answered, bool& keep) {
        // The body is sent from the caller's buffer, not copied into the message.
        http::request<http::span_body<const char>> req{http::verb::post, where.path, 11};
        req.set(http::field::host, where.authority);
        req.set(http::field::user_agent, "llm_proxy/" LLM_PROXY_VERSION);
        req.set(http::field::content_type, o.content_type);
        if (!o.content_encoding.empty()) {
            req.set(http::field::content_encoding, o.content_encoding);
        }
        for (const auto& [k, v] : o.headers) {
            req.set(k, v);
        }
        req.body() = {body.data(), body.size()};
        req.prepare_payload();
        tcp->expires_after(o.timeout);
        co_await http::async_write(stream, req, asio::use_awaitable);
        http::response_parser<http::string_body> parser;
        parser.body_limit(1u << 20);
        try {
            co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
        } catch (...) {
            answered = parser.got_some();
            throw;
        }
        answered = true;
        auto& res = parser.get();
        keep = res.keep_alive() && buffer.size() == 0;
        post_result r;
        r.status = res.result_int();
        r.ok = r.status >= 200 && r.status < 300;
        r.retryable = r.status == 408 || r.status == 429 || r.status == 502 || r.status == 503 ||
                      r.status == 504;
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
};

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

connection::connection(const target& t, asio::ssl::context* tls)
    : state_(std::make_unique<state>(state{t, tls, {}, {}, {}, {}, 0})) {}

connection::~connection() {
    state_->close();
}

std::uint64_t connection::opened() const {
    return state_->opened;
}

asio::awaitable<post_result> connection::post(std::string_view body, const post_options& o) {
    auto& s = *state_;
    post_result failed;
    failed.retryable = true;
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool reused = s.is_open() && clock::now() - s.last_used < max_idle;
        bool answered = false;
        bool keep = false;
        bool timed_out = false;
        try {
            if (!reused) {
                co_await s.open(o);
            }
            post_result r;  // (no co_await inside ?: — GCC 12 destroys its result twice)
            if (s.secure) {
                r = co_await s.exchange(*s.secure, body, o, answered, keep);
            } else {
                r = co_await s.exchange(*s.tcp, body, o, answered, keep);
            }
            if (keep) {
                s.last_used = clock::now();
            } else {
                s.close();
            }
            co_return r;
        } catch (const boost::system::system_error& e) {
            failed.error = e.code().message();
            timed_out = e.code() == beast::error::timeout;
        } catch (const std::exception& e) {
            failed.error = e.what();
        }
        s.close();
        if (!reused || answered || timed_out) {
            // A new connection failed, the collector answered part of a response, or it did
            // not answer in time: the batch waits for the next try (with backoff).
            break;
        }
        // The collector closed the kept connection while it was idle: once more, on a new one.
    }
    co_return failed;
}

}  // namespace llm_proxy::otlp

#include "upstream.hpp"

#include "http_util.hpp"
#include "parent_connect.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <optional>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "llm_proxy/flow.hpp"
#include "llm_proxy/tls/contexts.hpp"

namespace llm_proxy::proxy {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// Where to open the TCP connection: --connect-to rules first (curl semantics), else the target.
std::pair<std::string, std::uint16_t> connect_address(const proxy_config& config,
                                                      const upstream_target& t) {
    for (const auto& rule : config.connect_to) {
        bool host_ok = rule.host.empty() || iequals(rule.host, t.dial_host());
        bool port_ok = rule.port == 0 || rule.port == t.port;
        if (host_ok && port_ok) {
            return {rule.connect_host.empty() ? t.dial_host() : rule.connect_host,
                    rule.connect_port == 0 ? t.port : rule.connect_port};
        }
    }
    return {t.dial_host(), t.port};
}

// The parent proxy `t` goes through (--upstream-proxy), or null when it goes direct.
const parent_proxy* parent_proxy_for(const proxy_config& config, const upstream_target& t) {
    const auto& direct = config.upstream_no_proxy;
    if (!config.upstream_proxy || direct.matches(t.host) ||
        (!t.address.empty() && direct.matches(t.address))) {
        return nullptr;
    }
    return &*config.upstream_proxy;
}

std::string tls_failure_detail(SSL* ssl, const beast::error_code& ec) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
        return X509_verify_cert_error_string(verify);
    }
    return ec.message();
}

struct tcp_result {
    std::optional<beast::tcp_stream> stream;
    upstream_error error;
};

// DNS and TCP to host:port within the connect timeout.
asio::awaitable<tcp_result> open_tcp(asio::io_context& ioc, const std::string& host,
                                     std::uint16_t port, std::chrono::milliseconds timeout) {
    tcp_result out;
    tcp::resolver resolver(ioc);
    asio::steady_timer timer(ioc);
    timer.expires_after(timeout);
    auto raced = co_await (resolver.async_resolve(host, std::to_string(port), use_tuple) ||
                           timer.async_wait(use_tuple));
    if (raced.index() == 1) {
        out.error = {504, flow_error::dns_timeout, "resolving " + host + " timed out"};
        co_return out;
    }
    auto [rec, endpoints] = std::get<0>(raced);
    if (rec) {
        out.error = {502, flow_error::dns, "cannot resolve " + host + ": " + rec.message()};
        co_return out;
    }

    beast::tcp_stream tcp_stream(ioc);
    tcp_stream.expires_after(timeout);
    auto [cec, ep] = co_await tcp_stream.async_connect(endpoints, use_tuple);
    if (cec) {
        if (cec == beast::error::timeout) {
            out.error = {504, flow_error::connect_timeout,
                         "connecting to " + host + ":" + std::to_string(port) + " timed out"};
        } else {
            out.error = {
                502, flow_error::connect,
                "cannot connect to " + host + ":" + std::to_string(port) + ": " + cec.message()};
        }
        co_return out;
    }
    tcp_stream.socket().set_option(tcp::no_delay(true));
    spdlog::debug("connected to {}:{} via {}:{}", host, port, ep.address().to_string(), ep.port());
    out.stream.emplace(std::move(tcp_stream));
    co_return out;
}

}  // namespace

asio::awaitable<tcp_connect_result> connect_tcp(asio::io_context& ioc, const proxy_config& config,
                                                const upstream_target& target) {
    auto [host, port] = connect_address(config, target);
    tcp_connect_result out;
    const parent_proxy* parent = parent_proxy_for(config, target);
    auto opened = co_await open_tcp(ioc, parent ? parent->host : host, parent ? parent->port : port,
                                    config.connect_timeout);
    if (!opened.stream) {
        out.error = std::move(opened.error);
        if (parent) {
            out.error.status = 502;
            out.error.kind = flow_error::upstream_proxy;
            out.error.message = "upstream proxy " + parent->authority() + ": " + out.error.message;
        }
        co_return out;
    }
    if (parent) {
        // A blind tunnel through the parent: CONNECT to the target, whatever its protocol.
        auto problem =
            co_await parent_connect(*opened.stream, *parent, format_authority(host, port),
                                    config.connect_timeout, config.max_header_bytes);
        if (!problem.empty()) {
            out.error = {502, flow_error::upstream_proxy, std::move(problem)};
            co_return out;
        }
    }
    out.stream.emplace(std::move(*opened.stream));
    co_return out;
}

upstream_pool::upstream_pool(asio::io_context& ioc, const proxy_config& config,
                             asio::ssl::context& tls)
    : ioc_(ioc), config_(config), tls_(tls), sweep_timer_(ioc) {}

bool upstream_pool::usable(idle_entry& e) const {
    auto idle = std::chrono::steady_clock::now() - e.since;
    if (idle > config_.upstream_idle_timeout) {
        return false;
    }
    // Probed before every reuse, back-to-back too: bytes an upstream sent after its response
    // would otherwise be read as the answer to the next client's request. A server that
    // closes just after the probe is caught by the retry in the flow.
    // A peer that closed an idle connection leaves it readable with EOF (or an alert): any
    // readable byte on an idle connection means it is not safe to send a request on it.
    char b;
    auto& sock = e.connection->stream.tcp().socket();
    ssize_t n = ::recv(sock.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
        return false;
    }
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    // Bytes on an idle connection: an alert, a close_notify, or data no request asked for.
    // (TLS 1.3 session tickets come right after the handshake, before the first response, and
    // were read with it.) Closing costs at most a new connection.
    return false;
}

std::unique_ptr<upstream_connection> upstream_pool::take_idle(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end()) {
        return nullptr;
    }
    auto& list = it->second;
    while (!list.empty()) {
        idle_entry e = std::move(list.back());
        list.pop_back();
        --idle_total_;
        publish_idle();
        if (usable(e)) {
            e.connection->reused = true;
            spdlog::debug("reusing upstream connection to {}", key);
            return std::move(e.connection);
        }
        e.connection->stream.close();
    }
    return nullptr;
}

asio::awaitable<acquire_result> upstream_pool::acquire(const upstream_target& target,
                                                       early_connection* early) {
    auto key = pool_key(target);
    if (early && !early->claimed && early->key == key) {
        if (early->finished) {
            // Done before the request came: its connection (or its error) waited for it. A
            // connection that waited counts as reused: if the server closed it meanwhile,
            // the request is retried on a new one.
            early->claimed = true;
            if (early->result.connection) {
                early->result.connection->reused = true;
            }
            co_return std::move(early->result);
        }
        if (auto c = take_idle(key)) {
            co_return acquire_result{std::move(c), {}};
        }
        early->claimed = true;
        co_await early->done.async_wait(use_tuple);  // cancelled when it finishes
        if (early->finished) {
            co_return std::move(early->result);
        }
    }
    if (auto c = take_idle(key)) {
        co_return acquire_result{std::move(c), {}};
    }
    co_return co_await connect(target);
}

std::shared_ptr<early_connection> upstream_pool::connect_early(const upstream_target& target) {
    auto key = pool_key(target);
    if (auto it = idle_.find(key); it != idle_.end() && !it->second.empty()) {
        // A pooled connection is there for the request: another would cost both ends a
        // handshake for nothing.
        return nullptr;
    }
    auto e = std::make_shared<early_connection>(ioc_);
    e->key = std::move(key);
    asio::co_spawn(ioc_, run_early(target, e), asio::detached);
    return e;
}

asio::awaitable<void> upstream_pool::run_early(upstream_target target,
                                               std::shared_ptr<early_connection> e) {
    auto r = co_await connect(target);
    if (!r.connection) {
        spdlog::debug("early connection to {} failed: {}", target.key(), r.error.message);
    }
    // Kept for the tunnel's first request (a failure too: it is the answer a new attempt
    // would most likely get, and trying twice would double a timeout). Unclaimed, it closes
    // with the tunnel.
    e->result = std::move(r);
    e->finished = true;
    e->done.cancel();
}

const parent_proxy* upstream_pool::parent_for(const upstream_target& target) const {
    return parent_proxy_for(config_, target);
}

std::string upstream_pool::pool_key(const upstream_target& target) const {
    const auto* parent = parent_for(target);
    return parent ? target.key() + " via " + parent->authority() : target.key();
}

asio::awaitable<acquire_result> upstream_pool::connect(const upstream_target& target) {
    // --connect-to rewrites where the target is: the TCP address when direct, the CONNECT
    // target (or the absolute-form URL) when through the parent.
    auto [host, port] = connect_address(config_, target);
    acquire_result out;
    const auto* parent = parent_for(target);
    // The parent itself is reached by its own address.
    const std::string tcp_host = parent ? parent->host : host;
    const std::uint16_t tcp_port = parent ? parent->port : port;
    auto opened = co_await open_tcp(ioc_, tcp_host, tcp_port, config_.connect_timeout);
    if (!opened.stream) {
        out.error = std::move(opened.error);
        if (parent) {
            out.error.status = 502;
            out.error.kind = flow_error::upstream_proxy;
            out.error.message = "upstream proxy " + parent->authority() + ": " + out.error.message;
        }
        co_return out;
    }
    beast::tcp_stream tcp_stream = std::move(*opened.stream);
    const std::string authority = format_authority(host, port);
    if (parent && target.scheme == "https") {
        auto problem = co_await parent_connect(tcp_stream, *parent, authority,
                                               config_.connect_timeout, config_.max_header_bytes);
        if (!problem.empty()) {
            out.error = {502, flow_error::upstream_proxy, std::move(problem)};
            co_return out;
        }
        spdlog::debug("upstream proxy {} opened a tunnel to {}", parent->authority(), authority);
    }

    auto conn = std::make_unique<upstream_connection>(std::move(tcp_stream));
    conn->key = pool_key(target);
    if (parent && target.scheme != "https") {
        conn->parent = parent->authority();
        conn->absolute_prefix = "http://" + authority;
        conn->proxy_authorization = parent->authorization();
    }
    if (target.scheme == "https") {
        conn->stream.tcp().expires_after(config_.connect_timeout);
        conn->stream.start_tls(tls_);
        SSL* ssl = conn->stream.tls().native_handle();
        tls::prepare_upstream_ssl(ssl, target.host, !config_.skip_upstream_tls_verify);
        auto [hec] =
            co_await conn->stream.tls().async_handshake(asio::ssl::stream_base::client, use_tuple);
        if (hec) {
            if (hec == beast::error::timeout) {
                out.error = {504, flow_error::tls_timeout,
                             "TLS handshake with " + target.host + " timed out"};
            } else if (SSL_get_verify_result(ssl) != X509_V_OK) {
                out.error = {502, flow_error::tls_verification,
                             "upstream certificate verification failed for " + target.host + ": " +
                                 tls_failure_detail(ssl, hec)};
            } else {
                out.error = {502, flow_error::tls,
                             "TLS handshake with " + target.host + " failed: " + hec.message()};
            }
            co_return out;
        }
        spdlog::debug("TLS to upstream {} established ({})", target.key(), SSL_get_version(ssl));
    }
    conn->stream.tcp().expires_never();
    out.connection = std::move(conn);
    co_return out;
}

void upstream_pool::release(std::unique_ptr<upstream_connection> c) {
    if (config_.max_idle_upstream == 0 || closed_) {
        c->stream.close();
        return;
    }
    if (auto it = idle_.find(c->key);
        it != idle_.end() && it->second.size() >= config_.max_idle_upstream_per_host) {
        c->stream.close();
        return;
    }
    if (idle_total_ >= config_.max_idle_upstream) {
        close_oldest_idle();  // may erase map entries: take the list reference afterwards
    }
    auto& list = idle_[c->key];
    c->stream.tcp().expires_never();
    shrink_idle_buffer(c->buffer);
    c->stream.shrink_idle();
    list.push_back({std::move(c), std::chrono::steady_clock::now()});
    ++idle_total_;
    publish_idle();
    if (!sweeping_) {
        sweeping_ = true;
        asio::co_spawn(ioc_, sweep_loop(), asio::detached);
    }
}

asio::awaitable<void> upstream_pool::sweep_loop() {
    // Closes idle connections whose time is up or whose peer went away, so none linger.
    while (!idle_.empty()) {
        sweep_timer_.expires_after(std::chrono::seconds(5));
        auto [ec] = co_await sweep_timer_.async_wait(use_tuple);
        if (ec) {
            break;
        }
        for (auto it = idle_.begin(); it != idle_.end();) {
            auto& list = it->second;
            idle_total_ -= std::erase_if(list, [this](idle_entry& e) {
                if (usable(e)) {
                    return false;
                }
                e.connection->stream.close();
                return true;
            });
            it = list.empty() ? idle_.erase(it) : std::next(it);
        }
        publish_idle();
    }
    sweeping_ = false;
}

void upstream_pool::close_all() {
    closed_ = true;
    sweep_timer_.cancel();
    for (auto& [key, list] : idle_) {
        for (auto& e : list) {
            e.connection->stream.close();
        }
    }
    idle_.clear();
    idle_total_ = 0;
    publish_idle();
}

void upstream_pool::close_oldest_idle() {
    // Lists are in release order, so each one's front is its host's longest idle connection.
    auto oldest = idle_.end();
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if (!it->second.empty() &&
            (oldest == idle_.end() || it->second.front().since < oldest->second.front().since)) {
            oldest = it;
        }
    }
    if (oldest == idle_.end()) {
        return;
    }
    auto& list = oldest->second;
    list.front().connection->stream.close();
    list.erase(list.begin());
    --idle_total_;
    publish_idle();
    if (list.empty()) {
        idle_.erase(oldest);
    }
}

std::size_t upstream_pool::idle_count() const {
    return idle_total_;
}

}  // namespace llm_proxy::proxy

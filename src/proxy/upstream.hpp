#pragma once
// Connections to upstream servers: DNS, TCP, TLS with verification, and a keep-alive pool.
// One pool per worker thread; nothing here is shared between threads.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "flex_stream.hpp"
#include "llm_proxy/flow_error.hpp"
#include "llm_proxy/proxy/config.hpp"

namespace llm_proxy::proxy {

struct upstream_target {
    std::string scheme;  // "http" or "https"
    std::string host;    // the name: Host, TLS server name, certificate check
    std::uint16_t port = 0;
    // Where to connect when it is not `host` (a CONNECT to an address whose ClientHello
    // names the server); --connect-to rules still apply to it.
    std::string address;
    std::string key() const {
        auto k = scheme + "://" + host + ":" + std::to_string(port);
        return address.empty() ? k : k + " at " + address;
    }
    const std::string& dial_host() const { return address.empty() ? host : address; }
};

// Why an upstream could not be reached; `status` is what the client gets (502 or 504).
struct upstream_error {
    unsigned status = 502;
    llm_proxy::flow_error kind = llm_proxy::flow_error::upstream_reset;
    std::string message;
};

struct upstream_connection {
    // Room for a whole small response from the start: Beast reads at most the free capacity
    // (at least 512 bytes), and a response read in pieces is relayed in pieces.
    explicit upstream_connection(beast::tcp_stream tcp) : stream(std::move(tcp)) {
        buffer.reserve(4 * 1024);
    }
    flex_stream stream;
    beast::flat_buffer buffer{256 * 1024};
    std::string key;
    bool reused = false;
    // Plain HTTP through --upstream-proxy: the parent's "host:port", the "http://host:port"
    // that makes request targets absolute-form, and the Proxy-Authorization value (empty
    // without credentials). All empty for a direct connection or a tunnel.
    std::string parent;
    std::string absolute_prefix;
    std::string proxy_authorization;
};

struct acquire_result {
    std::unique_ptr<upstream_connection> connection;
    upstream_error error;  // meaningful when connection is null
};

// DNS + TCP to where --connect-to sends `target` (the target itself otherwise), bounded by
// connect_timeout, through --upstream-proxy when it applies. Used by blind tunnels.
struct tcp_connect_result {
    std::optional<beast::tcp_stream> stream;  // connected, TCP_NODELAY set
    upstream_error error;                     // meaningful when stream is empty
};
asio::awaitable<tcp_connect_result> connect_tcp(asio::io_context& ioc, const proxy_config& config,
                                                const upstream_target& target);

// A connection opened ahead of the request that will use it (upstream_pool::connect_early).
struct early_connection {
    explicit early_connection(asio::io_context& ioc) : done(ioc) {
        done.expires_at(std::chrono::steady_clock::time_point::max());
    }
    std::string key;
    asio::steady_timer done;  // cancelled when the attempt finishes
    bool finished = false;    // `result` holds the connection, or the error, for the request
    bool claimed = false;
    acquire_result result;
};

class upstream_pool {
  public:
    upstream_pool(asio::io_context& ioc, const proxy_config& config, asio::ssl::context& tls);

    // Starts connecting to `target` (TCP, and TLS verified) now, while the client is still
    // busy with its own handshake. Passed to acquire(), the attempt is the request's
    // connection; unclaimed, it closes when the caller drops it. Null (nothing to do) when an
    // idle connection to `target` is already in the pool.
    std::shared_ptr<early_connection> connect_early(const upstream_target& target);
    // A live pooled connection to `target`, the early attempt `early` (when it was made for
    // the same target), or a new one.
    asio::awaitable<acquire_result> acquire(const upstream_target& target,
                                            early_connection* early = nullptr);
    // Returns a connection whose last exchange finished cleanly and may be reused.
    void release(std::unique_ptr<upstream_connection> c);
    void close_all();
    std::size_t idle_count() const;
    // idle_count() for other threads (the metrics scrape): as of the last change.
    std::size_t idle_count_published() const {
        return idle_published_.load(std::memory_order_relaxed);
    }

  private:
    struct idle_entry {
        std::unique_ptr<upstream_connection> connection;
        std::chrono::steady_clock::time_point since;
    };
    asio::awaitable<acquire_result> connect(const upstream_target& target);
    asio::awaitable<void> run_early(upstream_target target, std::shared_ptr<early_connection> e);
    // Takes a usable idle connection for `key`, if there is one.
    std::unique_ptr<upstream_connection> take_idle(const std::string& key);
    // The parent proxy `target` goes through, or null when it goes direct.
    const parent_proxy* parent_for(const upstream_target& target) const;
    // The pool key: a connection through the parent is never taken for a direct one.
    std::string pool_key(const upstream_target& target) const;
    asio::awaitable<void> sweep_loop();
    bool usable(idle_entry& e) const;
    // Closes the connection idle the longest, over all hosts.
    void close_oldest_idle();

    asio::io_context& ioc_;
    const proxy_config& config_;
    asio::ssl::context& tls_;
    std::unordered_map<std::string, std::vector<idle_entry>> idle_;
    std::size_t idle_total_ = 0;
    std::atomic<std::size_t> idle_published_{0};  // idle_total_, for other threads
    void publish_idle() { idle_published_.store(idle_total_, std::memory_order_relaxed); }
    asio::steady_timer sweep_timer_;
    bool sweeping_ = false;
    bool closed_ = false;  // close_all() ran: nothing joins the idle pool any more
};

}  // namespace llm_proxy::proxy

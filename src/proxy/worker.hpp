#pragma once
// State shared by all worker threads, and one worker: an io_context run by one thread, with its
// own upstream pool and the client sessions it serves.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <unordered_set>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/proxy/config.hpp"
#include "llm_proxy/tls/certificate_authority.hpp"
#include "tunnel_loop.hpp"
#include "upstream.hpp"

namespace llm_proxy::proxy {

struct shared_state {
    proxy_config config;
    std::shared_ptr<addon_chain> chain;
    // What plain-HTTP requests to hosts that are not intercepted go through: no addon.
    addon_chain no_addons;
    std::shared_ptr<tls::certificate_authority> ca;
    std::unique_ptr<asio::ssl::context> server_tls;
    std::unique_ptr<asio::ssl::context> upstream_tls;
    // Reverse mode over TLS: the listener's own certificate (null: plain HTTP only).
    std::unique_ptr<asio::ssl::context> listener_tls;
    // Leaf minting (an RSA/EC signature) runs here, never on a worker's event loop.
    asio::thread_pool mint_pool{1};
    std::atomic<bool> stopping{false};
    // Client connections accepted and not closed yet (all workers).
    std::atomic<std::size_t> open_connections{0};
    // Blind tunnels being relayed (all workers).
    std::atomic<std::size_t> open_tunnels{0};
};

class client_session;

struct worker {
    explicit worker(shared_state& s) : shared(s), ioc(1), pool(ioc, s.config, *s.upstream_tls) {}
    shared_state& shared;
    // Declared before the io_context: sessions still pending when it is destroyed unregister
    // themselves from here.
    std::unordered_set<client_session*> sessions;  // touched only on this worker's thread
    std::atomic<std::size_t> session_count{0};
    asio::io_context ioc;
    upstream_pool pool;
    // Relays this worker's blind tunnels on a thread of its own (started by the first one).
    // Declared after the io_context: stopped, and its last callbacks posted, before it goes.
    tunnel_loop tunnels;

    // Closes connections that wait for a next request; in-flight flows go on.
    void close_idle_sessions();
};

}  // namespace llm_proxy::proxy

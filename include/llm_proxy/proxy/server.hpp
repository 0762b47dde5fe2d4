#pragma once
// The proxy server: accepts client connections and runs flows through the addon chain.

#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <memory>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/proxy/config.hpp"
#include "llm_proxy/tls/certificate_authority.hpp"

namespace llm_proxy::proxy {

class server_impl;

// What the server holds open right now (for the metrics scrape).
struct server_stats {
    std::size_t client_connections = 0;
    std::size_t tunnels = 0;        // blind tunnels being relayed
    std::size_t upstream_idle = 0;  // idle keep-alive connections in the workers' pools
};

class server {
  public:
    // Binds the listening socket; throws std::runtime_error (address in use, bad address...).
    server(proxy_config config, std::shared_ptr<addon_chain> chain,
           std::shared_ptr<tls::certificate_authority> ca);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    boost::asio::ip::tcp::endpoint local_endpoint() const;
    // Thread-safe; the idle count of each worker is the one it last published.
    server_stats stats() const;

    // Serves until SIGINT/SIGTERM or stop(); then stops accepting, lets in-flight flows finish
    // (bounded by config.shutdown_grace), closes the addon chain and returns.
    void run();
    // Thread-safe request to shut down gracefully.
    void stop();

  private:
    std::unique_ptr<server_impl> impl_;
};

}  // namespace llm_proxy::proxy

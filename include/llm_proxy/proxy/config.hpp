#pragma once
// Settings of the proxy engine (filled by the CLI).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "llm_proxy/proxy/host_patterns.hpp"
#include "llm_proxy/proxy/parent_proxy.hpp"
#include "llm_proxy/proxy/proxy_auth.hpp"
#include "llm_proxy/proxy/reverse_routes.hpp"

namespace llm_proxy {

// curl's --connect-to: requests for host:port connect to connect_host:connect_port instead,
// while TLS still verifies `host`. Empty host / zero port match anything (or keep the original).
struct connect_to_rule {
    std::string host;
    std::uint16_t port = 0;
    std::string connect_host;
    std::uint16_t connect_port = 0;
};

// Parses "HOST:PORT:HOST2:PORT2" (IPv6 in brackets). Throws std::invalid_argument.
connect_to_rule parse_connect_to(const std::string& text);

// The default --max-connections for a descriptor limit: each client connection may hold an
// upstream connection too, and some descriptors stay for the listener, records, the cache
// and pooled idle upstream connections.
std::size_t connection_limit_for(std::size_t descriptor_limit);

struct proxy_config {
    std::string listen_host = "127.0.0.1";
    std::uint16_t listen_port = 8080;
    std::filesystem::path ca_dir;  // default: ~/.mitmproxy
    bool skip_upstream_tls_verify = false;
    std::optional<std::filesystem::path> upstream_ca;
    std::vector<connect_to_rule> connect_to;
    unsigned threads = 0;  // 0: hardware concurrency
    // --upstream-proxy: upstream connections go through this HTTP proxy, but for the hosts
    // of --upstream-no-proxy.
    std::optional<parent_proxy> upstream_proxy;
    no_proxy_list upstream_no_proxy;

    // Reverse (base-URL) mode: origin-form requests go to the route their path matches.
    std::vector<reverse_route> reverse;
    bool reverse_forwarded_for = false;  // append the client address to X-Forwarded-For
    // Serve the listener over TLS as well (detected by the first byte) with this certificate.
    std::optional<std::filesystem::path> reverse_tls_cert;
    std::optional<std::filesystem::path> reverse_tls_key;

    std::size_t max_header_bytes = 64 * 1024;
    std::chrono::milliseconds client_header_timeout{30'000};  // whole request head
    std::chrono::milliseconds client_idle_timeout{60'000};    // between keep-alive requests
    std::chrono::milliseconds client_io_timeout{60'000};      // body reads / writes to client
    std::chrono::milliseconds connect_timeout{10'000};        // DNS + TCP + TLS upstream
    std::chrono::milliseconds upstream_timeout{600'000};      // waiting for upstream bytes
    std::chrono::milliseconds upstream_idle_timeout{30'000};  // pooled idle upstream connection
    std::chrono::milliseconds shutdown_grace{10'000};
    std::size_t max_idle_upstream_per_host = 16;
    // Idle upstream connections per worker over all hosts; past it the longest idle closes.
    // Each holds a socket and its TLS state, so a proxy that saw thousands of host names
    // does not keep thousands of connections open.
    std::size_t max_idle_upstream = 64;
    // Client connections open at once; past it, new connections wait in the listen backlog
    // until one closes. 0: derived from the descriptor limit (connection_limit_for()).
    std::size_t max_connections = 0;

    // Which connections are intercepted (--allow-hosts, --ignore-hosts, --intercept). The
    // others become blind tunnels (CONNECT) or are forwarded unobserved (plain HTTP).
    host_filter intercept;
    // A blind tunnel with no byte in either direction for this long is closed.
    std::chrono::milliseconds tunnel_idle_timeout{600'000};
    // Once one direction of a blind tunnel has ended (its sender's FIN passed on), the tunnel is
    // closed after this long without a byte (a peer that never closes its side cannot hold it).
    std::chrono::milliseconds tunnel_half_closed_timeout{60'000};
    // One record per blind tunnel through the addons' on_flow_done (the dir_logger).
    bool log_tunnels = false;
    // Accepted proxy credentials; none: no authentication.
    proxy_credentials proxy_auth;
};

}  // namespace llm_proxy

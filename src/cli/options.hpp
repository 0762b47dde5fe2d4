#pragma once
// What the command line collects before a subcommand runs.

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/addons/llm_observer.hpp"
#include "llm_proxy/proxy/config.hpp"

namespace llm_proxy::cli {

struct global_options {
    std::string listen = "127.0.0.1:8080";
    std::string ca_dir;  // empty: ~/.mitmproxy
    bool skip_upstream_tls_verify = false;
    bool no_http_upgrader = false;
    bool verbose = false;
    bool debug = false;
    std::string upstream_ca;
    std::vector<std::string> connect_to;
    std::string upstream_proxy;     // http://[user:pass@]host:port
    std::string upstream_no_proxy;  // comma-separated hosts, .suffixes, IPs, CIDRs, *
    // Reverse (base-URL) mode
    std::vector<std::string> reverse;  // "[PREFIX=]URL"
    bool reverse_forwarded_for = false;
    std::string reverse_tls_cert;
    std::string reverse_tls_key;
    unsigned threads = 0;
    double idle_timeout_s = 60;
    double upstream_timeout_s = 600;
    double connect_timeout_s = 10;
    double shutdown_grace_s = 10;
    std::size_t max_idle_upstream = 64;
    std::size_t max_connections = 0;
    // LLM traffic
    std::vector<std::string> llm_hosts;  // "HOST=openai|anthropic|google"
    std::string prices_file;             // --prices
    bool inject_usage = false;
    bool no_llm = false;  // --no-llm: no LLM observer
    // Selective interception
    std::vector<std::string> allow_hosts;   // --allow-hosts REGEX
    std::vector<std::string> ignore_hosts;  // --ignore-hosts REGEX
    std::string intercept = "all";          // --intercept all|llm
    bool log_tunnels = false;
    double tunnel_idle_timeout_s = 600;
    double tunnel_half_closed_timeout_s = 60;
    // Proxy authentication
    std::vector<std::string> proxy_auth;  // USER:PASS
    std::string proxy_auth_file;
    bool allow_open_proxy = false;
    // Prometheus metrics: "" (off) or the address of the /metrics listener
    std::string metrics_listen;
    // OpenTelemetry spans (also from the standard OTEL_* variables; see otlp_settings.cpp)
    std::string otlp_endpoint;              // "" (off) or the collector's base URL
    std::vector<std::string> otlp_headers;  // KEY=VALUE
    bool otlp_content = false;
    std::string otlp_compression;  // "" (from OTEL_EXPORTER_OTLP_COMPRESSION), none, gzip
    std::string otlp_protocol;   // "" (from OTEL_EXPORTER_OTLP_PROTOCOL), http/json, http/protobuf
    std::string otlp_spool_dir;  // "" : ~/.local/state/llm_proxy/otlp-spool
    double otlp_spool_mib = 64;
    // The web view (--web): "" (off) or its address; --web-token ("random": one is made up)
    std::string web;
    std::string web_token;
};

// Each subcommand sets `run`; main calls it after parsing.
struct cli_state {
    global_options global;
    std::function<int()> run;
};

// Adds addons of the subcommand after the built-in ones and serves until shutdown.
// Returns the process exit code.
using addon_factory = std::function<void(addon_chain&)>;
int run_proxy(const global_options& options, const addon_factory& add_addons);

std::string version_text();

// Parses "host:port", "[v6]:port", ":port" (all interfaces) or "port" into the config.
// Throws std::invalid_argument with a message for the user.
void parse_listen(const std::string& text, proxy_config& config);

// The same for any listen flag; messages name `flag`.
struct listen_address {
    std::string host;
    std::uint16_t port = 0;
};
listen_address parse_listen_address(const std::string& text, const std::string& flag);

// "~/x" -> "$HOME/x".
std::filesystem::path expand_home(const std::string& path);

// Builds the LLM observer's options from the global flags (host mappings, price table).
// Throws std::invalid_argument.
addons::llm_observer_options make_observer_options(const global_options& options);

// The interception filter of --allow-hosts / --ignore-hosts / --intercept. Throws
// std::invalid_argument (both lists given, a bad regular expression).
host_filter make_host_filter(const global_options& options);

// The credentials of --proxy-auth and --proxy-auth-file (empty without them). Throws
// std::invalid_argument.
proxy_credentials make_proxy_credentials(const global_options& options);

// Builds the engine configuration from the global flags. Throws std::invalid_argument.
proxy_config make_proxy_config(const global_options& options);

}  // namespace llm_proxy::cli

#include <openssl/opensslv.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/version.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>

#include "cli/options.hpp"
#include "cli/otlp_settings.hpp"
#include "cli/prices_source.hpp"
#include "cli/web_view.hpp"
#include "llm_proxy/addons/dir_logger.hpp"
#include "llm_proxy/addons/llm_observer.hpp"
#include "llm_proxy/addons/metrics_recorder.hpp"
#include "llm_proxy/addons/otlp_recorder.hpp"
#include "llm_proxy/addons/scheme_upgrader.hpp"
#include "llm_proxy/addons/terminal_logger.hpp"
#include "llm_proxy/llm/recognise.hpp"
#include "llm_proxy/metrics/endpoint.hpp"
#include "llm_proxy/metrics/registry.hpp"
#include "llm_proxy/proxy/server.hpp"
#include "llm_proxy/tls/certificate_authority.hpp"
#include "llm_proxy/util/authority.hpp"

namespace llm_proxy::cli {

namespace {

std::chrono::milliseconds seconds(double s) {
    return std::chrono::milliseconds(static_cast<long long>(s * 1000.0));
}

std::filesystem::path default_ca_dir() {
    const char* home = std::getenv("HOME");
    return std::filesystem::path(home && *home ? home : ".") / ".mitmproxy";
}

void setup_logging(const global_options& g) {
    spdlog::drop("llm_proxy");
    auto logger = spdlog::stderr_color_mt("llm_proxy");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_level(g.debug ? spdlog::level::debug : spdlog::level::info);
    spdlog::flush_on(spdlog::level::trace);
}

// Says why `text` is no listen address. The message names the part at fault as splitting at
// "]:" or at the last ':' finds it.
[[noreturn]] void reject_listen(const std::string& text, const std::string& flag) {
    std::string host;
    std::string port_text;
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            throw std::invalid_argument(flag + ": expected [IPv6]:PORT, got '" + text + "'");
        }
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        host = text.substr(0, colon);
        port_text = colon == std::string::npos ? std::string() : text.substr(colon + 1);
    }
    if (!parse_port(port_text)) {
        throw std::invalid_argument(flag + ": bad port '" + port_text + "' in '" + text + "'");
    }
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(host, ec);
    if (ec) {
        throw std::invalid_argument(flag + ": '" + host + "' is not an IP address");
    }
    if (address.is_v6() && text.front() != '[') {
        throw std::invalid_argument(flag + ": write the IPv6 address in brackets: [" + host +
                                    "]:" + port_text);
    }
    throw std::invalid_argument(flag + ": expected HOST:PORT, [IPv6]:PORT, :PORT or PORT, got '" +
                                text + "'");
}

// A file the user named, expanded and checked to be readable now (not at the first client).
std::filesystem::path readable_file(std::string_view flag, const std::string& text) {
    auto path = expand_home(text);
    std::ifstream in(path, std::ios::binary);
    std::error_code ec;
    if (!in || std::filesystem::is_directory(path, ec)) {
        throw std::invalid_argument(std::string(flag) + ": cannot read '" + path.string() + "'");
    }
    return path;
}

bool is_loopback(const std::string& host) {
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(host, ec);
    return !ec && address.is_loopback();
}

// Gauges and counters kept by the engine and the record writers, read at each scrape.
void add_engine_metrics(metrics::registry& registry, const proxy::server& server,
                        const addon_chain& chain) {
    registry.add_callback(
        "llm_proxy_client_connections", "gauge", "Open client connections",
        [&server] { return static_cast<double>(server.stats().client_connections); });
    registry.add_callback("llm_proxy_tunnels", "gauge",
                          "Blind (not intercepted) CONNECT tunnels being relayed",
                          [&server] { return static_cast<double>(server.stats().tunnels); });
    registry.add_callback("llm_proxy_upstream_idle_connections", "gauge",
                          "Idle keep-alive connections to upstreams, over all workers' pools",
                          [&server] { return static_cast<double>(server.stats().upstream_idle); });
    std::vector<std::shared_ptr<record::record_writer>> writers;
    for (const auto& a : chain.addons()) {
        if (auto logger = std::dynamic_pointer_cast<addons::dir_logger>(a)) {
            writers.push_back(logger->writer());
        }
    }
    if (writers.empty()) {
        return;
    }
    auto sum = [writers](std::uint64_t (record::record_writer::*get)() const) {
        return [writers, get] {
            std::uint64_t n = 0;
            for (const auto& w : writers) {
                n += ((*w).*get)();
            }
            return static_cast<double>(n);
        };
    };
    registry.add_callback("llm_proxy_records_written_total", "counter", "Records written",
                          sum(&record::record_writer::written));
    registry.add_callback("llm_proxy_records_failed_total", "counter",
                          "Records that could not be written", sum(&record::record_writer::failed));
    registry.add_callback("llm_proxy_records_queued", "gauge",
                          "Records waiting for the writer thread",
                          sum(&record::record_writer::queued));
}

void add_otlp_metrics(metrics::registry& registry,
                      const std::shared_ptr<otlp::exporter>& exporter) {
    auto read = [exporter](std::uint64_t otlp::exporter_stats::*field) {
        return [exporter, field] { return static_cast<double>(exporter->stats().*field); };
    };
    registry.add_callback("llm_proxy_otlp_spans_exported_total", "counter",
                          "Spans the OTLP collector took",
                          read(&otlp::exporter_stats::exported_spans));
    registry.add_callback("llm_proxy_otlp_spans_dropped_total", "counter",
                          "Spans dropped: queue or spool full, or refused by the collector",
                          read(&otlp::exporter_stats::dropped_spans));
    registry.add_callback("llm_proxy_otlp_exports_failed_total", "counter",
                          "OTLP exports that failed (retried later, or dropped when refused)",
                          read(&otlp::exporter_stats::failed_exports));
    registry.add_callback("llm_proxy_otlp_spans_queued", "gauge",
                          "Spans waiting for the OTLP exporter thread",
                          read(&otlp::exporter_stats::queued_spans));
    registry.add_callback("llm_proxy_otlp_spans_without_content_total", "counter",
                          "Spans sent without their message content (--otlp-content): too many "
                          "flows with content waited for the exporter thread",
                          read(&otlp::exporter_stats::spans_without_content));
    registry.add_callback("llm_proxy_otlp_spans_spooled", "gauge",
                          "Spans waiting in the spool for the collector",
                          read(&otlp::exporter_stats::spooled_spans));
    registry.add_callback("llm_proxy_otlp_spool_bytes", "gauge", "Bytes in the OTLP spool",
                          read(&otlp::exporter_stats::spooled_bytes));
}

}  // namespace

proxy_credentials make_proxy_credentials(const global_options& g) {
    proxy_credentials c;
    for (const auto& credentials : g.proxy_auth) {
        c.add(credentials);
    }
    if (!g.proxy_auth_file.empty()) {
        c.add_file(expand_home(g.proxy_auth_file));
    }
    return c;
}

host_filter make_host_filter(const global_options& g) {
    if (!g.allow_hosts.empty() && !g.ignore_hosts.empty()) {
        throw std::invalid_argument(
            "--allow-hosts and --ignore-hosts cannot be combined (as in mitmproxy): give one");
    }
    if (g.intercept == "llm") {
        if (!g.allow_hosts.empty() || !g.ignore_hosts.empty()) {
            throw std::invalid_argument(
                "--intercept llm cannot be combined with --allow-hosts or --ignore-hosts");
        }
        std::vector<std::string> hosts = {"api.openai.com", "api.anthropic.com",
                                          "generativelanguage.googleapis.com"};
        llm::host_map mapped;
        for (const auto& spec : g.llm_hosts) {
            if (auto problem = llm::parse_host_mapping(spec, mapped)) {
                throw std::invalid_argument("--llm-host '" + spec + "': " + *problem);
            }
        }
        for (const auto& e : mapped.entries) {
            hosts.push_back(e.host);
        }
        return host_filter::allow_hosts_exactly(hosts);
    }
    if (g.intercept != "all") {
        throw std::invalid_argument("--intercept: expected all or llm, got '" + g.intercept + "'");
    }
    if (!g.allow_hosts.empty()) {
        return host_filter(host_filter::mode::allow, g.allow_hosts, "--allow-hosts");
    }
    return host_filter(host_filter::mode::ignore, g.ignore_hosts, "--ignore-hosts");
}

std::filesystem::path expand_home(const std::string& p) {
    if (p == "~" || p.starts_with("~/")) {
        const char* home = std::getenv("HOME");
        return std::filesystem::path(home ? home : ".") / p.substr(p.size() > 1 ? 2 : 1);
    }
    return p;
}

std::string version_text() {
    return std::string("llm_proxy ") + LLM_PROXY_VERSION + " (" + LLM_PROXY_BUILD_TYPE +
           " build)\n" + OPENSSL_VERSION_TEXT + "\nBoost " +
           std::to_string(BOOST_VERSION / 100000) + "." +
           std::to_string(BOOST_VERSION / 100 % 1000) + "." + std::to_string(BOOST_VERSION % 100);
}

listen_address parse_listen_address(const std::string& text, const std::string& flag) {
    std::string host;
    std::string unzoned;  // what port_text may point into
    std::string_view port_text;
    if (text.find_first_of(":[") == std::string::npos) {
        host = "127.0.0.1";  // "8080": a port on the loopback interface
        port_text = text;
    } else {
        // Boost.URL knows no IPv6 zone ("[fe80::1%eth0]"), which asio accepts: set it aside.
        std::string_view authority = text;
        std::string_view zone;
        auto close = text.find(']');
        auto pct = text.find('%');
        if (text.front() == '[' && close != std::string::npos && pct < close) {
            zone = std::string_view(text).substr(pct, close - pct);
            unzoned = text.substr(0, pct) + text.substr(close);
            authority = unzoned;
        }
        auto parts = split_host_port(authority);
        if (!parts || !parts->has_port) {
            reject_listen(text, flag);
        }
        host = parts->host + std::string(zone);
        port_text = parts->port;
        if (host.empty()) {
            host = "0.0.0.0";  // ":8080" means every interface, as in Go
        }
    }
    if (host == "localhost") {
        host = "127.0.0.1";
    }
    auto port = parse_port(port_text);
    if (!port) {
        throw std::invalid_argument(flag + ": bad port '" + std::string(port_text) + "' in '" +
                                    text + "'");
    }
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (ec) {
        throw std::invalid_argument(flag + ": '" + host + "' is not an IP address");
    }
    return {host, *port};
}

void parse_listen(const std::string& text, proxy_config& config) {
    auto a = parse_listen_address(text, "--listen");
    config.listen_host = std::move(a.host);
    config.listen_port = a.port;
}

proxy_config make_proxy_config(const global_options& g) {
    proxy_config c;
    parse_listen(g.listen, c);
    c.ca_dir = g.ca_dir.empty() ? default_ca_dir() : expand_home(g.ca_dir);
    c.skip_upstream_tls_verify = g.skip_upstream_tls_verify;
    if (!g.upstream_ca.empty()) {
        c.upstream_ca = expand_home(g.upstream_ca);
    }
    for (const auto& rule : g.connect_to) {
        c.connect_to.push_back(parse_connect_to(rule));
    }
    if (!g.upstream_proxy.empty()) {
        c.upstream_proxy = parse_parent_proxy(g.upstream_proxy);
    }
    c.upstream_no_proxy = no_proxy_list::parse(g.upstream_no_proxy);
    if (!c.upstream_proxy && !c.upstream_no_proxy.empty()) {
        throw std::invalid_argument("--upstream-no-proxy needs --upstream-proxy");
    }
    c.reverse = parse_reverse_routes(g.reverse);
    c.reverse_forwarded_for = g.reverse_forwarded_for;
    if (g.reverse_tls_cert.empty() != g.reverse_tls_key.empty()) {
        throw std::invalid_argument("--reverse-tls-cert and --reverse-tls-key go together");
    }
    if (!g.reverse_tls_cert.empty()) {
        c.reverse_tls_cert = readable_file("--reverse-tls-cert", g.reverse_tls_cert);
        c.reverse_tls_key = readable_file("--reverse-tls-key", g.reverse_tls_key);
    }
    c.threads = g.threads;
    c.client_idle_timeout = seconds(g.idle_timeout_s);
    c.upstream_timeout = seconds(g.upstream_timeout_s);
    c.connect_timeout = seconds(g.connect_timeout_s);
    c.shutdown_grace = seconds(g.shutdown_grace_s);
    c.max_idle_upstream = g.max_idle_upstream;
    c.max_connections = g.max_connections;
    c.tunnel_idle_timeout = seconds(g.tunnel_idle_timeout_s);
    c.tunnel_half_closed_timeout = seconds(g.tunnel_half_closed_timeout_s);
    c.log_tunnels = g.log_tunnels;
    c.intercept = make_host_filter(g);
    c.proxy_auth = make_proxy_credentials(g);
    if (!is_loopback(c.listen_host) && !c.proxy_auth.enabled() && !g.allow_open_proxy) {
        throw std::invalid_argument(
            "--listen " + g.listen +
            " is not a loopback address: anyone who reaches it could use this proxy. Require "
            "credentials with --proxy-auth or --proxy-auth-file, or pass --allow-open-proxy");
    }
    return c;
}

addons::llm_observer_options make_observer_options(const global_options& g) {
    addons::llm_observer_options o;
    for (const auto& spec : g.llm_hosts) {
        if (auto problem = llm::parse_host_mapping(spec, o.hosts)) {
            throw std::invalid_argument("--llm-host '" + spec + "': " + *problem);
        }
    }
    auto prices = load_prices(g.prices_file);
    spdlog::debug("prices: {}", prices.origin);
    o.prices = std::move(prices.table);
    o.inject_usage = g.inject_usage;
    return o;
}

int run_proxy(const global_options& g, const addon_factory& add_addons) {
    setup_logging(g);
    proxy_config config;
    addons::llm_observer_options observer;
    std::optional<listen_address> metrics_at;
    std::optional<otlp::exporter_options> otlp_options;
    try {
        config = make_proxy_config(g);
        if (g.no_llm && g.inject_usage) {
            throw std::invalid_argument("--inject-usage needs the LLM observer: drop --no-llm");
        }
        if (!g.no_llm) {
            observer = make_observer_options(g);
        }
        otlp_options = make_otlp_options(g, process_env());
        if (!g.metrics_listen.empty()) {
            metrics_at = parse_listen_address(g.metrics_listen, "--metrics-listen");
        }
        check_web_options(g);
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy: " << e.what() << "\n";
        return 2;
    }
    try {
        auto ca = tls::certificate_authority::load_or_create(config.ca_dir);
        switch (ca->origin()) {
            case tls::ca_origin::created:
                spdlog::info("created a new CA in {}; trust {} in your clients",
                             config.ca_dir.string(), ca->cert_pem_path().string());
                break;
            default:
                spdlog::info("loaded CA from {}", config.ca_dir.string());
        }
        if (config.skip_upstream_tls_verify) {
            spdlog::warn(
                "!!! --skip-upstream-tls-verify: upstream certificates are NOT verified; anyone "
                "on the network path can read and change this traffic !!!");
        }
        if (config.upstream_proxy) {
            // Never the credentials: they are for the parent only.
            spdlog::info("upstream connections go through the proxy {}{}",
                         config.upstream_proxy->authority(),
                         config.upstream_proxy->has_credentials ? " (with credentials)" : "");
        }
        auto chain = std::make_shared<addon_chain>();
        if (!g.no_http_upgrader) {
            chain->add(std::make_shared<addons::scheme_upgrader>());
        }
        if (!g.no_llm) {
            chain->add(std::make_shared<addons::llm_observer>(std::move(observer)));
        }
        add_addons(*chain);
        if (g.verbose || g.debug) {
            chain->add(std::make_shared<addons::terminal_logger>());
        }
        std::shared_ptr<otlp::exporter> otlp_exporter;
        if (otlp_options) {
            otlp_exporter = std::make_shared<otlp::exporter>(std::move(*otlp_options));
            chain->add(std::make_shared<addons::otlp_recorder>(otlp_exporter));
            const auto& o = otlp_exporter->options();
            spdlog::info("sending OpenTelemetry spans to {}{}; spool: {}", o.url,
                         o.spans.content ? " (with prompts and answers)" : "",
                         o.spool_bytes == 0    ? std::string("none")
                         : o.spool_dir.empty() ? "memory"
                                               : o.spool_dir.string());
        }
        auto web_view = start_web_view(g, *chain);
        std::shared_ptr<metrics::registry> registry;
        if (metrics_at) {
            registry = std::make_shared<metrics::registry>();
            chain->add(std::make_shared<addons::metrics_recorder>(registry));
        }
        proxy::server server(config, chain, ca);
        std::unique_ptr<metrics::endpoint> metrics_endpoint;
        if (registry) {
            add_engine_metrics(*registry, server, *chain);
            if (otlp_exporter) {
                add_otlp_metrics(*registry, otlp_exporter);
            }
            metrics_endpoint =
                std::make_unique<metrics::endpoint>(registry, metrics_at->host, metrics_at->port);
            auto ep = metrics_endpoint->local_endpoint();
            auto a = ep.address();
            spdlog::info("metrics listening on {}", endpoint_text(ep));
            if (!a.is_loopback()) {
                spdlog::warn(
                    "--metrics-listen {} is not a loopback address: anyone who reaches "
                    "it can read the metrics (hosts, models, costs)",
                    g.metrics_listen);
            }
        }
        server.run();
        if (metrics_endpoint) {
            metrics_endpoint->stop();  // before the server it reads goes away
        }
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        spdlog::shutdown();
        return 2;
    }
    spdlog::shutdown();
    return 0;
}

}  // namespace llm_proxy::cli

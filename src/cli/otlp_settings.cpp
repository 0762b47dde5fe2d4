#include "cli/otlp_settings.hpp"

#include <charconv>
#include <cstdlib>
#include <stdexcept>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::cli {

namespace {

// The traces-specific variable, else the general one.
std::optional<std::string> otel(const env_reader& env, const char* traces, const char* general) {
    if (auto v = env(traces); v && !v->empty()) {
        return v;
    }
    if (auto v = env(general); v && !v->empty()) {
        return v;
    }
    return std::nullopt;
}

std::uint64_t positive_number(const std::string& name, const std::string& value) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || p != value.data() + value.size() || n == 0) {
        throw std::invalid_argument(name + "='" + value + "' is not a positive whole number");
    }
    return n;
}

std::filesystem::path default_spool_dir(const env_reader& env) {
    if (auto x = env("XDG_STATE_HOME"); x && !x->empty() && (*x)[0] == '/') {
        return std::filesystem::path(*x) / "llm_proxy" / "otlp-spool";
    }
    if (auto home = env("HOME"); home && !home->empty()) {
        return std::filesystem::path(*home) / ".local" / "state" / "llm_proxy" / "otlp-spool";
    }
    return {};
}

}  // namespace

env_reader process_env() {
    return [](const char* name) -> std::optional<std::string> {
        if (const char* v = std::getenv(name)) {
            return std::string(v);
        }
        return std::nullopt;
    };
}

std::optional<otlp::exporter_options> make_otlp_options(const global_options& g,
                                                        const env_reader& env) {
    otlp::exporter_options o;
    std::string given;  // the value as the user wrote it, for messages
    if (!g.otlp_endpoint.empty()) {
        given = g.otlp_endpoint;
        o.url = otlp::traces_url(g.otlp_endpoint);
    } else {
        if (auto disabled = env("OTEL_SDK_DISABLED"); disabled && iequals(*disabled, "true")) {
            return std::nullopt;
        }
        if (auto v = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v && !v->empty()) {
            given = *v;
            o.url = *v;  // used as it is, as the specification says
        } else if (auto base = env("OTEL_EXPORTER_OTLP_ENDPOINT"); base && !base->empty()) {
            given = *base;
            o.url = otlp::traces_url(*base);
        } else {
            return std::nullopt;
        }
    }
    const std::string flag_or_env =
        g.otlp_endpoint.empty() ? "OTEL_EXPORTER_OTLP_ENDPOINT" : "--otlp-endpoint";
    if (!otlp::is_http_url(o.url)) {
        throw std::invalid_argument(flag_or_env + " '" + given +
                                    "' is not an http:// or https:// URL");
    }
    std::string protocol = g.otlp_protocol;
    if (protocol.empty()) {
        protocol = otel(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
                       .value_or("http/json");
    }
    if (protocol == "grpc") {
        throw std::invalid_argument(
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: llm_proxy sends OTLP over HTTP (http/json or "
            "http/protobuf); point it at the collector's HTTP port (4318 by default)");
    }
    if (protocol != "http/json" && protocol != "http/protobuf") {
        throw std::invalid_argument("OTEL_EXPORTER_OTLP_PROTOCOL='" + protocol +
                                    "': http/json or http/protobuf");
    }
    o.protobuf = protocol == "http/protobuf";
    for (const char* var : {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}) {
        if (auto v = env(var); v && !v->empty()) {
            try {
                for (auto& h : otlp::parse_headers(*v)) {
                    o.headers.push_back(std::move(h));
                }
            } catch (const std::invalid_argument& e) {
                throw std::invalid_argument(std::string(var) + ": " + e.what());
            }
        }
    }
    for (const auto& h : g.otlp_headers) {
        auto eq = h.find('=');
        if (eq == std::string::npos || eq == 0) {
            throw std::invalid_argument("--otlp-header '" + h + "' is not KEY=VALUE");
        }
        try {
            auto parsed = otlp::parse_headers(h.substr(0, eq) + "=" + h.substr(eq + 1));
            o.headers.insert(o.headers.end(), parsed.begin(), parsed.end());
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("--otlp-header: " + std::string(e.what()));
        }
    }
    std::string compression = g.otlp_compression;
    if (compression.empty()) {
        compression =
            otel(env, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
                .value_or("none");
    }
    if (compression != "none" && compression != "gzip") {
        throw std::invalid_argument("OTEL_EXPORTER_OTLP_COMPRESSION='" + compression +
                                    "': none or gzip");
    }
    o.gzip = compression == "gzip";
    if (auto t = otel(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")) {
        o.timeout = std::chrono::milliseconds(positive_number("OTEL_EXPORTER_OTLP_TIMEOUT", *t));
    }
    if (auto v = env("OTEL_BSP_SCHEDULE_DELAY"); v && !v->empty()) {
        o.batch_delay = std::chrono::milliseconds(positive_number("OTEL_BSP_SCHEDULE_DELAY", *v));
    }
    if (auto v = env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"); v && !v->empty()) {
        o.max_batch = positive_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", *v);
    }
    if (auto v = env("OTEL_BSP_MAX_QUEUE_SIZE"); v && !v->empty()) {
        o.max_queue = positive_number("OTEL_BSP_MAX_QUEUE_SIZE", *v);
    }
    if (auto v = env("OTEL_BSP_EXPORT_TIMEOUT"); v && !v->empty()) {
        o.shutdown_timeout =
            std::chrono::milliseconds(positive_number("OTEL_BSP_EXPORT_TIMEOUT", *v));
    }
    o.resource = otlp::make_resource(env("OTEL_SERVICE_NAME").value_or(""),
                                     env("OTEL_RESOURCE_ATTRIBUTES").value_or(""));
    o.spans.content = g.otlp_content;
    o.spool_bytes = static_cast<std::uint64_t>(g.otlp_spool_mib * 1024 * 1024);
    o.spool_dir =
        g.otlp_spool_dir.empty() ? default_spool_dir(env) : std::filesystem::path(g.otlp_spool_dir);
    if (!g.upstream_ca.empty()) {
        o.extra_ca = g.upstream_ca;
    }
    return o;
}

}  // namespace llm_proxy::cli

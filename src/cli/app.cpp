#include "cli/app.hpp"

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "cli/subcommand.hpp"

namespace llm_proxy::cli {

namespace {

// The original tool's docs spell the flag "-ca_dir" (Go accepts one dash for long flags).
std::vector<std::string> normalize_args(int argc, char** argv) {
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-ca_dir" || a.starts_with("-ca_dir=")) {
            a = "-" + a;
        }
        args.push_back(std::move(a));
    }
    return args;
}

// The first word that is neither an option nor an option's value (args are reversed).
std::string first_positional(const CLI::App& app, const std::vector<std::string>& reversed) {
    for (auto it = reversed.rbegin(); it != reversed.rend(); ++it) {
        if (it->starts_with("-")) {
            const CLI::Option* opt = app.get_option_no_throw(*it);
            if (opt != nullptr && opt->get_type_size() != 0) {  // takes a value
                ++it;
                if (it == reversed.rend()) {
                    break;
                }
            }
            continue;
        }
        return *it;
    }
    return {};
}

std::string known_subcommands() {
    std::string out;
    for (const auto* s : registered_subcommands()) {
        out += (out.empty() ? "" : ", ") + s->name;
    }
    return "Known subcommands: " + out + ". Run 'llm_proxy --help'.\n";
}

// Adds a registered subcommand; its callback sets what main runs.
void add_subcommand(CLI::App& app, cli_state& state, const subcommand& s) {
    auto* cmd = app.add_subcommand(s.name, s.description);
    for (const auto& alias : s.aliases) {
        cmd->alias(alias);
    }
    if (!s.footer.empty()) {
        cmd->footer(s.footer);
    }
    if (s.command) {
        auto run = std::make_shared<std::function<int()>>(s.command(*cmd, state.global));
        cmd->callback([&state, run] { state.run = *run; });
        return;
    }
    if (!s.setup) {
        cmd->callback([&state, &s] { state.run = s.run; });
        return;
    }
    auto records = std::make_shared<dir_logger_options>();
    records->output = s.default_output;
    add_dir_logger_options(cmd, *records, s.output_help);
    auto add_addons = std::make_shared<addon_factory>(s.setup(*cmd, *records));
    cmd->callback([&state, records, add_addons] {
        state.run = [&state, records, add_addons] {
            return run_proxy(state.global, [records, add_addons](addon_chain& chain) {
                (*add_addons)(chain);
                if (!records->output.empty()) {
                    chain.add(make_dir_logger(*records));
                }
            });
        };
    });
}

void add_global_options(CLI::App& app, global_options& g) {
    app.add_option("-l,--listen", g.listen, "Address to listen on (host:port)")
        ->capture_default_str();
    app.add_option("-c,--ca_dir", g.ca_dir,
                   "Directory of the CA used for TLS interception (default ~/.mitmproxy)");
    app.add_flag("-K,--skip-upstream-tls-verify", g.skip_upstream_tls_verify,
                 "Do not verify upstream TLS certificates (insecure)");
    app.add_flag(
        "--no-http-upgrader", g.no_http_upgrader,
        "Keep plain http:// requests on plain HTTP upstream instead of upgrading to https");
    app.add_flag("-v,--verbose", g.verbose, "Print one line per request to stderr");
    app.add_flag("-d,--debug", g.debug, "Print connection and TLS events to stderr");
    app.add_option("--upstream-ca", g.upstream_ca,
                   "PEM bundle trusted for upstream servers, in addition to the system store")
        ->check(CLI::ExistingFile);
    app.add_option("--connect-to", g.connect_to,
                   "HOST:PORT:HOST2:PORT2 - connect to HOST2:PORT2 for HOST:PORT, still verifying "
                   "the certificate for HOST (repeatable, as curl's --connect-to)")
        ->allow_extra_args(false);
    app.add_option("--upstream-proxy", g.upstream_proxy,
                   "http://[user:pass@]host:port - send all upstream traffic through this HTTP "
                   "proxy (CONNECT for https, absolute-form for http); HTTP_PROXY/HTTPS_PROXY "
                   "are never read");
    app.add_option("--upstream-no-proxy", g.upstream_no_proxy,
                   "LIST - hosts that bypass --upstream-proxy: comma-separated names, .suffix or "
                   "*.suffix, IP addresses, CIDRs (10.0.0.0/8, fd00::/8), * for all");
    app.add_option("--reverse", g.reverse,
                   "[PREFIX=]URL - also accept plain requests to the proxy itself (a client's "
                   "base URL) and send them to URL; the longest matching PREFIX wins and is "
                   "stripped (repeatable, e.g. /anthropic=https://api.anthropic.com)")
        ->allow_extra_args(false);
    app.add_flag("--reverse-forwarded-for", g.reverse_forwarded_for,
                 "Append the client address to X-Forwarded-For on --reverse requests");
    app.add_option("--reverse-tls-cert", g.reverse_tls_cert,
                   "PEM certificate (chain) to serve the listener over TLS as well (with "
                   "--reverse-tls-key; plain HTTP keeps working on the same port)");
    app.add_option("--reverse-tls-key", g.reverse_tls_key, "PEM private key of --reverse-tls-cert");
    app.add_option("--threads", g.threads, "Worker threads (default: one per core)")
        ->check(CLI::Range(0u, 256u));
    app.add_option("--idle-timeout", g.idle_timeout_s,
                   "Seconds an idle client connection is kept open")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--upstream-timeout", g.upstream_timeout_s,
                   "Seconds to wait for the upstream's next bytes before answering 504")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--connect-timeout", g.connect_timeout_s,
                   "Seconds for DNS + TCP + TLS to an upstream")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--shutdown-grace", g.shutdown_grace_s,
                   "Seconds in-flight requests get to finish on SIGINT/SIGTERM")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--max-idle-upstream", g.max_idle_upstream,
                   "Idle upstream keep-alive connections kept per worker thread, over all hosts "
                   "(at most 16 per host)")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{0}, std::size_t{100000}));
    app.add_option("--max-connections", g.max_connections,
                   "Client connections open at once; more wait in the listen backlog until one "
                   "closes (default: derived from the descriptor limit, which the proxy raises "
                   "to its hard maximum)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}));
    app.add_option("--llm-host", g.llm_hosts,
                   "HOST=openai|anthropic|google - read this host's calls with that API's rules "
                   "(Azure OpenAI, OpenRouter, Groq, vLLM, Ollama...; repeatable)")
        ->allow_extra_args(false);
    app.add_option("--prices", g.prices_file,
                   "Price table (genai-prices v2 JSON) instead of the one from 'llm_proxy prices "
                   "update' or the built-in one");
    app.add_flag("--no-llm", g.no_llm,
                 "Do not read LLM API calls: records get no llm object, and no tokens or cost "
                 "are counted (verbose line, metrics, spans); raw HTTP only");
    app.add_option("--allow-hosts", g.allow_hosts,
                   "REGEX - intercept only CONNECTs whose host:port or TLS server name (SNI) "
                   "matches; the others are relayed blind (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--ignore-hosts", g.ignore_hosts,
                   "REGEX - relay CONNECTs whose host:port or TLS server name matches blind, "
                   "without interception; plain-HTTP requests to them go unlogged (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--intercept", g.intercept,
                   "all: intercept every connection (default); llm: only the known LLM API "
                   "hosts (OpenAI, Anthropic, Google and every --llm-host)")
        ->capture_default_str()
        ->check(CLI::IsMember({"all", "llm"}));
    app.add_flag("--log-tunnels", g.log_tunnels,
                 "Write one record per blind tunnel (host, port, bytes, duration, how it ended)");
    app.add_option("--tunnel-idle-timeout", g.tunnel_idle_timeout_s,
                   "Seconds a blind tunnel may pass no byte either way before it is closed")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--tunnel-half-closed-timeout", g.tunnel_half_closed_timeout_s,
                   "Seconds a blind tunnel one of whose sides has finished sending may pass no "
                   "byte before it is closed")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--proxy-auth", g.proxy_auth,
                   "USER:PASS - require these proxy credentials (Basic; repeatable)")
        ->allow_extra_args(false);
    app.add_option("--proxy-auth-file", g.proxy_auth_file,
                   "File of user:password lines accepted as proxy credentials ('#' comments)");
    app.add_option("--metrics-listen", g.metrics_listen,
                   "HOST:PORT - serve Prometheus metrics at http://HOST:PORT/metrics (e.g. "
                   "127.0.0.1:9464; port 0: any free port, logged at start)");
    app.add_option("--otlp-endpoint", g.otlp_endpoint,
                   "URL - send one OpenTelemetry span per flow to this OTLP/HTTP collector "
                   "(e.g. http://127.0.0.1:4318; default: OTEL_EXPORTER_OTLP_ENDPOINT)");
    app.add_option("--otlp-header", g.otlp_headers,
                   "KEY=VALUE - a header for the collector, e.g. Authorization (repeatable; "
                   "added to OTEL_EXPORTER_OTLP_HEADERS)")
        ->allow_extra_args(false);
    app.add_flag("--otlp-content", g.otlp_content,
                 "Put prompts and answers in the spans (gen_ai.input.messages, "
                 "gen_ai.output.messages)");
    app.add_option("--otlp-compression", g.otlp_compression,
                   "none or gzip (default: OTEL_EXPORTER_OTLP_COMPRESSION, else none)")
        ->check(CLI::IsMember({"none", "gzip"}));
    app.add_option("--otlp-protocol", g.otlp_protocol,
                   "http/json or http/protobuf (default: OTEL_EXPORTER_OTLP_PROTOCOL, else "
                   "http/json)")
        ->check(CLI::IsMember({"http/json", "http/protobuf"}));
    app.add_option("--otlp-spool-dir", g.otlp_spool_dir,
                   "Directory that keeps spans the collector has not taken, across restarts "
                   "(default: ~/.local/state/llm_proxy/otlp-spool)");
    app.add_option("--otlp-spool-mib", g.otlp_spool_mib,
                   "MiB of spans kept while the collector is down; the oldest go past it (0: "
                   "none)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1048576.0));
    app.add_option("--web", g.web,
                   "HOST:PORT - serve a live web view of the traffic at http://HOST:PORT/ (e.g. "
                   "127.0.0.1:8081; port 0: any free port, logged at start)");
    app.add_option("--web-token", g.web_token,
                   "TOKEN or 'random' - require it from the web view's clients (needed to "
                   "serve it on a non-loopback address, unless --proxy-auth's credentials "
                   "guard it)");
    app.add_flag("--allow-open-proxy", g.allow_open_proxy,
                 "Listen on a non-loopback address without proxy authentication");
    app.add_flag("--inject-usage", g.inject_usage,
                 "Ask for the usage of OpenAI chat streams that do not ask for it, and hide the "
                 "extra usage chunk from the client");
}

}  // namespace

int run_cli(int argc, char** argv) {
    CLI::App app{
        "llm_proxy: a man-in-the-middle forward proxy for LLM API traffic.\n"
        "Point HTTP_PROXY/HTTPS_PROXY at it; every request is forwarded over verified TLS and\n"
        "each request/response pair can be saved as JSON (dir_logger).",
        "llm_proxy"};
    app.set_version_flag("--version", version_text());
    app.fallthrough();
    app.require_subcommand(1);
    cli_state state;
    add_global_options(app, state.global);
    for (const auto* s : registered_subcommands()) {
        add_subcommand(app, state, *s);
    }
    app.footer("Run 'llm_proxy SUBCOMMAND --help' for the options of a subcommand.");

    auto args = normalize_args(argc, argv);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments reversed
    const auto reversed_args = args;         // parse() consumes `args`
    try {
        app.parse(args);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        if (e.get_name() == "RequiredError" && app.get_subcommands().empty()) {
            if (auto word = first_positional(app, reversed_args); !word.empty()) {
                std::cerr << "llm_proxy: unknown subcommand '" << word << "'\n";
            } else {
                std::cerr << "llm_proxy: a subcommand is required\n";
            }
            std::cerr << known_subcommands();
            return 2;
        }
        if (e.get_name() == "ExtrasError" && app.get_subcommands().empty()) {
            std::cerr << "llm_proxy: unknown subcommand or argument: " << e.what() << "\n"
                      << known_subcommands();
            return 2;
        }
        std::cerr << "llm_proxy: " << e.what() << "\nRun 'llm_proxy --help' for usage.\n";
        return 2;
    }
    if (!state.run) {
        return 2;
    }
    return state.run();
}

}  // namespace llm_proxy::cli

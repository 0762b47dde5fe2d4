#include "support/http_client.hpp"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <charconv>
#include <system_error>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

template <class StringView>
std::string to_std(const StringView& sv) {
    return std::string(sv.data(), sv.size());
}

bool has_header(const header_list& headers, std::string_view name) {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const auto& h) { return iequals(h.first, name); });
}

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

template <class Fields>
header_list collect_headers(const Fields& fields) {
    header_list out;
    for (const auto& f : fields) {
        out.emplace_back(to_std(f.name_string()), to_std(f.value()));
    }
    return out;
}

[[noreturn]] void throw_ec(const beast::error_code& ec, const std::string& what) {
    throw std::system_error(ec, what);
}

bool retryable(const beast::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::error::connection_aborted || ec == ssl::error::stream_truncated;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// URLs

std::string parsed_url::authority() const {
    std::string h = is_ipv6() ? "[" + host + "]" : host;
    return h + ":" + std::to_string(port);
}

std::string parsed_url::host_header() const {
    std::string h = is_ipv6() ? "[" + host + "]" : host;
    const std::uint16_t default_port = is_https() ? 443 : 80;
    return port == default_port ? h : h + ":" + std::to_string(port);
}

parsed_url parse_url(std::string_view url) {
    auto bad = [&](const char* why) {
        return std::invalid_argument("bad URL '" + std::string(url) + "': " + why);
    };
    parsed_url out;
    const auto sep = url.find("://");
    if (sep == std::string_view::npos || sep == 0) {
        throw bad("no scheme");
    }
    out.scheme = to_lower(url.substr(0, sep));
    if (out.scheme != "http" && out.scheme != "https") {
        throw bad("scheme must be http or https");
    }
    std::string_view rest = url.substr(sep + 3);
    const auto auth_end = rest.find_first_of("/?#");
    std::string_view auth = rest.substr(0, auth_end);
    std::string_view tail = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);
    if (auto hash = tail.find('#'); hash != std::string_view::npos) {
        tail = tail.substr(0, hash);
    }
    if (auto at = auth.rfind('@'); at != std::string_view::npos) {
        auth = auth.substr(at + 1);
    }
    std::string_view port_text;
    if (!auth.empty() && auth.front() == '[') {
        const auto close = auth.find(']');
        if (close == std::string_view::npos) {
            throw bad("unterminated IPv6 literal");
        }
        out.host = std::string(auth.substr(1, close - 1));
        std::string_view after = auth.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                throw bad("junk after IPv6 literal");
            }
            port_text = after.substr(1);
        }
        if (out.host.find(':') == std::string::npos) {
            throw bad("bracketed host is not IPv6");
        }
    } else {
        const auto colon = auth.find(':');
        out.host = std::string(auth.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = auth.substr(colon + 1);
        }
    }
    if (out.host.empty()) {
        throw bad("empty host");
    }
    out.port = out.is_https() ? 443 : 80;
    if (!port_text.empty()) {
        unsigned value = 0;
        auto [ptr, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc() || ptr != port_text.data() + port_text.size() || value == 0 ||
            value > 65535) {
            throw bad("bad port");
        }
        out.port = static_cast<std::uint16_t>(value);
    }
    if (tail.empty() || tail.front() != '/') {
        out.target = "/" + std::string(tail);
    } else {
        out.target = std::string(tail);
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// response / errors

std::optional<std::string> response::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (iequals(n, name)) {
            return v;
        }
    }
    return std::nullopt;
}

std::vector<std::string> response::header_values(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : headers) {
        if (iequals(n, name)) {
            out.push_back(v);
        }
    }
    return out;
}

proxy_connect_error::proxy_connect_error(unsigned status_, std::string body_, header_list headers_)
    : std::runtime_error("proxy answered CONNECT with status " + std::to_string(status_) +
                         (body_.empty() ? "" : ": " + body_)),
      status(status_),
      body(std::move(body_)),
      headers(std::move(headers_)) {}

// ---------------------------------------------------------------------------------------------
// client

struct http_client::impl {
    client_options opts;
    asio::io_context ioc;
    std::optional<ssl::context> ssl_ctx;
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
    beast::flat_buffer buffer;
    std::string conn_key;
    std::size_t opened = 0;
    std::string peer_pem;
    std::string alpn;

    explicit impl(client_options o) : opts(std::move(o)) {}

    bool via_proxy() const { return opts.proxy_host.has_value(); }

    // Runs one asynchronous operation to completion on the private io_context. Beast applies the
    // stream expiry (expires_after) to asynchronous operations only, so this is what makes the
    // timeouts real: a stall completes the operation with beast::error::timeout.
    template <class Initiate>
    beast::error_code run(Initiate&& initiate) {
        beast::error_code result = asio::error::operation_aborted;
        initiate([&result](beast::error_code e, auto&&...) { result = e; });
        ioc.restart();
        ioc.run();
        return result;
    }

    template <class F>
    decltype(auto) with_stream(F&& f) {
        if (tls) {
            return f(*tls);
        }
        return f(*plain);
    }

    void arm_timer() {
        if (tls) {
            beast::get_lowest_layer(*tls).expires_after(opts.timeout);
        } else if (plain) {
            plain->expires_after(opts.timeout);
        }
    }

    void close() {
        beast::error_code ec;
        if (tls) {
            beast::get_lowest_layer(*tls).socket().close(ec);
        }
        if (plain) {
            plain->socket().close(ec);
        }
        tls.reset();
        plain.reset();
        buffer.clear();
        conn_key.clear();
    }

    ssl::context& tls_context() {
        if (!ssl_ctx) {
            ssl_ctx.emplace(ssl::context::tls_client);
            if (opts.verify_peer) {
                ssl_ctx->set_verify_mode(ssl::verify_peer);
                if (opts.ca_file.empty()) {
                    ssl_ctx->set_default_verify_paths();
                } else {
                    ssl_ctx->load_verify_file(opts.ca_file);
                }
            } else {
                ssl_ctx->set_verify_mode(ssl::verify_none);
            }
        }
        return *ssl_ctx;
    }

    // Returns true when an existing connection is reused.
    bool connect(const parsed_url& u) {
        const std::string key = u.scheme + "://" + u.authority();
        if ((plain || tls) && key == conn_key) {
            return true;
        }
        close();

        std::string host = u.host;
        std::uint16_t port = u.port;
        if (via_proxy()) {
            host = *opts.proxy_host;
            port = opts.proxy_port;
        } else if (opts.connect_host) {
            host = *opts.connect_host;
            port = opts.connect_port ? opts.connect_port : u.port;
        }
        if (!host.empty() && host.front() == '[' && host.back() == ']') {
            host = host.substr(1, host.size() - 2);
        }
        tcp::resolver resolver(ioc);
        beast::error_code ec;
        auto endpoints = resolver.resolve(host, std::to_string(port), ec);
        if (ec) {
            throw_ec(ec, "resolve " + host);
        }
        auto stream = std::make_unique<beast::tcp_stream>(ioc);
        stream->expires_after(opts.timeout);
        ec = run([&](auto handler) { stream->async_connect(endpoints, std::move(handler)); });
        if (ec) {
            throw_ec(ec, "connect " + host + ":" + std::to_string(port));
        }
        ++opened;
        stream->socket().set_option(tcp::no_delay(true), ec);

        if (via_proxy() && u.is_https()) {
            http::request<http::empty_body> req{http::verb::connect, u.authority(), 11};
            req.set(http::field::host, u.authority());
            for (const auto& [n, v] : opts.proxy_headers) {
                req.insert(n, v);
            }
            stream->expires_after(opts.timeout);
            ec = run([&](auto handler) { http::async_write(*stream, req, std::move(handler)); });
            if (ec) {
                throw_ec(ec, "write CONNECT");
            }
            beast::flat_buffer buf;
            http::response_parser<http::string_body> parser;
            stream->expires_after(opts.timeout);
            ec = run([&](auto handler) {
                http::async_read_header(*stream, buf, parser, std::move(handler));
            });
            if (ec) {
                throw_ec(ec, "read CONNECT response");
            }
            const unsigned status = parser.get().result_int();
            if (status / 100 != 2) {
                header_list headers = collect_headers(parser.get().base());
                std::string body;
                if (!parser.is_done() && (parser.content_length() || parser.chunked())) {
                    stream->expires_after(opts.timeout);
                    run([&](auto handler) {
                        http::async_read(*stream, buf, parser, std::move(handler));
                    });
                    body = parser.get().body();
                }
                throw proxy_connect_error(status, std::move(body), std::move(headers));
            }
            if (buf.size() != 0) {
                throw std::runtime_error("proxy sent data after the CONNECT response");
            }
        }

        if (u.is_https()) {
            auto& ctx = tls_context();
            tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*stream), ctx);
            stream.reset();
            SSL* ssl_handle = tls->native_handle();
            const std::string name = opts.tls_host.value_or(u.host);
            if (is_ip_literal(name)) {
                if (opts.verify_peer) {
                    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), name.c_str());
                }
            } else {
                SSL_set_tlsext_host_name(ssl_handle, name.c_str());
                if (opts.verify_peer) {
                    SSL_set1_host(ssl_handle, name.c_str());
                }
            }
            if (!opts.alpn.empty()) {
                std::string wire;
                for (const auto& p : opts.alpn) {
                    wire += static_cast<char>(p.size());
                    wire += p;
                }
                SSL_set_alpn_protos(ssl_handle, reinterpret_cast<const unsigned char*>(wire.data()),
                                    static_cast<unsigned>(wire.size()));
            }
            beast::get_lowest_layer(*tls).expires_after(opts.timeout);
            ec = run([&](auto handler) {
                tls->async_handshake(ssl::stream_base::client, std::move(handler));
            });
            if (ec) {
                std::string what = "TLS handshake with " + name;
                long verify = SSL_get_verify_result(ssl_handle);
                if (verify != X509_V_OK) {
                    what += std::string(" (certificate verify: ") +
                            X509_verify_cert_error_string(verify) + ")";
                }
                close();
                throw_ec(ec, what);
            }
            peer_pem.clear();
            if (X509* cert = SSL_get1_peer_certificate(ssl_handle)) {
                if (BIO* bio = BIO_new(BIO_s_mem())) {
                    PEM_write_bio_X509(bio, cert);
                    char* data = nullptr;
                    long len = BIO_get_mem_data(bio, &data);
                    peer_pem.assign(data, static_cast<std::size_t>(len));
                    BIO_free(bio);
                }
                X509_free(cert);
            }
            const unsigned char* proto = nullptr;
            unsigned proto_len = 0;
            SSL_get0_alpn_selected(ssl_handle, &proto, &proto_len);
            alpn.assign(reinterpret_cast<const char*>(proto), proto ? proto_len : 0);
        } else {
            plain = std::move(stream);
        }
        conn_key = key;
        return false;
    }

    http::request<http::string_body> build_request(const parsed_url& u, std::string_view method,
                                                   const header_list& headers, std::string body) {
        http::request<http::string_body> req;
        const http::verb verb = http::string_to_verb(method);
        if (verb == http::verb::unknown) {
            req.method_string(method);
        } else {
            req.method(verb);
        }
        if (via_proxy() && !u.is_https()) {
            req.target(u.scheme + "://" + u.host_header() + u.target);
        } else {
            req.target(u.target);
        }
        req.version(opts.http_version);
        if (!has_header(headers, "host")) {
            req.set(http::field::host, u.host_header());
        }
        for (const auto& [n, v] : headers) {
            req.insert(n, v);
        }
        if (via_proxy() && !u.is_https()) {
            for (const auto& [n, v] : opts.proxy_headers) {
                req.insert(n, v);
            }
        }
        req.body() = std::move(body);
        if (!has_header(headers, "content-length") && !has_header(headers, "transfer-encoding")) {
            req.prepare_payload();
        }
        return req;
    }

    // Connects (or reuses), writes the request and reads the final response header.
    template <class Body>
    std::unique_ptr<http::response_parser<Body>> start(const parsed_url& u, std::string_view method,
                                                       const header_list& headers,
                                                       const std::string& body) {
        for (int attempt = 0;; ++attempt) {
            const bool reused = connect(u);
            beast::error_code ec;
            auto req = build_request(u, method, headers, body);
            arm_timer();
            ec = run([&](auto handler) {
                with_stream([&](auto& s) { http::async_write(s, req, std::move(handler)); });
            });
            std::unique_ptr<http::response_parser<Body>> parser;
            bool got_bytes = false;
            while (!ec) {
                parser = std::make_unique<http::response_parser<Body>>();
                parser->header_limit(1u << 20);
                parser->body_limit(std::uint64_t(1) << 34);
                if (iequals(method, "HEAD")) {
                    parser->skip(true);
                }
                arm_timer();
                ec = run([&](auto handler) {
                    with_stream([&](auto& s) {
                        http::async_read_header(s, buffer, *parser, std::move(handler));
                    });
                });
                if (ec) {
                    break;
                }
                got_bytes = true;
                const unsigned status = parser->get().result_int();
                if (status / 100 != 1 || status == 101) {
                    return parser;
                }
                // Interim response: its header is complete and it has no body.
            }
            close();
            if (reused && !got_bytes && attempt == 0 && opts.retry_stale_connection &&
                retryable(ec)) {
                continue;
            }
            throw_ec(ec, std::string(method) + " " + u.scheme + "://" + u.authority() + u.target);
        }
    }

    template <class Message>
    void finish_message(const Message& msg, bool need_eof) {
        if (need_eof || !msg.keep_alive()) {
            close();
        }
    }
};

http_client::http_client(client_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}
http_client::~http_client() = default;
http_client::http_client(http_client&&) noexcept = default;
http_client& http_client::operator=(http_client&&) noexcept = default;

response http_client::request(std::string_view method, std::string_view url,
                              const header_list& headers, std::string body) {
    const parsed_url u = parse_url(url);
    auto parser = impl_->start<http::string_body>(u, method, headers, body);
    beast::error_code ec;
    if (!parser->is_done()) {
        impl_->arm_timer();
        ec = impl_->run([&](auto handler) {
            impl_->with_stream(
                [&](auto& s) { http::async_read(s, impl_->buffer, *parser, std::move(handler)); });
        });
        if (ec) {
            impl_->close();
            throw_ec(ec, "read response body");
        }
    }
    const auto& msg = parser->get();
    response r;
    r.status = msg.result_int();
    r.reason = to_std(msg.reason());
    r.version = msg.version();
    r.headers = collect_headers(msg.base());
    r.body = msg.body();
    impl_->finish_message(msg, parser->need_eof());
    return r;
}

bool http_client::stream(std::string_view method, std::string_view url, const header_list& headers,
                         std::string body, const head_handler& on_head,
                         const chunk_handler& on_chunk) {
    const parsed_url u = parse_url(url);
    auto parser = impl_->start<http::buffer_body>(u, method, headers, body);
    if (on_head) {
        on_head(parser->get().result_int(), collect_headers(parser->get().base()));
    }
    char buf[16384];
    while (!parser->is_done()) {
        parser->get().body().data = buf;
        parser->get().body().size = sizeof buf;
        beast::error_code ec;
        impl_->arm_timer();
        ec = impl_->run([&](auto handler) {
            impl_->with_stream([&](auto& s) {
                http::async_read_some(s, impl_->buffer, *parser, std::move(handler));
            });
        });
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        if (ec) {
            impl_->close();
            throw_ec(ec, "read streamed response body");
        }
        const std::size_t n = sizeof buf - parser->get().body().size;
        if (n != 0 && on_chunk && !on_chunk(std::string_view(buf, n))) {
            impl_->close();
            return false;
        }
    }
    impl_->finish_message(parser->get(), parser->need_eof());
    return true;
}

void http_client::close() {
    impl_->close();
}
bool http_client::connected() const {
    return impl_->plain || impl_->tls;
}
std::size_t http_client::connections_opened() const {
    return impl_->opened;
}
std::string http_client::peer_certificate_pem() const {
    return impl_->peer_pem;
}
std::string http_client::negotiated_alpn() const {
    return impl_->alpn;
}
const client_options& http_client::options() const {
    return impl_->opts;
}

// ---------------------------------------------------------------------------------------------
// SSE

std::vector<sse_event> sse_parser::feed(std::string_view chunk,
                                        std::chrono::system_clock::time_point now) {
    std::vector<sse_event> out;
    pending_.append(chunk);
    std::size_t pos = 0;
    for (;;) {
        const std::size_t eol = pending_.find_first_of("\r\n", pos);
        if (eol == std::string::npos) {
            break;
        }
        // A '\r' at the very end may be the first half of "\r\n": wait for more.
        if (pending_[eol] == '\r' && eol + 1 == pending_.size()) {
            break;
        }
        process_line(std::string_view(pending_).substr(pos, eol - pos), now, out);
        pos = eol + 1;
        if (pending_[eol] == '\r' && pending_[pos] == '\n') {
            ++pos;
        }
    }
    pending_.erase(0, pos);
    return out;
}

std::optional<sse_event> sse_parser::finish(std::chrono::system_clock::time_point now) {
    std::vector<sse_event> out;
    if (!pending_.empty()) {
        std::string last = std::move(pending_);
        pending_.clear();
        if (last.back() == '\r') {
            last.pop_back();
        }
        process_line(last, now, out);
    }
    process_line("", now, out);
    if (out.empty()) {
        return std::nullopt;
    }
    return std::move(out.front());
}

void sse_parser::process_line(std::string_view line, std::chrono::system_clock::time_point now,
                              std::vector<sse_event>& out) {
    if (line.empty()) {
        if (has_data_) {
            out.push_back(sse_event{std::move(event_), std::move(data_), now});
        }
        event_.clear();
        data_.clear();
        has_data_ = false;
        return;
    }
    if (line.front() == ':') {
        return;  // comment
    }
    std::string_view field = line;
    std::string_view value;
    if (auto colon = line.find(':'); colon != std::string_view::npos) {
        field = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') {
            value.remove_prefix(1);
        }
    }
    if (field == "data") {
        if (has_data_) {
            data_ += '\n';
        }
        data_.append(value);
        has_data_ = true;
    } else if (field == "event") {
        event_ = std::string(value);
    }
}

sse_stream_result read_sse_stream(http_client& client, std::string_view url,
                                  const header_list& headers, std::string body) {
    sse_stream_result result;
    sse_parser parser;
    const char* method = body.empty() ? "GET" : "POST";
    client.stream(
        method, url, headers, std::move(body),
        [&](unsigned status, const header_list& h) {
            result.status = status;
            result.headers = h;
        },
        [&](std::string_view chunk) {
            const auto now = std::chrono::system_clock::now();
            result.raw.append(chunk);
            for (auto& ev : parser.feed(chunk, now)) {
                result.events.push_back(std::move(ev));
            }
            return true;
        });
    if (auto last = parser.finish()) {
        result.events.push_back(std::move(*last));
    }
    return result;
}

std::vector<sse_event> read_sse(http_client& client, std::string_view url,
                                const header_list& headers, std::string body) {
    return read_sse_stream(client, url, headers, std::move(body)).events;
}

}  // namespace llm_proxy::test

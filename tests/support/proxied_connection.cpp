#include "support/proxied_connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "llm_proxy/util/text.hpp"
#include "support/raw_socket.hpp"

namespace llm_proxy::test {

namespace {

using steady = std::chrono::steady_clock;

constexpr std::size_t max_head_bytes = 1024 * 1024;
constexpr std::size_t read_size = 64 * 1024;

// True if the comma-separated list `value` has `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        auto comma = value.find(',');
        std::string_view item = value.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
            item.remove_prefix(1);
        }
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
            item.remove_suffix(1);
        }
        if (iequals(item, token)) {
            return true;
        }
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    }
    return false;
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return std::string(s);
}

std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out.empty() ? "no OpenSSL error" : out;
}

void set_timeouts(int fd, std::chrono::milliseconds t) {
    if (t.count() <= 0) {
        t = std::chrono::milliseconds(1);
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(t.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Parses "name: value" lines of a head or trailer block (without the final empty line).
header_list parse_fields(std::string_view block) {
    header_list out;
    while (!block.empty()) {
        auto eol = block.find("\r\n");
        std::string_view line = block.substr(0, eol);
        block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
        auto colon = line.find(':');
        if (colon == std::string_view::npos) {
            throw std::runtime_error("malformed header line: '" + std::string(line) + "'");
        }
        out.emplace_back(std::string(line.substr(0, colon)), trim(line.substr(colon + 1)));
    }
    return out;
}

std::optional<std::string> find_field(const header_list& fields, std::string_view name) {
    for (const auto& [k, v] : fields) {
        if (iequals(k, name)) {
            return v;
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> raw_response::header(std::string_view name) const {
    return find_field(headers, name);
}

bool raw_response::keep_alive() const {
    if (framing == body_framing::close) {
        return false;
    }
    auto connection = header("Connection").value_or("");
    if (version >= 11) {
        return !has_token(connection, "close");
    }
    return has_token(connection, "keep-alive");
}

std::string make_head(std::string_view method, std::string_view target, std::string_view host,
                      const header_list& headers, unsigned version) {
    std::string out;
    out.append(method).append(" ").append(target);
    out += version == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
    if (!find_field(headers, "Host")) {
        out.append("Host: ").append(host).append("\r\n");
    }
    for (const auto& [k, v] : headers) {
        out.append(k).append(": ").append(v).append("\r\n");
    }
    out += "\r\n";
    return out;
}

struct proxied_connection::impl {
    enum class read_result { data, eof, timeout };

    parsed_url origin;
    std::chrono::milliseconds timeout;
    unique_fd fd;
    SSL_CTX* ctx = nullptr;
    SSL* ssl = nullptr;
    std::string buf;  // received, not yet consumed
    bool eof = false;
    std::string eof_reason;

    ~impl() { free_tls(); }

    void free_tls() {
        if (ssl) {
            SSL_free(ssl);
            ssl = nullptr;
        }
        if (ctx) {
            SSL_CTX_free(ctx);
            ctx = nullptr;
        }
    }

    std::string what() const { return origin.scheme + "://" + origin.authority(); }

    // Reads what is available (waiting up to the socket timeout) and appends it to buf.
    read_result read_more() {
        if (eof) {
            return read_result::eof;
        }
        char tmp[read_size];
        if (ssl) {
            ERR_clear_error();
            errno = 0;
            int n = SSL_read(ssl, tmp, sizeof tmp);
            if (n > 0) {
                buf.append(tmp, static_cast<std::size_t>(n));
                return read_result::data;
            }
            const int err = SSL_get_error(ssl, n);
            const int saved_errno = errno;
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ||
                (err == SSL_ERROR_SYSCALL &&
                 (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))) {
                return read_result::timeout;
            }
            eof = true;
            if (err == SSL_ERROR_ZERO_RETURN) {
                eof_reason = "TLS close_notify";
            } else if (err == SSL_ERROR_SYSCALL) {
                eof_reason = saved_errno == 0 ? "EOF without close_notify"
                                              : std::string("error: ") + std::strerror(saved_errno);
            } else {
                eof_reason = "TLS error: " + openssl_errors();
            }
            return read_result::eof;
        }
        for (;;) {
            ssize_t n = ::recv(fd.get(), tmp, sizeof tmp, 0);
            if (n > 0) {
                buf.append(tmp, static_cast<std::size_t>(n));
                return read_result::data;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return read_result::timeout;
            }
            eof = true;
            eof_reason = n == 0 ? "EOF" : std::string("error: ") + std::strerror(errno);
            return read_result::eof;
        }
    }

    // read_more(), throwing unless data came.
    void need_more(std::string_view waiting_for) {
        switch (read_more()) {
            case read_result::data:
                return;
            case read_result::timeout:
                throw connection_timeout("timed out after " + std::to_string(timeout.count()) +
                                         " ms waiting for " + std::string(waiting_for) + " from " +
                                         what() + " (have " + std::to_string(buf.size()) +
                                         " bytes: '" + buf.substr(0, 200) + "')");
            case read_result::eof:
                throw connection_closed("connection closed (" + eof_reason +
                                        ") while waiting for " + std::string(waiting_for) +
                                        " from " + what() + " (have " + std::to_string(buf.size()) +
                                        " bytes: '" + buf.substr(0, 200) + "')");
        }
    }

    bool write_all(std::string_view data) {
        if (ssl) {
            while (!data.empty()) {
                const int piece = static_cast<int>(std::min<std::size_t>(data.size(), 1024 * 1024));
                ERR_clear_error();
                int n = SSL_write(ssl, data.data(), piece);
                if (n <= 0) {
                    return false;
                }
                data.remove_prefix(static_cast<std::size_t>(n));
            }
            return true;
        }
        return send_all(fd.get(), data);
    }

    // Returns the index just past "\r\n\r\n" in buf, reading as needed.
    std::size_t head_end(std::string_view waiting_for) {
        for (;;) {
            auto end = buf.find("\r\n\r\n");
            if (end != std::string::npos) {
                return end + 4;
            }
            if (buf.size() > max_head_bytes) {
                throw std::runtime_error("response head larger than 1 MiB");
            }
            need_more(waiting_for);
        }
    }

    // Returns the next CRLF-terminated line (without CRLF), consumed from buf.
    std::string take_line(std::string_view waiting_for) {
        for (;;) {
            auto eol = buf.find("\r\n");
            if (eol != std::string::npos) {
                std::string line = buf.substr(0, eol);
                buf.erase(0, eol + 2);
                return line;
            }
            if (buf.size() > max_head_bytes) {
                throw std::runtime_error("line longer than 1 MiB in " + std::string(waiting_for));
            }
            need_more(waiting_for);
        }
    }

    // Moves up to n buffered bytes (reading if none are buffered) to the body; returns how many.
    std::size_t take_body(std::uint64_t n, raw_response& r, const body_sink& sink,
                          std::string_view waiting_for) {
        if (buf.empty()) {
            need_more(waiting_for);
        }
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n, buf.size()));
        std::string_view piece(buf.data(), k);
        if (sink) {
            sink(piece);
        } else {
            r.body.append(piece);
        }
        r.body_length += k;
        buf.erase(0, k);
        return k;
    }

    void connect_tunnel() {
        const std::string authority = origin.authority();
        const std::string req =
            "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
        if (!write_all(req)) {
            throw connection_closed("could not send CONNECT to the proxy");
        }
        const std::size_t end = head_end("the CONNECT response");
        std::string head = buf.substr(0, end);
        buf.erase(0, end);
        if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0 || head[9] != '2') {
            throw std::runtime_error("proxy refused CONNECT " + authority + ": " + head +
                                     buf.substr(0, 500));
        }
        if (!buf.empty()) {
            throw std::runtime_error("proxy sent bytes after the CONNECT response: " + buf);
        }
    }

    void start_tls(const std::string& ca_file) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx) {
            throw std::runtime_error("SSL_CTX_new: " + openssl_errors());
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
            throw std::runtime_error("cannot load CA file " + ca_file + ": " + openssl_errors());
        }
        ssl = SSL_new(ctx);
        if (!ssl) {
            throw std::runtime_error("SSL_new: " + openssl_errors());
        }
        SSL_set_fd(ssl, fd.get());
        in6_addr addr6{};
        in_addr addr4{};
        const bool ip = ::inet_pton(AF_INET, origin.host.c_str(), &addr4) == 1 ||
                        ::inet_pton(AF_INET6, origin.host.c_str(), &addr6) == 1;
        if (ip) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), origin.host.c_str());
        } else {
            SSL_set_tlsext_host_name(ssl, origin.host.c_str());
            SSL_set1_host(ssl, origin.host.c_str());
        }
        static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        SSL_set_alpn_protos(ssl, alpn, sizeof alpn);
        ERR_clear_error();
        if (SSL_connect(ssl) != 1) {
            std::string why = openssl_errors();
            long verify = SSL_get_verify_result(ssl);
            if (verify != X509_V_OK) {
                why += std::string(" (certificate verify: ") +
                       X509_verify_cert_error_string(verify) + ")";
            }
            throw std::runtime_error("TLS handshake with " + origin.host + " failed: " + why);
        }
    }
};

proxied_connection::proxied_connection(const std::string& proxy_host, std::uint16_t proxy_port,
                                       std::string_view origin, const std::string& ca_file,
                                       std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()) {
    // OpenSSL writes to the socket with write(): a peer that is gone must not kill the tests.
    static const bool sigpipe_ignored = [] {
        ::signal(SIGPIPE, SIG_IGN);
        return true;
    }();
    (void)sigpipe_ignored;
    impl_->origin = parse_url(origin);
    impl_->timeout = timeout;
    impl_->fd = unique_fd(connect_raw(proxy_host, proxy_port, timeout));
    if (impl_->origin.is_https()) {
        impl_->connect_tunnel();
        impl_->start_tls(ca_file);
    }
}

proxied_connection::~proxied_connection() = default;

bool proxied_connection::tls() const {
    return impl_->ssl != nullptr;
}

std::string proxied_connection::target(std::string_view path_and_query) const {
    if (impl_->origin.is_https()) {
        return std::string(path_and_query);
    }
    return "http://" + impl_->origin.host_header() + std::string(path_and_query);
}

std::string proxied_connection::host_header() const {
    return impl_->origin.host_header();
}

void proxied_connection::send(std::string_view bytes) {
    if (!impl_->fd || !impl_->write_all(bytes)) {
        throw connection_closed("could not send " + std::to_string(bytes.size()) + " bytes to " +
                                impl_->what() + " (peer gone or not reading)");
    }
}

bool proxied_connection::try_send(std::string_view bytes) {
    return impl_->fd && impl_->write_all(bytes);
}

void proxied_connection::send_head_then_body(std::string_view head, std::string_view body,
                                             std::chrono::milliseconds delay) {
    send(head);
    std::this_thread::sleep_for(delay);
    if (!body.empty()) {
        send(body);
    }
}

raw_response proxied_connection::read_response(bool head_request, const body_sink& sink) {
    auto& d = *impl_;
    raw_response r;
    const std::size_t end = d.head_end("a response head");
    std::string_view head(d.buf.data(), end - 4);
    auto eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    // "HTTP/1.1 200 OK"
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line[8] != ' ') {
        throw std::runtime_error("malformed status line: '" + std::string(status_line) + "'");
    }
    r.version = status_line.substr(5, 3) == "1.0" ? 10 : 11;
    r.status = static_cast<unsigned>(std::stoul(std::string(status_line.substr(9, 3))));
    r.reason = status_line.size() > 13 ? std::string(status_line.substr(13)) : "";
    r.headers =
        parse_fields(eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2));
    d.buf.erase(0, end);

    const bool no_body = head_request || r.status / 100 == 1 || r.status == 204 || r.status == 304;
    if (no_body) {
        return r;
    }
    const auto te = r.header("Transfer-Encoding");
    const auto cl = r.header("Content-Length");
    if (te && has_token(*te, "chunked")) {
        r.framing = raw_response::body_framing::chunked;
        for (;;) {
            std::string line = d.take_line("a chunk header");
            std::string size_text = trim(line.substr(0, line.find(';')));
            std::uint64_t size = 0;
            if (size_text.empty() || size_text.size() > 16 ||
                size_text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
                throw std::runtime_error("bad chunk size line: '" + line + "'");
            }
            size = std::stoull(size_text, nullptr, 16);
            if (size == 0) {
                break;
            }
            while (size > 0) {
                size -= d.take_body(size, r, sink, "chunk data");
            }
            if (!d.take_line("the CRLF after chunk data").empty()) {
                throw std::runtime_error("chunk data not followed by CRLF");
            }
        }
        std::string trailer_block;
        for (;;) {
            std::string line = d.take_line("trailers");
            if (line.empty()) {
                break;
            }
            trailer_block += line + "\r\n";
        }
        r.trailers = parse_fields(trailer_block);
    } else if (cl) {
        r.framing = raw_response::body_framing::length;
        std::uint64_t left = std::stoull(*cl);
        while (left > 0) {
            left -= d.take_body(left, r, sink, "body bytes");
        }
    } else {
        r.framing = raw_response::body_framing::close;
        for (;;) {
            if (d.buf.empty()) {
                auto got = d.read_more();
                if (got == impl::read_result::eof) {
                    break;
                }
                if (got == impl::read_result::timeout) {
                    throw connection_timeout("timed out reading a close-delimited body from " +
                                             d.what());
                }
            }
            d.take_body(d.buf.size(), r, sink, "body bytes");
        }
    }
    return r;
}

raw_response proxied_connection::read_final_response(bool head_request, const body_sink& sink) {
    for (;;) {
        raw_response r = read_response(head_request, sink);
        if (r.status / 100 != 1 || r.status == 101) {
            return r;
        }
    }
}

bool proxied_connection::peer_closed(std::chrono::milliseconds timeout) {
    auto& d = *impl_;
    if (!d.fd) {
        return true;
    }
    const auto deadline = steady::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        if (left.count() <= 0) {
            set_timeouts(d.fd.get(), d.timeout);
            return false;
        }
        set_timeouts(d.fd.get(), left);
        auto got = d.read_more();
        if (got == impl::read_result::eof) {
            set_timeouts(d.fd.get(), d.timeout);
            return true;
        }
    }
}

const std::string& proxied_connection::pending() const {
    return impl_->buf;
}

void proxied_connection::close() {
    impl_->free_tls();
    impl_->fd.reset();
    impl_->eof = true;
    impl_->eof_reason = "closed by the test";
}

void proxied_connection::half_close() {
    if (impl_->fd) {
        ::shutdown(impl_->fd.get(), SHUT_WR);
    }
}

void proxied_connection::reset() {
    if (impl_->fd) {
        linger l{1, 0};
        ::setsockopt(impl_->fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    impl_->free_tls();
    impl_->fd.reset();
    impl_->eof = true;
    impl_->eof_reason = "reset by the test";
}

}  // namespace llm_proxy::test

// Time to the first SSE event of a streamed chat completion on a NEW connection, from a C++
// client with no interpreter in the measured path (bench/first_event.sh runs it next to the
// Python client). Each stream: TCP connect, with --proxy a CONNECT and its 200, the TLS
// handshake (certificate verified against --cafile, SNI and host name from --url), the POST,
// and reading until the first `data:` line that carries an event. The TLS context (CA file
// loaded) is made once, before any timing. Blocking sockets, TCP_NODELAY.
//
//   bench_first_event --url https://localhost:PORT/v1/chat/completions --cafile CA.pem
//                     [--proxy http://127.0.0.1:PORT] [--streams N] [--label TEXT]
//
// Prints one tab-separated line: label, median ms over the streams (the first left out: it
// pays the proxy's leaf minting), p90 ms, streams measured.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct url_parts {
    std::string host;
    std::string port;
    std::string path;
};

url_parts parse_url(const std::string& url, const char* scheme) {
    std::string prefix = std::string(scheme) + "://";
    if (url.rfind(prefix, 0) != 0) {
        throw std::runtime_error("expected a " + prefix + " URL: " + url);
    }
    std::string rest = url.substr(prefix.size());
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    url_parts u;
    u.path = slash == std::string::npos ? "/" : rest.substr(slash);
    auto colon = authority.rfind(':');
    if (colon == std::string::npos) {
        throw std::runtime_error("the URL needs a port: " + url);
    }
    u.host = authority.substr(0, colon);
    u.port = authority.substr(colon + 1);
    return u;
}

int connect_to(const std::string& host, const std::string& port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    // Loopback only: "localhost" resolves from /etc/hosts.
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
        throw std::runtime_error("cannot resolve " + host);
    }
    int fd = -1;
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }
        if (fd >= 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        throw std::runtime_error("cannot connect to " + host + ":" + port);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

void send_all(int fd, const std::string& data) {
    std::size_t at = 0;
    while (at < data.size()) {
        ssize_t n = send(fd, data.data() + at, data.size() - at, MSG_NOSIGNAL);
        if (n <= 0) {
            throw std::runtime_error("send failed");
        }
        at += static_cast<std::size_t>(n);
    }
}

// Reads the proxy's answer to CONNECT up to the blank line; it must be a 200.
void read_connect_answer(int fd) {
    std::string head;
    char c;
    while (head.size() < 8192 && head.find("\r\n\r\n") == std::string::npos) {
        if (recv(fd, &c, 1, 0) != 1) {
            throw std::runtime_error("the proxy closed during CONNECT");
        }
        head.push_back(c);
    }
    if (head.rfind("HTTP/1.1 200", 0) != 0 && head.rfind("HTTP/1.0 200", 0) != 0) {
        throw std::runtime_error("CONNECT refused: " + head.substr(0, head.find('\r')));
    }
}

// One stream: milliseconds from the start of the connection to its first event.
double one_stream(SSL_CTX* ctx, const url_parts& target, const url_parts* proxy) {
    const std::string body =
        R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Count."}]})";
    auto t0 = std::chrono::steady_clock::now();
    int fd = proxy ? connect_to(proxy->host, proxy->port) : connect_to(target.host, target.port);
    if (proxy) {
        send_all(fd, "CONNECT " + target.host + ":" + target.port +
                         " HTTP/1.1\r\nHost: " + target.host + ":" + target.port + "\r\n\r\n");
        read_connect_answer(fd);
    }
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, target.host.c_str());
    SSL_set1_host(ssl, target.host.c_str());
    if (SSL_connect(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        throw std::runtime_error("TLS handshake failed");
    }
    std::string request = "POST " + target.path + " HTTP/1.1\r\nHost: " + target.host + ":" +
                          target.port +
                          "\r\nContent-Type: application/json\r\nX-Fake-Events: 2\r\n"
                          "X-Fake-Interval-Ms: 1\r\nConnection: close\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
    if (SSL_write(ssl, request.data(), static_cast<int>(request.size())) <= 0) {
        throw std::runtime_error("TLS write failed");
    }
    std::string got;
    char buf[16384];
    double ms = -1;
    while (ms < 0) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) {
            throw std::runtime_error("the stream ended before its first event");
        }
        got.append(buf, static_cast<std::size_t>(n));
        auto head_end = got.find("\r\n\r\n");
        if (head_end != std::string::npos && got.find("data: {", head_end) != std::string::npos) {
            ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count();
        }
    }
    if (got.rfind("HTTP/1.1 200", 0) != 0) {
        throw std::runtime_error("not a 200: " + got.substr(0, got.find('\r')));
    }
    // The rest of the stream is not timed; it is read so that the server ends cleanly.
    while (SSL_read(ssl, buf, sizeof buf) > 0) {
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    return ms;
}

}  // namespace

int main(int argc, char** argv) {
    std::string url, cafile, proxy_url, label;
    int streams = 40;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        std::string v = argv[i + 1];
        if (k == "--url") {
            url = v;
        } else if (k == "--cafile") {
            cafile = v;
        } else if (k == "--proxy") {
            proxy_url = v;
        } else if (k == "--streams") {
            streams = std::max(2, std::atoi(v.c_str()));
        } else if (k == "--label") {
            label = v;
        } else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (url.empty() || cafile.empty()) {
        std::fprintf(stderr,
                     "usage: %s --url https://HOST:PORT/PATH --cafile CA.pem "
                     "[--proxy http://HOST:PORT] [--streams N] [--label TEXT]\n",
                     argv[0]);
        return 2;
    }
    try {
        url_parts target = parse_url(url, "https");
        url_parts proxy;
        if (!proxy_url.empty()) {
            proxy = parse_url(proxy_url, "http");
        }
        SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        if (SSL_CTX_load_verify_locations(ctx, cafile.c_str(), nullptr) != 1) {
            throw std::runtime_error("cannot load " + cafile);
        }
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // a full handshake each time
        std::vector<double> ms;
        for (int i = 0; i < streams; ++i) {
            double t = one_stream(ctx, target, proxy_url.empty() ? nullptr : &proxy);
            if (i > 0) {
                ms.push_back(t);
            }
        }
        SSL_CTX_free(ctx);
        std::sort(ms.begin(), ms.end());
        std::printf("%s\t%.3f\t%.3f\t%zu\n", label.c_str(), ms[ms.size() / 2],
                    ms[ms.size() * 9 / 10], ms.size());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_first_event: %s\n", e.what());
        return 1;
    }
    return 0;
}

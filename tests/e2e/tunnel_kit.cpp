#include "tunnel_kit.hpp"

#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <system_error>

#include "support/temp_dir.hpp"

namespace llm_proxy::test {

raw_server::raw_server(handler h, std::size_t connections,
                       std::chrono::milliseconds accept_timeout) {
    listener_ = unique_fd(listen_loopback(port_, 16));
    int listen_fd = listener_.get();
    threads_.emplace_back([listen_fd, h, connections, accept_timeout, this] {
        for (std::size_t i = 0; i < connections; ++i) {
            pollfd p{listen_fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(accept_timeout.count())) != 1) {
                return;
            }
            int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                return;
            }
            timeval tv{30, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            workers_.emplace_back([fd, h] {
                unique_fd owned(fd);
                h(fd);
            });
        }
    });
}

raw_server::~raw_server() {
    ::shutdown(listener_.get(), SHUT_RDWR);  // wakes a poll that still waits
    for (auto& t : threads_) {
        t.join();
    }
    for (auto& t : workers_) {
        t.join();
    }
}

unique_fd open_tunnel(std::uint16_t proxy_port, const std::string& target,
                      const std::string& extra_headers, std::chrono::milliseconds io_timeout) {
    unique_fd fd(connect_raw("127.0.0.1", proxy_port, io_timeout));
    if (!send_all(fd.get(), "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n" +
                                extra_headers + "\r\n")) {
        throw std::runtime_error("sending CONNECT failed");
    }
    // Read the head byte by byte so no tunnel byte is taken with it.
    std::string head;
    char c = 0;
    while (!head.ends_with("\r\n\r\n")) {
        ssize_t n = ::recv(fd.get(), &c, 1, 0);
        if (n != 1) {
            throw std::runtime_error("CONNECT answer cut off: '" + head + "'");
        }
        head.push_back(c);
    }
    if (!head.starts_with("HTTP/1.1 200")) {
        throw std::runtime_error("CONNECT refused: " + head);
    }
    return fd;
}

void fill_pattern(std::string& block, std::uint64_t seed, std::uint64_t index) {
    std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + index + 1;
    for (std::size_t i = 0; i < block.size(); ++i) {
        if (i % 8 == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        block[i] = static_cast<char>(x >> ((i % 8) * 8));
    }
}

void fnv64::update(std::string_view s) {
    for (unsigned char c : s) {
        value ^= c;
        value *= 1099511628211ull;
    }
}

namespace {
std::string name_text(X509_NAME* name) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}
std::unique_ptr<X509, decltype(&X509_free)> parse_pem(const std::string& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    if (!cert) {
        throw std::runtime_error("not a PEM certificate");
    }
    return cert;
}
}  // namespace

std::string certificate_issuer(const std::string& pem) {
    auto cert = parse_pem(pem);
    return name_text(X509_get_issuer_name(cert.get()));
}

std::string certificate_subject_of_file(const std::filesystem::path& pem_file) {
    auto cert = parse_pem(read_file(pem_file));
    return name_text(X509_get_subject_name(cert.get()));
}

}  // namespace llm_proxy::test

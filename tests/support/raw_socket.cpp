#include "support/raw_socket.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace llm_proxy::test {

namespace {

using steady = std::chrono::steady_clock;

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

int remaining_ms(steady::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    return static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 0));
}

// Waits for readability; false on timeout.
bool wait_readable(int fd, steady::time_point deadline) {
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int rc = ::poll(&p, 1, remaining_ms(deadline));
        if (rc > 0) {
            return true;
        }
        if (rc == 0) {
            return false;
        }
        if (errno != EINTR) {
            return true;  // let recv() report the error
        }
    }
}

// recv() once; returns bytes (>0), 0 on EOF, -1 on error.
ssize_t recv_once(int fd, char* buf, std::size_t size) {
    for (;;) {
        ssize_t n = ::recv(fd, buf, size, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return -2;
        }
        return n;
    }
}

}  // namespace

void unique_fd::reset(int fd) {
    if (fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = fd;
}

int connect_raw(const std::string& host, std::uint16_t port, std::chrono::milliseconds io_timeout) {
    std::string h = host;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') {
        h = h.substr(1, h.size() - 2);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(h.c_str(), service.c_str(), &hints, &res); rc != 0) {
        throw std::system_error(std::make_error_code(std::errc::host_unreachable),
                                "getaddrinfo " + h + ": " + ::gai_strerror(rc));
    }
    int last_errno = ECONNREFUSED;
    int fd = -1;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        const timeval tv = to_timeval(io_timeout);
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        last_errno = errno;
        ::close(fd);
        fd = -1;
    }
    ::freeaddrinfo(res);
    if (fd < 0) {
        throw std::system_error(last_errno, std::generic_category(),
                                "connect " + host + ":" + service);
    }
    return fd;
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::string recv_until_close(int fd, std::chrono::milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    std::string out;
    char buf[16384];
    for (;;) {
        if (!wait_readable(fd, deadline)) {
            return out;
        }
        ssize_t n = recv_once(fd, buf, sizeof buf);
        if (n == -2) {
            continue;
        }
        if (n <= 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

std::string recv_some(int fd, std::chrono::milliseconds timeout, std::size_t min_bytes) {
    const auto deadline = steady::now() + timeout;
    std::string out;
    char buf[16384];
    while (out.size() < min_bytes) {
        if (!wait_readable(fd, deadline)) {
            return out;
        }
        ssize_t n = recv_once(fd, buf, sizeof buf);
        if (n == -2) {
            continue;
        }
        if (n <= 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

bool wait_peer_closed(int fd, std::chrono::milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    char buf[16384];
    for (;;) {
        if (!wait_readable(fd, deadline)) {
            return false;
        }
        ssize_t n = recv_once(fd, buf, sizeof buf);
        if (n == 0 || n == -1) {
            return true;
        }
    }
}

std::string raw_exchange(const std::string& host, std::uint16_t port, std::string bytes_to_send,
                         std::chrono::milliseconds timeout, bool half_close_after_send) {
    const auto deadline = steady::now() + timeout;
    unique_fd fd(connect_raw(host, port, timeout));
    // A reset while sending is fine: the server may reject early; read what it said anyway.
    send_all(fd.get(), bytes_to_send);
    if (half_close_after_send) {
        ::shutdown(fd.get(), SHUT_WR);
    }
    return recv_until_close(fd.get(), std::chrono::milliseconds(remaining_ms(deadline)));
}

}  // namespace llm_proxy::test

namespace llm_proxy::test {

namespace {

// A socket bound to 127.0.0.1 at a port the kernel picks, stored in `port`.
unique_fd bind_loopback(std::uint16_t& port) {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        throw std::system_error(errno, std::generic_category(), "socket");
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw std::system_error(errno, std::generic_category(), "bind 127.0.0.1:0");
    }
    port = ntohs(addr.sin_port);
    return fd;
}

}  // namespace

int listen_loopback(std::uint16_t& port, int backlog) {
    unique_fd fd = bind_loopback(port);
    if (::listen(fd.get(), backlog) != 0) {
        throw std::system_error(errno, std::generic_category(), "listen on 127.0.0.1");
    }
    return fd.release();
}

std::uint16_t pick_free_port() {
    std::uint16_t port = 0;
    bind_loopback(port);  // closed again at once
    return port;
}

int accept_raw(int listen_fd, std::chrono::milliseconds wait) {
    pollfd p{listen_fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) {
        return -1;
    }
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

}  // namespace llm_proxy::test

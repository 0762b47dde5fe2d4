#pragma once
// Raw TCP helpers for malformed-input and idle-connection tests.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace llm_proxy::test {

// Connects, sends `bytes_to_send`, optionally shuts down the write side, then reads until the
// peer closes (EOF or reset) or `timeout` (total, from the start) expires; returns everything
// received. Throws std::system_error if the connection cannot be made.
std::string raw_exchange(const std::string& host, std::uint16_t port, std::string bytes_to_send,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5),
                         bool half_close_after_send = false);

// A connected blocking TCP socket (close-on-exec, TCP_NODELAY) with SO_RCVTIMEO and SO_SNDTIMEO
// set to `io_timeout`. The caller owns the fd (see unique_fd). Throws std::system_error.
int connect_raw(const std::string& host, std::uint16_t port,
                std::chrono::milliseconds io_timeout = std::chrono::seconds(10));

// Sends everything (MSG_NOSIGNAL); false on error (e.g. the peer reset the connection).
bool send_all(int fd, std::string_view data);

// Reads until EOF, error or `timeout` (total); returns what arrived.
std::string recv_until_close(int fd, std::chrono::milliseconds timeout);

// Reads what arrives within `timeout`, returning as soon as at least `min_bytes` are in (or EOF).
std::string recv_some(int fd, std::chrono::milliseconds timeout, std::size_t min_bytes = 1);

// True if the peer closed the connection (EOF or reset) within `timeout`. Data that arrives
// meanwhile is discarded.
bool wait_peer_closed(int fd, std::chrono::milliseconds timeout);

// A TCP socket listening on 127.0.0.1 at a port the kernel picks (close-on-exec), stored in
// `port`. The caller owns the fd (see unique_fd). Throws std::system_error.
int listen_loopback(std::uint16_t& port, int backlog = 64);

// A port on 127.0.0.1 that was free a moment ago (bound at port 0, read, closed): for a
// server that must be given its port, which retries when another process took it meanwhile,
// or for a port nothing listens on. Throws std::system_error.
std::uint16_t pick_free_port();

// Waits up to `wait` for a connection on `listen_fd` and accepts it (close-on-exec,
// TCP_NODELAY: a test upstream's late bytes must not wait for an ACK); -1 when none came.
int accept_raw(int listen_fd, std::chrono::milliseconds wait);

// Owning wrapper for a socket fd.
class unique_fd {
  public:
    unique_fd() = default;
    explicit unique_fd(int fd) : fd_(fd) {}
    ~unique_fd() { reset(); }
    unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset(o.release());
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset(int fd = -1);

  private:
    int fd_ = -1;
};

}  // namespace llm_proxy::test

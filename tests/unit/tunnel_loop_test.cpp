// The blind-tunnel relay (src/proxy/tunnel_loop): bytes both ways as they come, half-closes
// passed on, backpressure instead of buffering, the idle and half-closed limits, resets, and
// stop(). Each tunnel joins two loopback TCP connections: the test holds the far ends (the
// "client" and the "upstream") and the loop holds the near ones.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "proxy/tunnel_loop.hpp"

namespace {

using llm_proxy::proxy::tunnel_limits;
using llm_proxy::proxy::tunnel_loop;
using llm_proxy::proxy::tunnel_outcome;
using namespace std::chrono_literals;

// A descriptor closed when it goes.
struct fd_owner {
    int fd = -1;
    fd_owner() = default;
    explicit fd_owner(int f) : fd(f) {}
    fd_owner(fd_owner&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    fd_owner& operator=(fd_owner&& o) noexcept {
        reset();
        fd = std::exchange(o.fd, -1);
        return *this;
    }
    ~fd_owner() { reset(); }
    void reset() {
        if (fd >= 0) {
            ::close(fd);
        }
        fd = -1;
    }
    int release() { return std::exchange(fd, -1); }
};

// Two connected loopback TCP sockets: {far end, near end}.
std::pair<fd_owner, fd_owner> tcp_pair() {
    fd_owner listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener.fd, 1), 0);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    fd_owner far(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(far.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    fd_owner near(::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_GE(near.fd, 0);
    return {std::move(far), std::move(near)};
}

void send_all(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        ASSERT_GT(n, 0);
        done += static_cast<std::size_t>(n);
    }
}

// Reads exactly `n` bytes (blocking, with a generous bound so a broken relay fails instead of
// hanging the suite).
std::string read_exactly(int fd, std::size_t n) {
    std::string out;
    char buf[16384];
    while (out.size() < n) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 30000) != 1) {
            ADD_FAILURE() << "nothing to read after 30 s (" << out.size() << " of " << n << ")";
            return out;
        }
        const ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
        if (r <= 0) {
            ADD_FAILURE() << "the stream ended after " << out.size() << " of " << n << " bytes";
            return out;
        }
        out.append(buf, static_cast<std::size_t>(r));
    }
    return out;
}

// True when the peer has ended its sending (a read returns 0), waiting up to 30 s.
bool sees_end(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30000) != 1) {
        return false;
    }
    char c;
    return ::recv(fd, &c, 1, 0) == 0;
}

// One tunnel whose outcome the test can wait for.
struct tunnel_under_test {
    fd_owner client;    // the application's end
    fd_owner upstream;  // the server's end
    std::promise<tunnel_outcome> promise;
    std::future<tunnel_outcome> outcome = promise.get_future();

    tunnel_under_test(tunnel_loop& loop, tunnel_limits limits) {
        auto [c_far, c_near] = tcp_pair();
        auto [u_far, u_near] = tcp_pair();
        client = std::move(c_far);
        upstream = std::move(u_far);
        loop.add(c_near.release(), u_near.release(), limits,
                 [this](tunnel_outcome o) { promise.set_value(std::move(o)); });
    }

    tunnel_outcome wait() {
        if (outcome.wait_for(30s) != std::future_status::ready) {
            ADD_FAILURE() << "the tunnel did not end within 30 s";
            return {};
        }
        return outcome.get();
    }
};

constexpr tunnel_limits long_limits{std::chrono::hours(1), std::chrono::hours(1)};

std::string pattern(std::size_t n, std::uint32_t seed) {
    std::string s(n, '\0');
    std::uint32_t x = seed;
    for (auto& c : s) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

TEST(TunnelLoop, RelaysBothWaysAndPassesEachHalfCloseOn) {
    tunnel_loop loop;
    tunnel_under_test t(loop, long_limits);
    send_all(t.client.fd, "hello");
    EXPECT_EQ(read_exactly(t.upstream.fd, 5), "hello");
    send_all(t.upstream.fd, "world");
    EXPECT_EQ(read_exactly(t.client.fd, 5), "world");

    // The client ends its sending: the upstream sees the end, and can still answer.
    ASSERT_EQ(::shutdown(t.client.fd, SHUT_WR), 0);
    EXPECT_TRUE(sees_end(t.upstream.fd));
    send_all(t.upstream.fd, "after your end");
    EXPECT_EQ(read_exactly(t.client.fd, 14), "after your end");
    EXPECT_EQ(t.outcome.wait_for(0s), std::future_status::timeout) << "ended at a half-close";

    ASSERT_EQ(::shutdown(t.upstream.fd, SHUT_WR), 0);
    EXPECT_TRUE(sees_end(t.client.fd));
    tunnel_outcome o = t.wait();
    EXPECT_EQ(o.end, "client_closed");
    EXPECT_EQ(o.from_client, 5u);
    EXPECT_EQ(o.from_upstream, 19u);
    EXPECT_TRUE(o.error.empty()) << o.error;
}

TEST(TunnelLoop, UpstreamClosingFirstIsNamed) {
    tunnel_loop loop;
    tunnel_under_test t(loop, long_limits);
    ASSERT_EQ(::shutdown(t.upstream.fd, SHUT_WR), 0);
    EXPECT_TRUE(sees_end(t.client.fd));
    send_all(t.client.fd, "last words");
    EXPECT_EQ(read_exactly(t.upstream.fd, 10), "last words");
    ASSERT_EQ(::shutdown(t.client.fd, SHUT_WR), 0);
    tunnel_outcome o = t.wait();
    EXPECT_EQ(o.end, "upstream_closed");
    EXPECT_EQ(o.from_client, 10u);
    EXPECT_EQ(o.from_upstream, 0u);
}

// A peer that takes nothing stops the relay from reading its source: the sender is held back
// by the kernel's buffers instead of the relay buffering without end, and once the peer reads,
// every byte arrives in order.
TEST(TunnelLoop, SlowPeerHoldsTheSenderBackAndLosesNothing) {
    tunnel_loop loop;
    tunnel_under_test t(loop, long_limits);
    ASSERT_EQ(::fcntl(t.client.fd, F_SETFL, ::fcntl(t.client.fd, F_GETFL) | O_NONBLOCK), 0);

    // Write until the client cannot write for a second, at most 64 MiB: the kernel's buffers on
    // the way hold a few MiB (loopback's autotuned socket buffers), a relay that read without
    // bound would take all of it.
    constexpr std::size_t cap = 64u << 20;
    const std::string block = pattern(64 * 1024, 7);
    std::size_t written = 0;
    std::string sent;
    bool held = false;
    while (written < cap) {
        pollfd p{t.client.fd, POLLOUT, 0};
        if (::poll(&p, 1, 1000) == 0) {
            held = true;
            break;
        }
        const ssize_t n = ::send(t.client.fd, block.data(), block.size(), MSG_NOSIGNAL);
        ASSERT_TRUE(n > 0 || errno == EAGAIN) << std::strerror(errno);
        if (n > 0) {
            sent.append(block, 0, static_cast<std::size_t>(n));
            written += static_cast<std::size_t>(n);
        }
    }
    ASSERT_TRUE(held) << "the relay took " << written
                      << " bytes from a client whose peer reads nothing";
    // Everything the kernel accepted is relayed once the upstream reads.
    EXPECT_EQ(read_exactly(t.upstream.fd, sent.size()), sent);

    // And the other way, the same.
    ASSERT_EQ(::shutdown(t.client.fd, SHUT_WR), 0);
    EXPECT_TRUE(sees_end(t.upstream.fd));
    const std::string answer = pattern(3 * 1024 * 1024 + 17, 9);
    std::thread writer([&] {
        send_all(t.upstream.fd, answer);
        ::shutdown(t.upstream.fd, SHUT_WR);
    });
    ASSERT_EQ(::fcntl(t.client.fd, F_SETFL, ::fcntl(t.client.fd, F_GETFL) & ~O_NONBLOCK), 0);
    EXPECT_EQ(read_exactly(t.client.fd, answer.size()), answer);
    writer.join();
    tunnel_outcome o = t.wait();
    EXPECT_EQ(o.end, "client_closed");
    EXPECT_EQ(o.from_client, sent.size());
    EXPECT_EQ(o.from_upstream, answer.size());
}

TEST(TunnelLoop, IdleTunnelEndsAtItsLimitAndBothPeersSeeTheEnd) {
    tunnel_loop loop;
    tunnel_under_test t(loop, tunnel_limits{200ms, 200ms});
    send_all(t.client.fd, "one");
    EXPECT_EQ(read_exactly(t.upstream.fd, 3), "one");
    tunnel_outcome o = t.wait();
    EXPECT_EQ(o.end, "idle_timeout");
    EXPECT_EQ(o.from_client, 3u);
    EXPECT_TRUE(sees_end(t.client.fd));
    EXPECT_TRUE(sees_end(t.upstream.fd));
}

TEST(TunnelLoop, HalfClosedTunnelHasTheShorterLimit) {
    tunnel_loop loop;
    tunnel_under_test t(loop, tunnel_limits{std::chrono::hours(1), 200ms});
    ASSERT_EQ(::shutdown(t.client.fd, SHUT_WR), 0);
    EXPECT_TRUE(sees_end(t.upstream.fd));
    // The upstream never ends its side: the half-closed limit, not the hour, ends the tunnel.
    tunnel_outcome o = t.wait();
    EXPECT_EQ(o.end, "idle_timeout");
}

TEST(TunnelLoop, ResetByTheUpstreamIsAnErrorOnItsSide) {
    tunnel_loop loop;
    tunnel_under_test t(loop, long_limits);
    send_all(t.client.fd, "ping");
    EXPECT_EQ(read_exactly(t.upstream.fd, 4), "ping");
    const linger hard{1, 0};  // close sends a reset
    ASSERT_EQ(::setsockopt(t.upstream.fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
    t.upstream.reset();
    tunnel_outcome o = t.wait();
    EXPECT_EQ(o.end, "error");
    EXPECT_NE(o.error.find("upstream"), std::string::npos) << o.error;
    EXPECT_FALSE(o.client_fault);
    // The client's connection goes too.
    pollfd p{t.client.fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 30000), 1);
    char c;
    EXPECT_LE(::recv(t.client.fd, &c, 1, 0), 0);
}

TEST(TunnelLoop, ResetByTheClientIsTheClientsFault) {
    tunnel_loop loop;
    tunnel_under_test t(loop, long_limits);
    send_all(t.upstream.fd, "pong");
    EXPECT_EQ(read_exactly(t.client.fd, 4), "pong");
    const linger hard{1, 0};
    ASSERT_EQ(::setsockopt(t.client.fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
    t.client.reset();
    tunnel_outcome o = t.wait();
    EXPECT_EQ(o.end, "error");
    EXPECT_NE(o.error.find("client"), std::string::npos) << o.error;
    EXPECT_TRUE(o.client_fault);
}

TEST(TunnelLoop, ManyTunnelsAtOnceKeepTheirOwnBytes) {
    tunnel_loop loop;
    std::vector<std::unique_ptr<tunnel_under_test>> tunnels;
    for (int i = 0; i < 40; ++i) {
        tunnels.push_back(std::make_unique<tunnel_under_test>(loop, long_limits));
    }
    for (std::size_t i = 0; i < tunnels.size(); ++i) {
        send_all(tunnels[i]->client.fd, pattern(1000 + i, static_cast<std::uint32_t>(i)));
        send_all(tunnels[i]->upstream.fd, pattern(2000 + i, static_cast<std::uint32_t>(i + 100)));
    }
    for (std::size_t i = 0; i < tunnels.size(); ++i) {
        auto& t = *tunnels[i];
        EXPECT_EQ(read_exactly(t.upstream.fd, 1000 + i),
                  pattern(1000 + i, static_cast<std::uint32_t>(i)));
        EXPECT_EQ(read_exactly(t.client.fd, 2000 + i),
                  pattern(2000 + i, static_cast<std::uint32_t>(i + 100)));
        ::shutdown(t.client.fd, SHUT_WR);
        ::shutdown(t.upstream.fd, SHUT_WR);
    }
    for (std::size_t i = 0; i < tunnels.size(); ++i) {
        tunnel_outcome o = tunnels[i]->wait();
        EXPECT_EQ(o.from_client, 1000 + i);
        EXPECT_EQ(o.from_upstream, 2000 + i);
        EXPECT_TRUE(o.end == "client_closed" || o.end == "upstream_closed") << o.end;
    }
}

TEST(TunnelLoop, StopEndsLiveTunnelsAndRefusesNewOnes) {
    tunnel_loop loop;
    tunnel_under_test live(loop, long_limits);
    send_all(live.client.fd, "x");
    EXPECT_EQ(read_exactly(live.upstream.fd, 1), "x");
    loop.stop();
    ASSERT_EQ(live.outcome.wait_for(0s), std::future_status::ready) << "stop() returned first";
    tunnel_outcome o = live.outcome.get();
    EXPECT_EQ(o.end, "error");
    EXPECT_EQ(o.error, "the proxy is stopping");
    EXPECT_TRUE(sees_end(live.client.fd));
    EXPECT_TRUE(sees_end(live.upstream.fd));

    // After stop(), a new tunnel ends at once and its sockets are closed.
    tunnel_under_test late(loop, long_limits);
    ASSERT_EQ(late.outcome.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(late.outcome.get().end, "error");
    EXPECT_TRUE(sees_end(late.client.fd));
    EXPECT_TRUE(sees_end(late.upstream.fd));
    loop.stop();  // idempotent
}

TEST(TunnelLoop, StopBeforeAnyTunnelStartsNoThread) {
    tunnel_loop loop;
    loop.stop();
    tunnel_under_test late(loop, long_limits);
    ASSERT_EQ(late.outcome.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(late.outcome.get().error, "the proxy is stopping");
}

}  // namespace

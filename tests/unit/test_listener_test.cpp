// Self-tests of the hand-written loopback upstreams' plumbing: threaded_listener (one thread
// per connection, descriptors owned and closed by the listener) and raw_upstream's per-request
// policy.

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "support/raw_socket.hpp"
#include "support/raw_upstream.hpp"
#include "support/threaded_listener.hpp"

namespace llm_proxy::test {
namespace {

using namespace std::chrono_literals;

// Waits until `n` connections were accepted (bounded).
void wait_accepted(const std::atomic<int>& accepted, int n) {
    for (int i = 0; i < 1000 && accepted < n; ++i) {
        std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(accepted, n);
}

// Reads until the peer closes; the errno of the read that ended it (0 for a FIN).
int read_until_closed(int fd) {
    char buf[256];
    for (int i = 0; i < 1000; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0) {
            continue;
        }
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) {
            return 0;
        }
        if (n < 0) {
            return errno;
        }
    }
    return -1;  // still open
}

// A serve function that echoes each read until the peer closes or the listener stops.
void echo(const threaded_listener& l, int fd) {
    char buf[256];
    while (!l.stopping()) {
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, 20);
        if (r < 0 || (r > 0 && (p.revents & POLLNVAL))) {
            return;
        }
        if (r == 0) {
            continue;
        }
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0 || !send_all(fd, std::string_view(buf, static_cast<std::size_t>(n)))) {
            return;
        }
    }
}

TEST(ThreadedListener, ServesConnectionsAtOnceAndClosesEachWithAFin) {
    std::atomic<int> accepted{0};
    std::unique_ptr<threaded_listener> l;
    l = std::make_unique<threaded_listener>([&](int fd, std::size_t) { echo(*l, fd); },
                                            [&](std::size_t index) {
                                                EXPECT_EQ(index,
                                                          static_cast<std::size_t>(accepted));
                                                ++accepted;
                                            });
    unique_fd a(connect_raw("127.0.0.1", l->port()));
    unique_fd b(connect_raw("127.0.0.1", l->port()));
    wait_accepted(accepted, 2);
    // Both connections are served while both stay open.
    ASSERT_TRUE(send_all(b.get(), "to b"));
    ASSERT_TRUE(send_all(a.get(), "to a"));
    EXPECT_EQ(recv_some(a.get(), 5s, 4), "to a");
    EXPECT_EQ(recv_some(b.get(), 5s, 4), "to b");
    // The client closes; serve returns; the listener closes its end with a FIN.
    ::shutdown(a.get(), SHUT_WR);
    EXPECT_EQ(read_until_closed(a.get()), 0);
    // The other connection is untouched.
    ASSERT_TRUE(send_all(b.get(), "again"));
    EXPECT_EQ(recv_some(b.get(), 5s, 5), "again");
    l->stop();
}

TEST(ThreadedListener, CloseWithResetSendsAnRstAndSendStopsAtAClosedConnection) {
    std::atomic<int> accepted{0};
    std::unique_ptr<threaded_listener> l;
    l = std::make_unique<threaded_listener>([&](int fd, std::size_t) { echo(*l, fd); },
                                            [&](std::size_t) { ++accepted; });
    unique_fd a(connect_raw("127.0.0.1", l->port()));
    unique_fd b(connect_raw("127.0.0.1", l->port()));
    wait_accepted(accepted, 2);
    EXPECT_TRUE(l->send(0, "late"));
    EXPECT_EQ(recv_some(a.get(), 5s, 4), "late");
    l->close(0, true);
    EXPECT_EQ(read_until_closed(a.get()), ECONNRESET);
    EXPECT_FALSE(l->send(0, "after the close"));
    EXPECT_FALSE(l->send(7, "no such connection"));
    l->close(1, false);
    EXPECT_EQ(read_until_closed(b.get()), 0);
    l->stop();
}

TEST(ThreadedListener, StopEndsServeFunctionsBlockedInARead) {
    std::atomic<int> accepted{0};
    std::atomic<int> returned{0};
    threaded_listener l(
        [&](int fd, std::size_t) {
            char c;
            ::recv(fd, &c, 1, 0);  // blocks until the connection is shut down
            ++returned;
        },
        [&](std::size_t) { ++accepted; });
    unique_fd a(connect_raw("127.0.0.1", l.port()));
    unique_fd b(connect_raw("127.0.0.1", l.port()));
    wait_accepted(accepted, 2);
    l.stop();
    EXPECT_EQ(returned, 2);
    EXPECT_EQ(read_until_closed(a.get()), 0);
    l.stop();  // again: nothing left to do
}

std::string post(const std::string& target, const std::string& body) {
    return "POST " + target +
           " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           body;
}

TEST(RawUpstream, APolicyCanCloseAfterReadingARequestWhole) {
    raw_upstream up;
    up.set_policy([](const strict_request& r, std::size_t nth) {
        return nth == 1 ? raw_upstream::reply{"", true}
                        : raw_upstream::reply{raw_upstream::echo_response(r)};
    });
    unique_fd c(connect_raw("127.0.0.1", up.port()));
    ASSERT_TRUE(send_all(c.get(), post("/first", "abc")));
    strict_request first;
    first.method = "POST";
    first.target = "/first";
    first.body = "abc";
    const std::string answer = raw_upstream::echo_response(first);
    EXPECT_EQ(recv_some(c.get(), 5s, answer.size()), answer);
    const std::string body(100000, 'x');
    ASSERT_TRUE(send_all(c.get(), post("/second", body)));
    // No answer: the connection ends with a FIN once the request is in.
    EXPECT_EQ(recv_until_close(c.get(), 5s), "");
    const auto conns = up.connections();
    ASSERT_EQ(conns.size(), 1u);
    ASSERT_EQ(conns[0].requests.size(), 2u);
    EXPECT_EQ(conns[0].requests[1].target, "/second");
    EXPECT_TRUE(conns[0].requests[1].body == body);
    EXPECT_TRUE(conns[0].closed_here);
    EXPECT_FALSE(conns[0].closed_by_peer);
    EXPECT_EQ(conns[0].pending, "");
    EXPECT_FALSE(up.send_late("/second", "x")) << "the connection is closed";
}

}  // namespace
}  // namespace llm_proxy::test

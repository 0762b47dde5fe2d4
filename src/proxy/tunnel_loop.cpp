#include "tunnel_loop.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <queue>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace llm_proxy::proxy {

namespace {

using steady = std::chrono::steady_clock;

std::string error_text(int err) {
    return std::system_category().message(err);
}

const char* side_name(bool client) {
    return client ? "client" : "upstream";
}

bool would_block(int err) {
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

}  // namespace

struct tunnel_loop::tunnel {
    // What epoll reports back for each of the two sockets.
    struct end_point {
        tunnel* owner;
        bool client;
    };
    // Bytes from `from` to `to`.
    struct direction {
        int from = -1;
        int to = -1;
        bool from_client = false;
        bool open = true;                 // `from` has not ended its sending
        std::unique_ptr<char[]> pending;  // read and not yet taken by `to`
        std::size_t pending_size = 0;
        std::size_t pending_sent = 0;
        std::uint64_t count = 0;  // bytes `to` took
        bool has_pending() const { return pending_sent < pending_size; }
    };

    std::uint64_t id = 0;
    end_point client_end{this, true};
    end_point upstream_end{this, false};
    direction up;                       // client -> upstream
    direction down;                     // upstream -> client
    std::uint32_t client_interest = 0;  // what epoll watches for on each socket (0: not in it)
    std::uint32_t upstream_interest = 0;
    tunnel_limits limits{};
    steady::time_point last_activity;
    steady::time_point scheduled;  // the deadline of its entry in the timer queue
    bool half_closed = false;
    bool ended = false;
    bool timed_out = false;
    bool client_fault = false;
    std::string first_closed;
    std::string error;
    done_fn done;

    std::chrono::milliseconds limit() const {
        return half_closed ? std::min(limits.idle, limits.half_closed) : limits.idle;
    }
};

tunnel_loop::tunnel_loop() = default;

tunnel_loop::~tunnel_loop() {
    stop();
}

void tunnel_loop::add(int client_fd, int upstream_fd, tunnel_limits limits, done_fn done) {
    std::unique_lock lock(mutex_);
    if (stopping_) {
        lock.unlock();
        ::close(client_fd);
        ::close(upstream_fd);
        tunnel_outcome out;
        out.end = "error";
        out.error = "the proxy is stopping";
        done(std::move(out));
        return;
    }
    if (!started_) {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr;  // the wake-up
        if (epoll_fd_ < 0 || wake_fd_ < 0 ||
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
            const int err = errno;
            lock.unlock();
            ::close(client_fd);
            ::close(upstream_fd);
            tunnel_outcome out;
            out.end = "error";
            out.error = "starting the tunnel relay: " + error_text(err);
            done(std::move(out));
            return;
        }
        started_ = true;
        thread_ = std::thread([this] { run(); });
    }
    incoming_.push_back({client_fd, upstream_fd, limits, std::move(done)});
    lock.unlock();
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void tunnel_loop::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
        if (!started_) {
            return;
        }
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    thread_.join();
    ::close(epoll_fd_);
    ::close(wake_fd_);
}

void tunnel_loop::run() {
    pthread_setname_np(pthread_self(), "llm_proxy-relay");
    std::unordered_map<std::uint64_t, std::unique_ptr<tunnel>> live;
    std::vector<std::unique_ptr<tunnel>> ended;  // freed after the events that may name them
    using entry = std::pair<steady::time_point, std::uint64_t>;
    std::priority_queue<entry, std::vector<entry>, std::greater<>> deadlines;
    std::uint64_t next_id = 1;
    auto buffer = std::make_unique_for_overwrite<char[]>(tunnel_read_bytes);

    auto schedule = [&](tunnel& t, steady::time_point at) {
        t.scheduled = at;
        deadlines.emplace(at, t.id);
    };

    // Makes epoll watch each socket for what its tunnel now waits for: reading while its
    // direction is open and has nothing kept back, writing while bytes wait for it. A socket
    // that waits for nothing leaves the set (a hang-up it would report cannot be acted on).
    auto watch = [&](tunnel& t, bool client) {
        const int fd = client ? t.up.from : t.down.from;
        auto& reading = client ? t.up : t.down;
        auto& writing = client ? t.down : t.up;
        std::uint32_t want = 0;
        if (reading.open && !reading.has_pending()) {
            want |= EPOLLIN;
        }
        if (writing.has_pending()) {
            want |= EPOLLOUT;
        }
        std::uint32_t& have = client ? t.client_interest : t.upstream_interest;
        if (want == have) {
            return;
        }
        epoll_event ev{};
        ev.events = want;
        ev.data.ptr = client ? &t.client_end : &t.upstream_end;
        const int op = want == 0 ? EPOLL_CTL_DEL : have == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (::epoll_ctl(epoll_fd_, op, fd, &ev) == 0) {
            have = want;
        }
    };

    auto finish = [&](tunnel& t) {
        if (t.ended) {
            return;
        }
        t.ended = true;
        ::close(t.up.from);    // the client's socket (closing drops it from the epoll set)
        ::close(t.down.from);  // the upstream's
        tunnel_outcome out;
        out.from_client = t.up.count;
        out.from_upstream = t.down.count;
        if (t.timed_out) {
            out.end = "idle_timeout";
        } else if (!t.error.empty()) {
            out.end = "error";
            out.error = std::move(t.error);
            out.client_fault = t.client_fault;
        } else {
            out.end = t.first_closed;
        }
        auto done = std::move(t.done);
        auto node = live.extract(t.id);
        if (!node.empty()) {
            ended.push_back(std::move(node.mapped()));
        }
        done(std::move(out));
    };

    auto fail = [&](tunnel& t, std::string what, bool client_fault) {
        if (t.error.empty() && !t.timed_out) {
            t.error = std::move(what);
            t.client_fault = client_fault;
        }
        finish(t);
    };

    // Writes what the peer takes now: the bytes written (0 if it takes none), or -1 once the
    // tunnel has failed.
    auto write_to = [&](tunnel& t, tunnel::direction& d, const char* data,
                        std::size_t n) -> ssize_t {
        const ssize_t w = ::send(d.to, data, n, MSG_NOSIGNAL);
        if (w >= 0) {
            d.count += static_cast<std::size_t>(w);
            return w;
        }
        if (would_block(errno)) {
            return 0;
        }
        fail(t,
             std::string("writing to the ") + side_name(!d.from_client) + ": " + error_text(errno),
             !d.from_client);
        return -1;
    };

    // Sends `data` on; what the peer does not take now is kept until it is writable.
    auto send_on = [&](tunnel& t, tunnel::direction& d, const char* data, std::size_t n) {
        const ssize_t w = write_to(t, d, data, n);
        if (w >= 0 && static_cast<std::size_t>(w) < n) {
            d.pending_size = n - static_cast<std::size_t>(w);
            d.pending_sent = 0;
            d.pending = std::make_unique_for_overwrite<char[]>(d.pending_size);
            std::memcpy(d.pending.get(), data + w, d.pending_size);
        }
    };

    auto flush = [&](tunnel& t, tunnel::direction& d) {
        const ssize_t w =
            write_to(t, d, d.pending.get() + d.pending_sent, d.pending_size - d.pending_sent);
        if (w <= 0) {
            return;
        }
        t.last_activity = steady::now();
        d.pending_sent += static_cast<std::size_t>(w);
        if (!d.has_pending()) {
            d.pending.reset();
            d.pending_size = d.pending_sent = 0;
        }
    };

    auto receive = [&](tunnel& t, tunnel::direction& d) {
        const ssize_t n = ::recv(d.from, buffer.get(), tunnel_read_bytes, 0);
        if (n > 0) {
            t.last_activity = steady::now();
            send_on(t, d, buffer.get(), static_cast<std::size_t>(n));
            return;
        }
        if (n < 0) {
            if (!would_block(errno)) {
                fail(t,
                     std::string("reading from the ") + side_name(d.from_client) + ": " +
                         error_text(errno),
                     d.from_client);
            }
            return;
        }
        // The end of this direction: passed on as a FIN; the other one goes on.
        d.open = false;
        ::shutdown(d.to, SHUT_WR);
        if (t.first_closed.empty()) {
            t.first_closed = d.from_client ? "client_closed" : "upstream_closed";
            t.half_closed = true;  // the other direction now has the shorter limit
            schedule(t, t.last_activity + t.limit());
        }
        if (!t.up.open && !t.down.open) {
            finish(t);
        }
    };

    auto start = [&](incoming in) {
        auto owned = std::make_unique<tunnel>();
        tunnel& t = *owned;
        t.id = next_id++;
        t.up.from = t.down.to = in.client_fd;
        t.down.from = t.up.to = in.upstream_fd;
        t.up.from_client = true;
        t.limits = in.limits;
        t.done = std::move(in.done);
        t.last_activity = steady::now();
        live.emplace(t.id, std::move(owned));
        for (int fd : {in.client_fd, in.upstream_fd}) {
            const int flags = ::fcntl(fd, F_GETFL);
            if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
                fail(t, "setting the sockets non-blocking: " + error_text(errno), false);
                return;
            }
        }
        watch(t, true);
        watch(t, false);
        if (t.client_interest == 0 || t.upstream_interest == 0) {
            fail(t, "watching the sockets: " + error_text(errno), false);
            return;
        }
        schedule(t, t.last_activity + t.limit());
    };

    std::vector<epoll_event> events(64);
    for (;;) {
        int timeout_ms = -1;
        if (!deadlines.empty()) {
            const auto wait = deadlines.top().first - steady::now();
            timeout_ms =
                wait <= steady::duration::zero()
                    ? 0
                    : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
        }
        const int n =
            ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = events[static_cast<std::size_t>(i)];
            if (ev.data.ptr == nullptr) {
                std::uint64_t count = 0;
                [[maybe_unused]] auto r = ::read(wake_fd_, &count, sizeof count);
                std::vector<incoming> arrived;
                bool stopping = false;
                {
                    std::lock_guard lock(mutex_);
                    arrived.swap(incoming_);
                    stopping = stopping_;
                }
                for (auto& in : arrived) {
                    start(std::move(in));
                }
                if (stopping) {
                    while (!live.empty()) {
                        tunnel& t = *live.begin()->second;
                        fail(t, "the proxy is stopping", false);
                    }
                    return;
                }
                continue;
            }
            const auto& end = *static_cast<const tunnel::end_point*>(ev.data.ptr);
            tunnel& t = *end.owner;
            if (t.ended) {
                continue;
            }
            auto& reading = end.client ? t.up : t.down;  // from this socket
            auto& writing = end.client ? t.down : t.up;  // to this socket
            if ((ev.events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && writing.has_pending()) {
                flush(t, writing);
            }
            if (!t.ended && (ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && reading.open &&
                !reading.has_pending()) {
                receive(t, reading);
            }
            if (!t.ended) {
                watch(t, true);
                watch(t, false);
            }
        }
        ended.clear();
        if (n < 0 && errno != EINTR) {
            // Not expected with a valid set; ending every tunnel beats spinning.
            const std::string why = "waiting for the sockets: " + error_text(errno);
            while (!live.empty()) {
                fail(*live.begin()->second, why, false);
            }
            ended.clear();
        }
        const auto now = steady::now();
        while (!deadlines.empty() && deadlines.top().first <= now) {
            const auto [at, id] = deadlines.top();
            deadlines.pop();
            auto it = live.find(id);
            if (it == live.end() || it->second->scheduled != at) {
                continue;  // ended, or moved to an earlier deadline
            }
            tunnel& t = *it->second;
            const auto due = t.last_activity + t.limit();
            if (now >= due) {
                t.timed_out = true;
                finish(t);
            } else {
                schedule(t, due);
            }
        }
        ended.clear();
    }
}

}  // namespace llm_proxy::proxy

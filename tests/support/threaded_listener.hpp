#pragma once
// A TCP listener on 127.0.0.1 (a port the kernel picks) that serves each connection on a
// thread of its own, for hand-written test upstreams. It owns the connections' descriptors:
// it closes each one when its serve function returns (a FIN, unless close(index, true) reset
// it before), and stop() shuts every open one down, so that a serve function blocked in a read
// returns, then joins the threads.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace llm_proxy::test {

class threaded_listener {
  public:
    // Runs on the connection's own thread; the descriptor stays open until it returns.
    using serve_fn = std::function<void(int fd, std::size_t index)>;
    // Runs on the accepting thread before the connection's thread starts (index: 0, 1, ...
    // in the order of acceptance).
    using accept_fn = std::function<void(std::size_t index)>;

    explicit threaded_listener(serve_fn serve, accept_fn on_accept = {}, int backlog = 64);
    ~threaded_listener();
    threaded_listener(const threaded_listener&) = delete;
    threaded_listener& operator=(const threaded_listener&) = delete;

    std::uint16_t port() const { return port_; }
    // True once stop() began: serve functions end their loops.
    const std::atomic<bool>& stopping() const { return stopping_; }

    // Stops accepting, shuts the open connections down and joins every thread. Idempotent;
    // an owner calls it before the state its serve function uses goes away.
    void stop();

    // Sends `bytes` on connection `index` if it is still open; false otherwise or on an error.
    bool send(std::size_t index, std::string_view bytes);

    // Closes connection `index` now, with an RST when `reset` (SO_LINGER 0). The serve
    // function's later reads and writes on it fail; nothing else is closed by mistake.
    void close(std::size_t index, bool reset);

  private:
    void accept_loop();

    serve_fn serve_;
    accept_fn on_accept_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::vector<int> fds_;              // -1 once closed
    std::vector<std::thread> threads_;  // touched by the acceptor only, joined after it
    std::thread acceptor_;
};

}  // namespace llm_proxy::test

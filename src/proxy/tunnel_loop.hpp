#pragma once
// The relay of blind tunnels: a thread of its own with a level-triggered epoll loop.
//
// Each direction of a tunnel costs, per message, one readiness report, one read and one write,
// which is all a relay can cost. asio's reactor is edge-triggered, so every wait for the next
// message also re-arms the socket (epoll_ctl) or tries a read that fails; at one request in
// flight that was the one system call per message more than a blocking relay makes, and the
// reactor's handler machinery came on top. Here a socket stays registered for what its tunnel
// waits for and changes only when a peer is slow to take bytes (backpressure) or a direction
// ends.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace llm_proxy::proxy {

struct tunnel_outcome {
    std::uint64_t from_client = 0;    // bytes relayed client -> upstream
    std::uint64_t from_upstream = 0;  // bytes relayed upstream -> client
    // "client_closed" / "upstream_closed" (the side that finished sending first),
    // "idle_timeout" or "error".
    std::string end;
    std::string error;          // what went wrong, with "error"
    bool client_fault = false;  // the error was on the client's side
};

struct tunnel_limits {
    // No byte either way for this long ends the tunnel ...
    std::chrono::milliseconds idle;
    // ... and for this long once one direction has ended.
    std::chrono::milliseconds half_closed;
};

// Bytes read at once from a socket, into one buffer for the whole loop (each read is written
// on before the next). What a peer does not take at once is kept for it, and its source is not
// read until it is gone: a tunnel holds no buffer while its peers keep up, and at most this
// much per direction while one does not.
inline constexpr std::size_t tunnel_read_bytes = 16 * 1024;

class tunnel_loop {
  public:
    // Runs on the loop's thread when a tunnel has ended and both descriptors are closed.
    using done_fn = std::function<void(tunnel_outcome)>;

    tunnel_loop();
    ~tunnel_loop();  // stop()
    tunnel_loop(const tunnel_loop&) = delete;
    tunnel_loop& operator=(const tunnel_loop&) = delete;

    // Relays between two connected TCP sockets (taken over: made non-blocking, closed at the
    // end) until both directions have ended, one fails, or the limits expire. Starts the thread
    // on first use. After stop(), `done` runs at once with an error.
    void add(int client_fd, int upstream_fd, tunnel_limits limits, done_fn done);

    // Ends every tunnel ("error": the proxy is stopping), each `done` called, and joins the
    // thread. Idempotent.
    void stop();

  private:
    struct tunnel;
    struct incoming {
        int client_fd;
        int upstream_fd;
        tunnel_limits limits;
        done_fn done;
    };
    void run();

    std::mutex mutex_;  // guards incoming_, stopping_ and started_
    std::vector<incoming> incoming_;
    bool stopping_ = false;
    bool started_ = false;
    int epoll_fd_ = -1;
    int wake_fd_ = -1;  // an eventfd: new tunnels, or stop
    std::thread thread_;
};

}  // namespace llm_proxy::proxy

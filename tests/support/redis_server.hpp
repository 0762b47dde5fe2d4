#pragma once
// A throwaway redis-server for tests: no persistence, listening on 127.0.0.1 on a free port
// and on a unix socket, both in a private temporary directory.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace llm_proxy::test {

class redis_server {
  public:
    // The server binary: $LLM_PROXY_REDIS_SERVER if set, else /usr/bin/redis-server.
    static std::string binary();

    // Starts the server and waits (at most 10 s) until it answers PING. `extra_args` are added
    // to the command line, e.g. {"--requirepass", "secret"}. Throws std::runtime_error (with
    // the server's output) if it cannot be started.
    explicit redis_server(std::vector<std::string> extra_args = {});
    // stop().
    ~redis_server();

    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    std::uint16_t port() const { return port_; }
    std::string host() const { return "127.0.0.1"; }
    // "redis://127.0.0.1:<port>/<db>".
    std::string url(int db = 0) const;
    const std::filesystem::path& socket_path() const { return socket_path_; }
    // "unix://<socket path>?db=<db>".
    std::string unix_url(int db = 0) const;

    // True while the server process has not exited.
    bool running();
    // SIGTERM (after SIGCONT, in case it is paused), then SIGKILL if it is still there after
    // `grace`. Bounded; does nothing if it is not running.
    void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
    // stop(), then start again on the same port (the data is gone). Throws like the
    // constructor.
    void restart();
    // SIGSTOP / SIGCONT: while paused, connections are accepted by the kernel but nothing is
    // answered, like a hung server.
    void pause();
    void resume();

    // What the current (or last) server process printed (its log).
    std::string output() const;

  private:
    // Starts on `port`; false (with the reason in *error) if the process exited early.
    bool start(std::uint16_t port, std::string* error);

    std::vector<std::string> extra_args_;
    temp_dir dir_;
    std::filesystem::path socket_path_;
    std::uint16_t port_ = 0;
    std::unique_ptr<child_process> process_;
};

}  // namespace llm_proxy::test

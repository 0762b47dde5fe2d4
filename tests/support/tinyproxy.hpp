#pragma once
// A real parent proxy for the --upstream-proxy tests: Debian's tinyproxy, in the foreground on
// 127.0.0.1 and a free port, with a generated configuration (LogLevel Info, so each request
// line it receives is logged on its stdout).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace llm_proxy::test {

class tinyproxy {
  public:
    // The tinyproxy binary in PATH, or nullopt when it is not installed.
    static std::optional<std::filesystem::path> find_binary();

    // Writes `dir`/tinyproxy.conf (Port, Listen/Allow 127.0.0.1, no ConnectPort line so
    // CONNECT reaches any port, plus `extra_lines` such as "BasicAuth user pass") and starts
    // tinyproxy until it accepts connections. Throws std::runtime_error if it does not start.
    tinyproxy(const std::filesystem::path& dir, std::vector<std::string> extra_lines = {});
    ~tinyproxy();

    tinyproxy(const tinyproxy&) = delete;
    tinyproxy& operator=(const tinyproxy&) = delete;

    std::uint16_t port() const { return port_; }
    // "http://127.0.0.1:<port>", or with "user:password@" (written as given) before the host.
    std::string url(const std::string& userinfo = {}) const;

    // Waits for a log line matching `re` (e.g. the request line it received).
    bool wait_for_log(const std::regex& re,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
    std::string log() const { return process_->stdout_text(); }

    // Stops it (SIGTERM, then reaped); idempotent.
    void stop();

  private:
    std::uint16_t port_ = 0;
    std::unique_ptr<child_process> process_;
};

// A port on 127.0.0.1 that nothing listens on (bound, then closed).
std::uint16_t closed_loopback_port();

}  // namespace llm_proxy::test

#pragma once
// Runs the real proxy binary (LLM_PROXY_BINARY, or $LLM_PROXY_TEST_BINARY when set, e.g. to
// run the end-to-end tests against another build) and waits until it reports
// "llm_proxy listening on <host>:<port>" on stderr (not "metrics listening on").

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "support/http_client.hpp"
#include "support/process.hpp"

namespace llm_proxy::test {

class proxy_process {
  public:
    // Appends `--listen 127.0.0.1:0` unless args already contain --listen/-l (or --listen=...).
    // Throws std::runtime_error (with the proxy's stderr) if it exits or stays silent for
    // startup_timeout.
    explicit proxy_process(std::vector<std::string> args = {}, spawn_options options = {},
                           std::chrono::milliseconds startup_timeout = std::chrono::seconds(15));
    // SIGTERM with 5 s grace, then SIGKILL.
    ~proxy_process();

    proxy_process(const proxy_process&) = delete;
    proxy_process& operator=(const proxy_process&) = delete;

    std::uint16_t port() const { return port_; }
    // Host to connect to: the reported address, with 0.0.0.0 / [::] mapped to loopback; IPv6 in
    // brackets.
    const std::string& host() const { return host_; }
    // "http://<host>:<port>", e.g. "http://127.0.0.1:40123".
    std::string url() const;

    // Client options for going through this proxy, trusting `ca_file` for the MITM certificates.
    client_options make_client_options(std::string ca_file = {}) const;

    // Sends `sig` and waits; returns the exit code (128 + signal if killed by one), nullopt on
    // timeout (the process is then SIGKILLed by the destructor). Idempotent.
    std::optional<int> stop(int sig = SIGTERM,
                            std::chrono::milliseconds timeout = std::chrono::seconds(15));
    bool running() { return process_->running(); }

    std::string stderr_text() const { return process_->stderr_text(); }
    std::string stdout_text() const { return process_->stdout_text(); }
    std::optional<std::vector<std::string>> wait_for_stderr_line(const std::regex& re,
                                                                 std::chrono::milliseconds timeout,
                                                                 std::size_t* cursor = nullptr) {
        return process_->wait_for_stderr_line(re, timeout, cursor);
    }
    long rss_kib() const { return process_->rss_kib(); }
    long peak_rss_kib() const { return process_->peak_rss_kib(); }
    pid_t pid() const { return process_->pid(); }
    const std::vector<std::string>& argv() const { return process_->argv(); }
    child_process& process() { return *process_; }

  private:
    std::string host_;
    std::uint16_t port_ = 0;
    std::unique_ptr<child_process> process_;
};

}  // namespace llm_proxy::test

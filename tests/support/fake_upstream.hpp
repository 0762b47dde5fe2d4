#pragma once
// Runs the fake OpenAI-compatible upstream (FAKE_UPSTREAM_BINARY) on 127.0.0.1 and an ephemeral
// port, TLS with a test_pki server certificate or plain HTTP.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.hpp"
#include "support/test_ca.hpp"

namespace llm_proxy::test {

class fake_upstream {
  public:
    struct plain_t {};
    static constexpr plain_t plain{};

    // TLS: `fake_upstream --cert <server_cert> --key <server_key> --port 0 <extra_args...>`.
    explicit fake_upstream(const test_pki& pki, std::vector<std::string> extra_args = {},
                           spawn_options options = {});
    // Plain HTTP: `fake_upstream --plain --port 0 <extra_args...>`.
    explicit fake_upstream(plain_t, std::vector<std::string> extra_args = {},
                           spawn_options options = {});
    ~fake_upstream();

    fake_upstream(const fake_upstream&) = delete;
    fake_upstream& operator=(const fake_upstream&) = delete;

    std::uint16_t port() const { return port_; }
    bool tls() const { return tls_; }
    // "https://127.0.0.1:<port>" or "http://127.0.0.1:<port>", plus `path` if given.
    std::string url(std::string_view path = "") const;

    // GET /stats, straight to the upstream (no proxy; the certificate is not verified).
    nlohmann::json stats();
    // POST /stats/reset; throws std::runtime_error unless it answers 2xx.
    void reset_stats();

    // Signals the process and reaps it; returns its exit code (nullopt on timeout). Idempotent.
    std::optional<int> stop(int sig = SIGTERM,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));

    std::string stderr_text() const { return process_->stderr_text(); }
    std::string stdout_text() const { return process_->stdout_text(); }
    child_process& process() { return *process_; }

  private:
    void start(std::vector<std::string> argv, spawn_options options);

    bool tls_;
    std::uint16_t port_ = 0;
    std::unique_ptr<child_process> process_;
};

}  // namespace llm_proxy::test

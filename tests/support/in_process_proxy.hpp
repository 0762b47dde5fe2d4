#pragma once
// The proxy engine inside the test process: a proxy::server with an addon chain the test builds
// (test addons included), listening on 127.0.0.1 and an ephemeral port, serving on a thread of
// its own. api.openai.com:443 and upstream.test:443 are routed to a fake upstream whose
// certificate is verified against the test PKI; the proxy's own CA is an EC test CA (loaded,
// not generated) in a temporary directory.
//
//   auto chain = std::make_shared<addon_chain>();
//   chain->add(my_addon);
//   in_process_proxy proxy(chain, pki, upstream.port());
//   auto client = proxy.make_client();
//   auto r = client.get("https://api.openai.com/echo");
//
// The destructor stops the server gracefully and joins its thread. A server listens for
// SIGINT/SIGTERM (Asio signal handlers) while it exists; once the last in-process proxy is
// gone, the process's dispositions are back to what they were before the first one (Asio
// itself would leave SIG_DFL). Proxies may follow each other or overlap in one process.

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/proxy/config.hpp"
#include "support/http_client.hpp"
#include "support/proxied_connection.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"

namespace llm_proxy::proxy {
class server;
}

namespace llm_proxy::test {

struct in_process_proxy_options {
    unsigned threads = 2;
    // Bounds the destructor: flows still running after it are cut off.
    std::chrono::milliseconds shutdown_grace{2000};
    // Last word on the configuration (e.g. more connect_to rules, timeouts).
    std::function<void(proxy_config&)> configure{};
};

class in_process_proxy {
  public:
    // Throws when the server cannot be built (bad CA, cannot listen...).
    in_process_proxy(std::shared_ptr<addon_chain> chain, const test_pki& upstream_pki,
                     std::uint16_t upstream_port, in_process_proxy_options options = {});
    ~in_process_proxy();
    in_process_proxy(const in_process_proxy&) = delete;
    in_process_proxy& operator=(const in_process_proxy&) = delete;

    std::string host() const { return "127.0.0.1"; }
    std::uint16_t port() const { return port_; }
    // "http://127.0.0.1:<port>".
    std::string url() const;
    // The certificate clients must trust for the proxy's MITM certificates.
    std::filesystem::path ca_cert() const;
    const proxy_config& config() const { return config_; }
    addon_chain& chain() { return *chain_; }

    client_options make_client_options(
        std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    // A client going through this proxy and trusting its CA.
    http_client make_client(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    // A byte-exact connection through this proxy to `origin` ("https://api.openai.com").
    std::unique_ptr<proxied_connection> connect(
        std::string_view origin = "https://api.openai.com",
        std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

    // Stops the server and joins its thread (idempotent; the destructor calls it). Rethrows
    // an exception that escaped server::run().
    void stop();
    // Whether server::run() is still running (false after it returned or threw).
    bool running() const;

  private:
    temp_dir work_{"llm_proxy_inproc"};
    std::shared_ptr<addon_chain> chain_;
    proxy_config config_;
    std::shared_ptr<void> signal_guard_;  // declared before server_: released after it
    std::unique_ptr<proxy::server> server_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    mutable std::mutex mutex_;
    bool running_ = false;
    std::exception_ptr run_error_;
};

}  // namespace llm_proxy::test

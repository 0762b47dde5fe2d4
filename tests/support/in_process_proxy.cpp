#include "support/in_process_proxy.hpp"

#include <csignal>
#include <stdexcept>
#include <utility>

#include "llm_proxy/proxy/server.hpp"
#include "llm_proxy/tls/certificate_authority.hpp"

namespace llm_proxy::test {

namespace {

// The proxy's CA in mitmproxy's layout (key + certificate in mitmproxy-ca.pem): an EC test CA,
// so no proxy spends a second generating an RSA key.
void write_proxy_ca(const std::filesystem::path& pki_dir, const std::filesystem::path& ca_dir) {
    const auto pki = make_test_pki(pki_dir);
    std::filesystem::create_directories(ca_dir);
    const auto combined = ca_dir / std::string(tls::ca_key_and_cert_file);
    write_file(combined, read_file(pki.ca_key) + read_file(pki.ca_cert));
    std::filesystem::permissions(
        combined, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// SIGINT and SIGTERM as they were before the first live proxy of the process, put back when
// the last one is gone.
class signal_dispositions {
  public:
    signal_dispositions() {
        std::lock_guard lock(mutex_);
        if (users_++ == 0) {
            ::sigaction(SIGINT, nullptr, &saved_int_);
            ::sigaction(SIGTERM, nullptr, &saved_term_);
        }
    }
    ~signal_dispositions() {
        std::lock_guard lock(mutex_);
        if (--users_ == 0) {
            ::sigaction(SIGINT, &saved_int_, nullptr);
            ::sigaction(SIGTERM, &saved_term_, nullptr);
        }
    }
    signal_dispositions(const signal_dispositions&) = delete;
    signal_dispositions& operator=(const signal_dispositions&) = delete;

  private:
    static inline std::mutex mutex_;
    static inline int users_ = 0;
    static inline struct sigaction saved_int_ {};
    static inline struct sigaction saved_term_ {};
};

}  // namespace

in_process_proxy::in_process_proxy(std::shared_ptr<addon_chain> chain, const test_pki& upstream_pki,
                                   std::uint16_t upstream_port, in_process_proxy_options options)
    : chain_(std::move(chain)) {
    if (!chain_) {
        throw std::invalid_argument("in_process_proxy: no addon chain");
    }
    config_.listen_host = "127.0.0.1";
    config_.listen_port = 0;
    config_.ca_dir = work_ / "ca";
    config_.upstream_ca = upstream_pki.ca_cert;
    config_.connect_to.push_back({"api.openai.com", 443, "127.0.0.1", upstream_port});
    config_.connect_to.push_back({"upstream.test", 443, "127.0.0.1", upstream_port});
    config_.threads = options.threads;
    config_.shutdown_grace = options.shutdown_grace;
    if (options.configure) {
        options.configure(config_);
    }
    write_proxy_ca(work_ / "proxy-pki", config_.ca_dir);
    auto ca = tls::certificate_authority::load_or_create(config_.ca_dir);
    signal_guard_ = std::make_shared<signal_dispositions>();
    server_ = std::make_unique<proxy::server>(config_, chain_, std::move(ca));
    port_ = server_->local_endpoint().port();
    running_ = true;
    thread_ = std::thread([this] {
        std::exception_ptr error;
        try {
            server_->run();
        } catch (...) {
            error = std::current_exception();
        }
        std::lock_guard lock(mutex_);
        running_ = false;
        run_error_ = error;
    });
}

in_process_proxy::~in_process_proxy() {
    try {
        stop();
    } catch (...) {
        // Reported by stop() when a test calls it; a destructor must not throw.
    }
}

std::string in_process_proxy::url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
}

std::filesystem::path in_process_proxy::ca_cert() const {
    return config_.ca_dir / std::string(tls::ca_cert_pem_file);
}

client_options in_process_proxy::make_client_options(std::chrono::milliseconds timeout) const {
    client_options o;
    o.proxy_host = host();
    o.proxy_port = port_;
    o.ca_file = ca_cert().string();
    o.timeout = timeout;
    return o;
}

http_client in_process_proxy::make_client(std::chrono::milliseconds timeout) const {
    return http_client(make_client_options(timeout));
}

std::unique_ptr<proxied_connection> in_process_proxy::connect(
    std::string_view origin, std::chrono::milliseconds timeout) const {
    return std::make_unique<proxied_connection>(host(), port_, origin, ca_cert().string(), timeout);
}

void in_process_proxy::stop() {
    if (thread_.joinable()) {
        server_->stop();  // thread-safe; queued when run() has not started yet
        thread_.join();
    }
    server_.reset();  // the listening socket and the signal handlers go with it
    signal_guard_.reset();
    std::exception_ptr error;
    {
        std::lock_guard lock(mutex_);
        error = std::exchange(run_error_, nullptr);
    }
    if (error) {
        std::rethrow_exception(error);
    }
}

bool in_process_proxy::running() const {
    std::lock_guard lock(mutex_);
    return running_;
}

}  // namespace llm_proxy::test

#include "support/fake_upstream.hpp"

#include <regex>
#include <stdexcept>
#include <utility>

#include "support/http_client.hpp"

#ifndef FAKE_UPSTREAM_BINARY
#error "FAKE_UPSTREAM_BINARY must be defined (tests/CMakeLists.txt does it)"
#endif

namespace llm_proxy::test {

namespace {

http_client direct_client() {
    client_options opts;
    opts.verify_peer = false;
    opts.timeout = std::chrono::seconds(10);
    return http_client(std::move(opts));
}

}  // namespace

fake_upstream::fake_upstream(const test_pki& pki, std::vector<std::string> extra_args,
                             spawn_options options)
    : tls_(true) {
    std::vector<std::string> argv{FAKE_UPSTREAM_BINARY,
                                  "--cert",
                                  pki.server_cert.string(),
                                  "--key",
                                  pki.server_key.string(),
                                  "--port",
                                  "0"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    start(std::move(argv), std::move(options));
}

fake_upstream::fake_upstream(plain_t, std::vector<std::string> extra_args, spawn_options options)
    : tls_(false) {
    std::vector<std::string> argv{FAKE_UPSTREAM_BINARY, "--plain", "--port", "0"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    start(std::move(argv), std::move(options));
}

fake_upstream::~fake_upstream() {
    if (process_ && process_->running()) {
        stop(SIGTERM, std::chrono::seconds(3));
    }
}

void fake_upstream::start(std::vector<std::string> argv, spawn_options options) {
    process_ = std::make_unique<child_process>(std::move(argv), std::move(options));
    static const std::regex port_re(R"(^PORT ([0-9]+))");
    auto groups = process_->wait_for_stdout_line(port_re, std::chrono::seconds(30));
    if (!groups) {
        std::string why = process_->running() ? "did not print 'PORT <n>' within 30 s"
                                              : "exited before printing 'PORT <n>'";
        if (auto code = process_->exit_code()) {
            why += " (exit code " + std::to_string(*code) + ")";
        }
        throw std::runtime_error("fake_upstream " + why + "\nstdout:\n" + process_->stdout_text() +
                                 "\nstderr:\n" + process_->stderr_text());
    }
    const unsigned long port = std::stoul((*groups)[1]);
    if (port == 0 || port > 65535) {
        throw std::runtime_error("fake_upstream printed a bad port: " + (*groups)[1]);
    }
    port_ = static_cast<std::uint16_t>(port);
}

std::string fake_upstream::url(std::string_view path) const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) +
           std::string(path);
}

nlohmann::json fake_upstream::stats() {
    auto client = direct_client();
    response r = client.request("GET", url("/stats"), {{"connection", "close"}});
    if (r.status != 200) {
        throw std::runtime_error("fake_upstream GET /stats: status " + std::to_string(r.status) +
                                 ": " + r.body);
    }
    return nlohmann::json::parse(r.body);
}

void fake_upstream::reset_stats() {
    auto client = direct_client();
    response r = client.request("POST", url("/stats/reset"), {{"connection", "close"}});
    if (r.status / 100 != 2) {
        throw std::runtime_error("fake_upstream POST /stats/reset: status " +
                                 std::to_string(r.status) + ": " + r.body);
    }
}

std::optional<int> fake_upstream::stop(int sig, std::chrono::milliseconds timeout) {
    if (auto code = process_->exit_code()) {
        return code;
    }
    process_->send_signal(sig);
    return process_->wait_exit(timeout);
}

}  // namespace llm_proxy::test

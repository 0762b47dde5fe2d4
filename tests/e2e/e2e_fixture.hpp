#pragma once
// The end-to-end set-up: a test PKI, a fake OpenAI upstream over TLS on loopback that the
// proxy reaches through --connect-to (certificate still verified for api.openai.com against
// --upstream-ca), and the real llm_proxy binary with its own CA directory.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/fake_upstream.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/proxy_process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"

namespace llm_proxy::test {

class e2e_test : public ::testing::Test {
  protected:
    void SetUp() override {
        pki_ = make_test_pki(work_ / "pki");
        upstream_ = std::make_unique<fake_upstream>(pki_);
    }

    // Arguments that route api.openai.com:443 (and upstream.test:443) to the fake upstream.
    std::vector<std::string> base_args() const {
        auto port = std::to_string(upstream_->port());
        return {"--ca_dir",      ca_dir_.string(),
                "--upstream-ca", pki_.ca_cert.string(),
                "--connect-to",  "api.openai.com:443:127.0.0.1:" + port,
                "--connect-to",  "upstream.test:443:127.0.0.1:" + port,
                "--threads",     "2"};
    }

    // Starts `llm_proxy <base args> <args>`; args usually start with the subcommand.
    proxy_process& start_proxy(std::vector<std::string> args) {
        auto all = base_args();
        all.insert(all.end(), args.begin(), args.end());
        proxy_ = std::make_unique<proxy_process>(all);
        return *proxy_;
    }
    proxy_process& start_dir_logger(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"dir_logger", "--verbose", "-o", log_dir().string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return start_proxy(args);
    }

    std::filesystem::path log_dir() const { return work_ / "logs"; }
    std::filesystem::path proxy_ca_cert() const { return ca_dir_ / "mitmproxy-ca-cert.pem"; }

    // A client going through the proxy, trusting the proxy's CA.
    http_client proxied_client(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        auto o = proxy_->make_client_options(proxy_ca_cert().string());
        o.timeout = timeout;
        return http_client(o);
    }

    // curl through the proxy; returns {exit code, stdout, stderr}.
    struct curl_result {
        int exit_code;
        std::string out;
        std::string err;
    };
    curl_result curl(std::vector<std::string> args,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        std::vector<std::string> argv = {"curl", "-sS", "--max-time", "20", "-x", proxy_->url()};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = run_command(argv, timeout);
        return {r.exit_code, r.out, r.err};
    }

    // The JSON records written so far, as files or as lines of JSONL segments (waits up to
    // `timeout` for at least `n`).
    std::vector<nlohmann::json> wait_for_records(
        std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));

    temp_dir work_{"llm_proxy_e2e"};
    std::filesystem::path ca_dir_ = work_ / "ca";
    test_pki pki_;
    std::unique_ptr<fake_upstream> upstream_;
    std::unique_ptr<proxy_process> proxy_;
};

// Debian's interpreter, which has python3-httpx (a python3 earlier on PATH may not).
inline constexpr const char* python3 = "/usr/bin/python3";

// Splits "HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody" (curl -i output) into status line + headers + body.
struct curl_response {
    unsigned status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::optional<std::string> header(std::string_view name) const;
};
curl_response parse_curl_include(const std::string& out);

}  // namespace llm_proxy::test

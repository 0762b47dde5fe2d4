#pragma once
// Shared set-up of the body framing, pooling, client abort and malformed request tests: a test
// PKI, one fake upstream and the proxies a test suite needs, started once per suite (that is,
// once per process when ctest runs one test at a time) and reused by its rows; plus helpers
// that upload bodies through a proxied_connection and check what the upstream received.
//
// Every proxy runs with --threads 1, so one upstream pool serves all its clients and a pooled
// connection is really shared between them, and with --idle-timeout 300, so no test can pass by
// waiting for an idle timeout.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/body_stream.hpp"
#include "support/fake_upstream.hpp"
#include "support/proxied_connection.hpp"
#include "support/proxy_process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"

namespace llm_proxy::test {

// The proxy configurations under test.
enum class proxy_kind {
    simple,
    dir_logger,       // default --max-body-log
    dir_logger_tiny,  // --max-body-log 1000
    cache,            // memory engine, --cache-max-body 100K
};
const char* name_of(proxy_kind kind);

// Request bodies up to this size are below the cache's --cache-max-body; larger ones above.
inline constexpr std::uint64_t cache_max_body = 100 * 1024;

class framing_env {
  public:
    framing_env();
    ~framing_env();

    fake_upstream& upstream() { return *upstream_; }
    // The CA file that verifies the proxies' MITM certificates.
    std::string proxy_ca() const { return (ca_dir_ / "mitmproxy-ca-cert.pem").string(); }
    // A directory of its own for whatever a test writes (log directories).
    std::filesystem::path fresh_dir(std::string_view tag);

    // --ca_dir, --upstream-ca, --connect-to (api.openai.com:443 -> the fake upstream),
    // --threads 1, --idle-timeout 300.
    std::vector<std::string> base_args() const;
    // The subcommand and its flags; dir_logger kinds write to log_dir.
    std::vector<std::string> kind_args(proxy_kind kind, const std::filesystem::path& log_dir) const;

    // The suite's proxy of that kind, started on first use. One that has died since is
    // reported as a test failure and started again.
    proxy_process& shared_proxy(proxy_kind kind);
    // A proxy for one test only: base_args() + args.
    std::unique_ptr<proxy_process> start_proxy(const std::vector<std::string>& args);
    // Stops the shared proxies: the next test starts from fresh ones (after a failure, so that
    // a connection a failed test left out of sync cannot fail the following tests too).
    void stop_shared_proxies() { proxies_.clear(); }

  private:
    temp_dir work_{"llm_proxy_framing"};
    std::filesystem::path ca_dir_ = work_ / "ca";
    test_pki pki_;
    std::unique_ptr<fake_upstream> upstream_;
    std::map<proxy_kind, std::unique_ptr<proxy_process>> proxies_;
    int dirs_ = 0;
};

// Base fixture: the environment lives from the first test of a suite to its last.
class framing_suite : public ::testing::Test {
  public:
    static void SetUpTestSuite();
    static void TearDownTestSuite();

  protected:
    void TearDown() override;
    static framing_env& env();

    // A connection through `proxy` to origin ("https://api.openai.com": CONNECT + TLS;
    // "http://api.openai.com": absolute-form, upgraded to https upstream by the proxy).
    proxied_connection connect(proxy_process& proxy, std::string_view origin,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));

  private:
    static std::unique_ptr<framing_env> env_;
};

// A test-wide unique token for targets: "<tag>-<n>".
std::string unique_id(std::string_view tag);
// A fresh seed for each generated body, so no two uploads of a run are the same bytes.
std::uint64_t next_seed();

// When the head goes relative to the body.
enum class send_timing {
    together,    // the head and the first body piece in one write
    head_first,  // the head alone, ~50 ms pause, then the body (as curl does past 64 KiB)
};

struct upload_outcome {
    raw_response response;
    upload_result sent;
    bool got_continue = false;  // an interim 100 arrived before the body was sent
    std::string send_error;     // the proxy stopped taking the body (then sent.length is 0)
};

// POSTs a body of `spec` to `path` (e.g. "/sink?id=x") on c and reads the final response.
// expect_continue: sends "Expect: 100-continue" and the body only after the 100 (a final
// response instead of the 100 ends the upload there). When the proxy stops reading the body
// (closes, resets), the response it sent before, if any, is returned with send_error set;
// without one, connection_closed is thrown.
upload_outcome upload(proxied_connection& c, const upload_spec& spec, send_timing timing,
                      bool expect_continue, const std::string& path,
                      const header_list& extra_headers = {});

// Checks that the upstream's /sink answer describes exactly what was sent, to `path`.
void expect_sink_received(const upload_outcome& out, const std::string& path);

// GET /echo?id=<id> on c: the answer must be this request's own (target and method), not one
// meant for another request. Returns the response.
raw_response expect_own_echo(proxied_connection& c, const std::string& id, unsigned version = 11,
                             const header_list& extra_headers = {});

// Polls the upstream's /stats until pred(stats) holds or `timeout` passes; returns the last.
template <class Pred>
nlohmann::json wait_stats(fake_upstream& up, Pred pred,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto stats = up.stats();
        if (pred(stats) || std::chrono::steady_clock::now() > deadline) {
            return stats;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

// The requests_seen list of the upstream's stats, sorted.
std::vector<std::string> sorted_requests_seen(const nlohmann::json& stats);

// The dir_logger records in `dir` (waits up to `timeout` for at least `n`), oldest first.
std::vector<nlohmann::json> read_records(const std::filesystem::path& dir, std::size_t n,
                                         std::chrono::milliseconds timeout);

}  // namespace llm_proxy::test

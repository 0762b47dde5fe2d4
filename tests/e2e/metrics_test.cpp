// --metrics-listen: the real binary serves /metrics in the Prometheus text format. Requests
// through the proxy (an LLM chat completion, an error status, an unreachable upstream) show up
// with exact counts; promtool accepts the exposition; a real Prometheus server scrapes it.
// promtool and prometheus come from Debian's `prometheus` package (.ci/install-deps); without
// them those tests are skipped, naming the binary.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <sstream>
#include <thread>

#include "e2e_fixture.hpp"
#include "support/metrics_text.hpp"
#include "support/otlp_collector.hpp"
#include "support/raw_socket.hpp"

namespace llm_proxy::test {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// The full path of `name` on PATH (or in /usr/bin, /usr/sbin), or "".
std::string find_binary(const std::string& name) {
    std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    path += ":/usr/bin:/usr/sbin";
    std::istringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) {
            continue;
        }
        auto candidate = fs::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) {
            return candidate.string();
        }
    }
    return {};
}

double value_of(const std::string& text, const std::string& series) {
    return test::metric_value(text, series);
}

const std::string chat_body =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to the metrics."}]})";

}  // namespace

class Metrics : public e2e_test {
  protected:
    void SetUp() override {
        e2e_test::SetUp();
        // A port nothing listens on: requests to down.test fail with a connect error (502).
        closed_port_ = pick_free_port();
        start_with_metrics({"--connect-to",
                            "down.test:443:127.0.0.1:" + std::to_string(closed_port_), "dir_logger",
                            "-o", log_dir().string()});
    }

    // Starts the proxy (replacing a running one) with `args` and --metrics-listen on any port.
    void start_with_metrics(std::vector<std::string> args) {
        args.insert(args.end(), {"--metrics-listen", "127.0.0.1:0"});
        start_proxy(args);
        auto line = proxy_->wait_for_stderr_line(
            std::regex(R"(metrics listening on 127\.0\.0\.1:([0-9]+))"), 5s);
        ASSERT_TRUE(line) << proxy_->stderr_text();
        metrics_port_ = static_cast<std::uint16_t>(std::stoi((*line)[1]));
        ASSERT_NE(metrics_port_, 0);
        ASSERT_NE(metrics_port_, proxy_->port());
    }

    std::string metrics_url(const std::string& path = "/metrics") const {
        return "http://127.0.0.1:" + std::to_string(metrics_port_) + path;
    }

    response scrape_response() {
        http_client direct;
        return direct.get(metrics_url());
    }

    // Scrapes until `series` has `value` (a flow is counted right after its response went
    // out, so the last one may lag the client by a moment); returns the last scrape.
    std::string scrape_until(const std::string& series, double value) {
        std::string text;
        auto deadline = std::chrono::steady_clock::now() + 10s;
        do {
            text = scrape_response().body;
            if (value_of(text, series) == value) {
                break;
            }
            std::this_thread::sleep_for(20ms);
        } while (std::chrono::steady_clock::now() < deadline);
        return text;
    }

    // The traffic the tests count: 2 × GET /v1/models, one chat completion, a 503 and a
    // request whose upstream refuses the connection.
    void send_traffic() {
        auto client = proxied_client();
        EXPECT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
        EXPECT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
        auto chat = client.post("https://api.openai.com/v1/chat/completions", chat_body,
                                {{"Content-Type", "application/json"}});
        EXPECT_EQ(chat.status, 200u) << chat.body;
        EXPECT_EQ(client.get("https://api.openai.com/status/503").status, 503u);
        auto down = proxied_client();
        EXPECT_EQ(down.get("https://down.test/v1/models").status, 502u);
    }

    std::uint16_t closed_port_ = 0;
    std::uint16_t metrics_port_ = 0;
};

TEST_F(Metrics, CountsRequestsTokensAndRecordsExactly) {
    send_traffic();
    auto text = scrape_until("llm_proxy_records_written_total", 5);

    EXPECT_EQ(value_of(text, R"(llm_proxy_requests_total{host="api.openai.com",method="GET",)"
                             R"(status="200"})"),
              2)
        << text;
    EXPECT_EQ(value_of(text, R"(llm_proxy_requests_total{host="api.openai.com",method="POST",)"
                             R"(status="200"})"),
              1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_requests_total{host="api.openai.com",method="GET",)"
                             R"(status="503"})"),
              1);
    EXPECT_EQ(
        value_of(text, R"(llm_proxy_requests_total{host="down.test",method="GET",status="502"})"),
        1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_errors_total{kind="connect"})"), 1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_errors_total{kind="upstream_reset"})"), 0);
    EXPECT_EQ(value_of(text, "llm_proxy_request_duration_seconds_count"), 5);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_duration_seconds_bucket{le="+Inf"})"), 5);
    // The response heads that came from an upstream (not the connect failure).
    EXPECT_EQ(value_of(text, "llm_proxy_time_to_first_byte_seconds_count"), 4);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_bytes_total{host="api.openai.com"})"),
              static_cast<double>(chat_body.size()));

    // The fake upstream counts size / 4 + 1 prompt tokens and 33 completion tokens.
    const std::string model = R"(provider="openai",model="gpt-4o-mini")";
    EXPECT_EQ(value_of(text, "llm_proxy_llm_requests_total{" + model + "}"), 1) << text;
    EXPECT_EQ(value_of(text, "llm_proxy_llm_tokens_total{" + model + R"(,type="input"})"),
              static_cast<double>(chat_body.size() / 4 + 1));
    EXPECT_EQ(value_of(text, "llm_proxy_llm_tokens_total{" + model + R"(,type="output"})"), 33);
    EXPECT_EQ(value_of(text, "llm_proxy_llm_tokens_total{" + model + R"(,type="cached"})"), 0);
    EXPECT_EQ(value_of(text, "llm_proxy_llm_tokens_total{" + model + R"(,type="reasoning"})"), 0);
    EXPECT_GT(value_of(text, "llm_proxy_llm_cost_usd_total{" + model + "}"), 0);

    EXPECT_EQ(value_of(text, "llm_proxy_records_written_total"), 5);
    EXPECT_EQ(value_of(text, "llm_proxy_records_failed_total"), 0);
    EXPECT_EQ(value_of(text, "llm_proxy_records_queued"), 0);
    EXPECT_GE(value_of(text, "llm_proxy_client_connections"), 0);
    EXPECT_EQ(value_of(text, "llm_proxy_tunnels"), 0);
    // The keep-alive connection to the fake upstream went back to its worker's pool.
    EXPECT_GE(value_of(text, "llm_proxy_upstream_idle_connections"), 1);
}

TEST_F(Metrics, ServesTheTextFormatOnlyAtMetrics) {
    auto r = scrape_response();
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(r.body.find("# TYPE llm_proxy_requests_total counter\n"), std::string::npos);
    EXPECT_NE(r.body.find("# TYPE llm_proxy_request_duration_seconds histogram\n"),
              std::string::npos);
    http_client direct;
    EXPECT_EQ(direct.get(metrics_url("/")).status, 404u);
    EXPECT_EQ(direct.get(metrics_url("/metricsx")).status, 404u);
    EXPECT_EQ(direct.get(metrics_url("/metrics?x=1")).status, 200u);
    EXPECT_EQ(direct.request("POST", metrics_url(), {}, "x").status, 405u);
    // The proxy's own port still proxies; it serves no metrics.
    auto client = proxied_client();
    EXPECT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
}

TEST_F(Metrics, PromtoolAcceptsTheExposition) {
    auto promtool = find_binary("promtool");
    if (promtool.empty()) {
        GTEST_SKIP() << "promtool is not installed (Debian package prometheus)";
    }
    send_traffic();
    auto text = scrape_until("llm_proxy_records_written_total", 5);
    auto r = run_command({promtool, "check", "metrics"}, 30s, text);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << text;
    EXPECT_EQ(r.out + r.err, "") << text;
}

TEST_F(Metrics, PrometheusScrapesTheProxy) {
    auto prometheus = find_binary("prometheus");
    if (prometheus.empty()) {
        GTEST_SKIP() << "prometheus is not installed (Debian package prometheus)";
    }
    send_traffic();
    scrape_until("llm_proxy_records_written_total", 5);

    auto config = work_.write_file("prometheus.yml",
                                   "global:\n"
                                   "  scrape_interval: 1s\n"
                                   "  evaluation_interval: 1s\n"
                                   "scrape_configs:\n"
                                   "  - job_name: llm_proxy\n"
                                   "    static_configs:\n"
                                   "      - targets: ['127.0.0.1:" +
                                       std::to_string(metrics_port_) + "']\n");
    auto port = pick_free_port();
    child_process server({prometheus, "--config.file=" + config.string(),
                          "--storage.tsdb.path=" + (work_ / "tsdb").string(),
                          "--web.listen-address=127.0.0.1:" + std::to_string(port)});

    // sum(llm_proxy_requests_total) is 5 once Prometheus has scraped the proxy.
    const std::string query_url = "http://127.0.0.1:" + std::to_string(port) +
                                  "/api/v1/query?query=sum(llm_proxy_requests_total)";
    std::string last;
    bool seen = false;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!seen && std::chrono::steady_clock::now() < deadline && server.running()) {
        try {
            http_client api({.timeout = 2s});
            auto r = api.get(query_url);
            last = r.body;
            if (r.status == 200) {
                auto j = json::parse(r.body);
                const auto& result = j["data"]["result"];
                seen = result.is_array() && result.size() == 1 && result[0]["value"][1] == "5";
            }
        } catch (const std::exception& e) {
            last = e.what();  // not listening yet
        }
        if (!seen) {
            std::this_thread::sleep_for(250ms);
        }
    }
    EXPECT_TRUE(seen) << "last answer: " << last << "\nprometheus: " << server.stderr_text();

    // The scrape target is healthy.
    if (seen) {
        http_client api({.timeout = 2s});
        auto up = api.get("http://127.0.0.1:" + std::to_string(port) +
                          "/api/v1/query?query=up%7Bjob%3D%22llm_proxy%22%7D");
        auto j = json::parse(up.body);
        ASSERT_EQ(j["data"]["result"].size(), 1u) << up.body;
        EXPECT_EQ(j["data"]["result"][0]["value"][1], "1") << up.body;
    }
    server.send_signal(SIGTERM);
    server.wait_exit(10s);
}

TEST_F(Metrics, CacheHitsAndMissesAndWhatHitsSaved) {
    start_with_metrics({"cache", "--cache-engine", "memory"});
    auto client = proxied_client();
    for (int i = 0; i < 2; ++i) {
        auto r = client.post("https://api.openai.com/v1/chat/completions", chat_body,
                             {{"Content-Type", "application/json"}});
        EXPECT_EQ(r.status, 200u) << r.body;
    }
    EXPECT_EQ(client.get("https://api.openai.com/status/503").status, 503u);
    auto text = scrape_until(R"(llm_proxy_cache_requests_total{outcome="hit"})", 1);
    text = scrape_until(R"(llm_proxy_cache_requests_total{outcome="skip"})", 1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_cache_requests_total{outcome="hit"})"), 1) << text;
    EXPECT_EQ(value_of(text, R"(llm_proxy_cache_requests_total{outcome="miss"})"), 1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_cache_requests_total{outcome="skip"})"), 1);
    const std::string model = R"(provider="openai",model="gpt-4o-mini")";
    EXPECT_EQ(value_of(text, "llm_proxy_llm_requests_total{" + model + "}"), 2);
    auto cost = value_of(text, "llm_proxy_llm_cost_usd_total{" + model + "}");
    auto saved = value_of(text, "llm_proxy_llm_cost_saved_usd_total{" + model + "}");
    EXPECT_GT(cost, 0);
    EXPECT_DOUBLE_EQ(saved, cost);  // the hit would have cost what the miss did
    // The hit's response head was built locally: it has a time to first byte too.
    EXPECT_EQ(value_of(text, "llm_proxy_time_to_first_byte_seconds_count"), 3);
    // No records are written by this run: no record metrics.
    EXPECT_EQ(text.find("llm_proxy_records_written_total"), std::string::npos);
}

TEST_F(Metrics, BlindTunnelsAreAGaugeNotRequests) {
    start_with_metrics({"--ignore-hosts", "^127\\.0\\.0\\.1:", "simple"});
    unique_fd tunnel(connect_raw("127.0.0.1", proxy_->port()));
    auto target = "127.0.0.1:" + std::to_string(upstream_->port());
    ASSERT_TRUE(
        send_all(tunnel.get(), "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"));
    auto answer = recv_some(tunnel.get(), 5s);
    ASSERT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
    auto text = scrape_until("llm_proxy_tunnels", 1);
    EXPECT_EQ(value_of(text, "llm_proxy_tunnels"), 1) << text;
    EXPECT_EQ(value_of(text, "llm_proxy_client_connections"), 1);
    tunnel.reset();
    text = scrape_until("llm_proxy_tunnels", 0);
    EXPECT_EQ(value_of(text, "llm_proxy_tunnels"), 0);
    EXPECT_EQ(text.find("method=\"CONNECT\""), std::string::npos) << text;
}

// --otlp-endpoint's own series: spans the collector took; while it is down, failed exports and
// spans waiting in the spool; once it is back, the spooled span sent too.
TEST_F(Metrics, OtlpExportIsCounted) {
    otlp_collector collector;
    start_with_metrics({"--otlp-endpoint", collector.endpoint(), "simple"});
    auto client = proxied_client();
    EXPECT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
    EXPECT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
    ASSERT_TRUE(collector.wait_for_spans(2)) << proxy_->stderr_text();
    auto text = scrape_until("llm_proxy_otlp_spans_exported_total", 2);
    EXPECT_EQ(value_of(text, "llm_proxy_otlp_spans_exported_total"), 2) << text;
    for (const char* series :
         {"llm_proxy_otlp_spans_dropped_total", "llm_proxy_otlp_exports_failed_total",
          "llm_proxy_otlp_spans_queued", "llm_proxy_otlp_spans_spooled",
          "llm_proxy_otlp_spool_bytes", "llm_proxy_otlp_spans_without_content_total"}) {
        EXPECT_EQ(value_of(text, series), 0) << series << "\n" << text;
    }

    collector.go_down();
    EXPECT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
    text = scrape_until("llm_proxy_otlp_spans_spooled", 1);
    EXPECT_EQ(value_of(text, "llm_proxy_otlp_spans_spooled"), 1) << text;
    EXPECT_GE(value_of(text, "llm_proxy_otlp_exports_failed_total"), 1);
    EXPECT_GT(value_of(text, "llm_proxy_otlp_spool_bytes"), 0);

    collector.come_back();
    ASSERT_TRUE(collector.wait_for_spans(3)) << proxy_->stderr_text();
    text = scrape_until("llm_proxy_otlp_spans_exported_total", 3);
    EXPECT_EQ(value_of(text, "llm_proxy_otlp_spans_exported_total"), 3) << text;
    text = scrape_until("llm_proxy_otlp_spans_spooled", 0);
    EXPECT_EQ(value_of(text, "llm_proxy_otlp_spans_spooled"), 0) << text;
    EXPECT_EQ(value_of(text, "llm_proxy_otlp_spans_dropped_total"), 0);
}

TEST_F(Metrics, BusyMetricsPortIsAnError) {
    // The port the running proxy's metrics listener holds.
    auto argv =
        std::vector<std::string>{LLM_PROXY_BINARY,   "--ca_dir",
                                 ca_dir_.string(),   "simple",
                                 "--listen",         "127.0.0.1:0",
                                 "--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port_)};
    auto r = run_command(argv, 20s);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("cannot listen for metrics on 127.0.0.1:" + std::to_string(metrics_port_)),
              std::string::npos)
        << r.err;
}

}  // namespace llm_proxy::test

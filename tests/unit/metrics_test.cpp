// The metrics module: the text format (escaping, histograms), the bounded label sets, the
// per-thread shards summed at scrape time, and what a flow adds to each family.

#include <gtest/gtest.h>

#include <limits>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "cli_run.hpp"
#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/metrics/registry.hpp"
#include "llm_proxy/metrics/text_format.hpp"
#include "support/addon_test_kit.hpp"
#include "support/metrics_text.hpp"

namespace llm_proxy::metrics {
namespace {

double value_of(const std::string& text, const std::string& series) {
    return test::metric_value(text, series);
}

flow finished(std::string method, std::string url, unsigned status) {
    auto f = test::make_flow(std::move(method), url);
    f.response = response_head{status, "OK", 11, {}};
    return f;
}

TEST(MetricsText, EscapesLabelValuesAndHelp) {
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    EXPECT_EQ(escape_label_value("plain"), "plain");
    EXPECT_EQ(escape_help("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
    text_writer w;
    w.family("m_total", "counter", "Help with \\ and\nnewline");
    w.sample("m_total", {{"host", "a\"b"}, {"model", "x\\y"}}, 3);
    w.sample("m_total", {}, 0.25);
    EXPECT_EQ(w.text(),
              "# HELP m_total Help with \\\\ and\\nnewline\n"
              "# TYPE m_total counter\n"
              "m_total{host=\"a\\\"b\",model=\"x\\\\y\"} 3\n"
              "m_total 0.25\n");
}

TEST(MetricsText, FormatsValues) {
    EXPECT_EQ(format_value(0), "0");
    EXPECT_EQ(format_value(42), "42");
    EXPECT_EQ(format_value(0.005), "0.005");
    EXPECT_EQ(format_value(1e21), "1e+21");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(MetricsText, HistogramBucketsAreCumulativeWithInfEqualToCount) {
    static constexpr std::array<double, 3> bounds = {0.1, 1, 10};
    histogram_snapshot h{bounds, {2, 0, 3, 1}, 17.5};
    text_writer w;
    const std::array<label, 1> labels = {label{"host", "h"}};
    w.histogram("lat_seconds", labels, h);
    EXPECT_EQ(w.text(),
              "lat_seconds_bucket{host=\"h\",le=\"0.1\"} 2\n"
              "lat_seconds_bucket{host=\"h\",le=\"1\"} 2\n"
              "lat_seconds_bucket{host=\"h\",le=\"10\"} 5\n"
              "lat_seconds_bucket{host=\"h\",le=\"+Inf\"} 6\n"
              "lat_seconds_sum{host=\"h\"} 17.5\n"
              "lat_seconds_count{host=\"h\"} 6\n");
}

TEST(MetricsLabels, ValuesPastTheLimitShareOther) {
    label_values v(2);
    EXPECT_EQ(v.id("a"), 0u);
    EXPECT_EQ(v.id("b"), 1u);
    EXPECT_EQ(v.id("a"), 0u);
    EXPECT_EQ(v.id("c"), v.other_id());
    EXPECT_EQ(v.id("d"), v.other_id());
    EXPECT_EQ(v.id("b"), 1u);
    EXPECT_EQ(v.name(0), "a");
    EXPECT_EQ(v.name(1), "b");
    EXPECT_EQ(v.name(v.other_id()), "other");
    EXPECT_EQ(v.size(), 2u);
}

TEST(MetricsLabels, ConcurrentAddsStayBoundedAndDistinct) {
    label_values v(50);
    std::vector<std::thread> threads;
    std::vector<std::vector<std::uint32_t>> ids(4);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&v, &ids, t] {
            for (int i = 0; i < 200; ++i) {
                ids[t].push_back(v.id("host" + std::to_string(i)));
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(v.size(), 50u);
    // Every thread got the same id for the same value.
    for (int t = 1; t < 4; ++t) {
        EXPECT_EQ(ids[t], ids[0]);
    }
    std::set<std::string> names;
    for (std::uint32_t i = 0; i < 50; ++i) {
        names.insert(std::string(v.name(i)));
    }
    EXPECT_EQ(names.size(), 50u);
}

TEST(MetricsRegistry, CountsRequestsByHostMethodAndStatus) {
    registry r;
    auto a = finished("GET", "https://api.openai.com/v1/models", 200);
    a.response_bytes = 100;
    a.request_bytes = 0;
    a.duration = std::chrono::milliseconds(30);
    a.time_to_first_byte = std::chrono::milliseconds(20);
    r.observe(a);
    r.observe(a);
    auto b = finished("POST", "https://example.com/x", 404);
    b.request_bytes = 7;
    b.response_bytes = 9;
    b.duration = std::chrono::seconds(2);
    r.observe(b);
    auto c = test::make_flow("BREW", "http://example.com/pot");
    c.error_kind = flow_error::connect;
    r.observe(c);
    auto gone = test::make_flow("GET", "https://example.com/y");
    gone.error_kind = flow_error::client_disconnected;
    r.observe(gone);

    auto text = r.render();
    EXPECT_EQ(
        value_of(text,
                 R"(llm_proxy_requests_total{host="api.openai.com",method="GET",status="200"})"),
        2);
    EXPECT_EQ(
        value_of(text,
                 R"(llm_proxy_requests_total{host="example.com",method="POST",status="404"})"),
        1);
    EXPECT_EQ(
        value_of(text,
                 R"(llm_proxy_requests_total{host="example.com",method="other",status="502"})"),
        1);
    EXPECT_EQ(
        value_of(text,
                 R"(llm_proxy_requests_total{host="example.com",method="GET",status="none"})"),
        1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_errors_total{kind="connect"})"), 1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_errors_total{kind="client_disconnected"})"), 1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_errors_total{kind="dns"})"), 0);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_bytes_total{host="example.com"})"), 7);
    EXPECT_EQ(value_of(text, R"(llm_proxy_response_bytes_total{host="api.openai.com"})"), 200);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_duration_seconds_bucket{le="0.025"})"), 2);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_duration_seconds_bucket{le="0.05"})"), 4);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_duration_seconds_bucket{le="2.5"})"), 5);
    EXPECT_EQ(value_of(text, R"(llm_proxy_request_duration_seconds_bucket{le="+Inf"})"), 5);
    EXPECT_EQ(value_of(text, "llm_proxy_request_duration_seconds_count"), 5);
    EXPECT_EQ(value_of(text, R"(llm_proxy_time_to_first_byte_seconds_bucket{le="0.025"})"), 2);
    EXPECT_EQ(value_of(text, "llm_proxy_time_to_first_byte_seconds_count"), 2);
    EXPECT_NEAR(value_of(text, "llm_proxy_time_to_first_byte_seconds_sum"), 0.04, 1e-9);
}

TEST(MetricsRegistry, HostsPastTheLimitAreCountedAsOther) {
    registry r({.max_hosts = 2, .max_models = 2});
    for (std::string host : {"a.test", "b.test", "c.test", "d.test", "a.test"}) {
        r.observe(finished("GET", "https://" + host + "/", 200));
    }
    auto text = r.render();
    EXPECT_EQ(
        value_of(text, R"(llm_proxy_requests_total{host="a.test",method="GET",status="200"})"), 2);
    EXPECT_EQ(
        value_of(text, R"(llm_proxy_requests_total{host="b.test",method="GET",status="200"})"), 1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_requests_total{host="other",method="GET",status="200"})"),
              2);
    EXPECT_EQ(text.find("c.test"), std::string::npos);
}

TEST(MetricsRegistry, ShardsOfManyThreadsAreSummed) {
    registry r;
    constexpr int threads = 4;
    constexpr int each = 1000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&r] {
            auto f = finished("POST", "https://api.openai.com/v1/chat/completions", 200);
            f.response_bytes = 3;
            for (int i = 0; i < each; ++i) {
                r.observe(f);
            }
        });
    }
    for (auto& t : pool) {
        t.join();
    }
    EXPECT_EQ(r.shard_count(), static_cast<std::size_t>(threads));
    auto text = r.render();
    EXPECT_EQ(
        value_of(text,
                 R"(llm_proxy_requests_total{host="api.openai.com",method="POST",status="200"})"),
        threads * each);
    EXPECT_EQ(value_of(text, R"(llm_proxy_response_bytes_total{host="api.openai.com"})"),
              3 * threads * each);
    EXPECT_EQ(value_of(text, "llm_proxy_request_duration_seconds_count"), threads * each);
}

TEST(MetricsRegistry, LlmTokensCostAndCache) {
    registry r({.max_hosts = 50, .max_models = 1});
    auto f = finished("POST", "https://api.openai.com/v1/chat/completions", 200);
    llm::summary s;
    s.call.provider = llm::provider::openai;
    s.call.request_model = "gpt-4o-mini";
    s.call.response_model = "gpt-4o-mini-2024-07-18";
    s.call.usage.input_tokens = 100;
    s.call.usage.cache_read_tokens = 40;
    s.call.usage.output_tokens = 30;
    s.call.usage.reasoning_tokens = 10;
    auto usd = *llm::money::parse("0.0015");
    s.cost_usd = llm::cost{usd, llm::money{}, usd};
    s.first_token_ms = 250;
    f.llm = std::make_shared<const llm::summary>(s);
    f.tags["cache"] = "MISS";
    r.observe(f);
    r.observe(f);
    auto other = f;
    auto s2 = s;
    s2.call.provider = llm::provider::anthropic;
    s2.call.response_model = "claude-x";
    s2.cost_usd.reset();
    s2.saved_usd = usd;
    other.llm = std::make_shared<const llm::summary>(s2);
    other.tags["cache"] = "HIT";
    r.observe(other);
    auto skipped = finished("GET", "https://api.openai.com/v1/models", 200);
    skipped.tags["cache"] = "SKIP";
    r.observe(skipped);

    auto text = r.render();
    const std::string m = R"(provider="openai",model="gpt-4o-mini-2024-07-18")";
    EXPECT_EQ(value_of(text, "llm_proxy_llm_requests_total{" + m + "}"), 2);
    EXPECT_EQ(value_of(text, "llm_proxy_llm_tokens_total{" + m + R"(,type="input"})"), 200);
    EXPECT_EQ(value_of(text, "llm_proxy_llm_tokens_total{" + m + R"(,type="cached"})"), 80);
    EXPECT_EQ(value_of(text, "llm_proxy_llm_tokens_total{" + m + R"(,type="output"})"), 60);
    EXPECT_EQ(value_of(text, "llm_proxy_llm_tokens_total{" + m + R"(,type="reasoning"})"), 20);
    EXPECT_NEAR(value_of(text, "llm_proxy_llm_cost_usd_total{" + m + "}"), 0.003, 1e-12);
    // The model limit is 1: the second model is "other".
    const std::string o = R"(provider="anthropic",model="other")";
    EXPECT_EQ(value_of(text, "llm_proxy_llm_requests_total{" + o + "}"), 1);
    EXPECT_EQ(value_of(text, "llm_proxy_llm_cost_usd_total{" + o + "}"), 0);
    EXPECT_NEAR(value_of(text, "llm_proxy_llm_cost_saved_usd_total{" + o + "}"), 0.0015, 1e-12);
    EXPECT_EQ(value_of(text, R"(llm_proxy_cache_requests_total{outcome="hit"})"), 1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_cache_requests_total{outcome="miss"})"), 2);
    EXPECT_EQ(value_of(text, R"(llm_proxy_cache_requests_total{outcome="skip"})"), 1);
    EXPECT_EQ(value_of(text, R"(llm_proxy_time_to_first_token_seconds_bucket{le="0.25"})"), 3);
    EXPECT_EQ(value_of(text, "llm_proxy_time_to_first_token_seconds_count"), 3);
}

TEST(MetricsRegistry, TunnelsAreNoRequestsAndCallbacksAreRead) {
    registry r;
    auto t = test::make_flow("CONNECT", "https://blind.test/");
    t.tunnel.emplace();
    r.observe(t);
    double connections = 3;
    r.add_callback("llm_proxy_client_connections", "gauge", "Open client connections",
                   [&connections] { return connections; });
    auto text = r.render();
    EXPECT_EQ(text.find("blind.test"), std::string::npos);
    EXPECT_NE(text.find("# TYPE llm_proxy_client_connections gauge\n"
                        "llm_proxy_client_connections 3\n"),
              std::string::npos)
        << text;
    connections = 5;
    EXPECT_EQ(value_of(r.render(), "llm_proxy_client_connections"), 5);
}

TEST(MetricsRegistry, EveryFamilyHasHelpAndTypeAndEverySeriesIsUnique) {
    registry r;
    r.observe(finished("GET", "https://a.test/", 200));
    auto text = r.render();
    std::istringstream in(text);
    std::string line;
    std::set<std::string> typed;
    std::set<std::string> series;
    while (std::getline(in, line)) {
        if (line.starts_with("# TYPE ")) {
            auto rest = line.substr(7);
            typed.insert(rest.substr(0, rest.find(' ')));
            continue;
        }
        if (line.starts_with("#")) {
            continue;
        }
        EXPECT_TRUE(series.insert(line.substr(0, line.rfind(' '))).second) << "twice: " << line;
        auto name = line.substr(0, line.find_first_of("{ "));
        bool known = typed.count(name) > 0;
        for (std::string suffix : {"_bucket", "_sum", "_count"}) {
            if (name.ends_with(suffix)) {
                known = known || typed.count(name.substr(0, name.size() - suffix.size())) > 0;
            }
        }
        EXPECT_TRUE(known) << line;
        EXPECT_TRUE(name.starts_with("llm_proxy_")) << line;
    }
}

TEST(MetricsRegistry, MethodClasses) {
    EXPECT_EQ(method_class("GET"), "GET");
    EXPECT_EQ(method_class("POST"), "POST");
    EXPECT_EQ(method_class("get"), "other");
    EXPECT_EQ(method_class("PROPFIND"), "other");
}

TEST(MetricsCli, BadMetricsAddressExits2) {
    EXPECT_TRUE(cli::test::exits_2_with({"simple", "--metrics-listen", "nonsense:1"},
                                        "--metrics-listen: 'nonsense' is not an IP address"));
    EXPECT_TRUE(cli::test::exits_2_with({"simple", "--metrics-listen", "127.0.0.1:99999"},
                                        "--metrics-listen: bad port"));
}

}  // namespace
}  // namespace llm_proxy::metrics

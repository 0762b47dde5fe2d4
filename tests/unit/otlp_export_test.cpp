// The OTLP exporter against the in-process test collector: batches, nothing lost when the
// collector answers 503 or goes down and comes back, the disk spool across a restart, bounds
// (queue, spool) counted, refused batches dropped; the spool itself; the settings from flags
// and OTEL_* variables.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "cli/otlp_settings.hpp"
#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/otlp/exporter.hpp"
#include "llm_proxy/otlp/spool.hpp"
#include "support/addon_test_kit.hpp"
#include "support/otlp_collector.hpp"
#include "support/temp_dir.hpp"

namespace llm_proxy::otlp {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::shared_ptr<const flow> numbered_flow(int i) {
    auto f = std::make_shared<flow>(
        test::make_flow("GET", "https://example.com/item/" + std::to_string(i)));
    f->id = "flow-" + std::to_string(i);
    f->response = response_head{200, "OK", 11, {}};
    f->started_at = std::chrono::system_clock::now();
    return f;
}

exporter_options fast_options(const test::otlp_collector& c) {
    exporter_options o;
    o.url = traces_url(c.endpoint());
    o.batch_delay = 20ms;
    o.min_backoff = 50ms;
    o.max_backoff = 200ms;
    o.timeout = 2s;
    o.resource = make_resource("", "");
    return o;
}

// The flow ids of the spans the collector accepted.
std::multiset<std::string> received_ids(const test::otlp_collector& c) {
    std::multiset<std::string> ids;
    for (const auto& s : c.spans()) {
        ids.insert(test::span_attribute_text(s, "llm_proxy.flow_id"));
    }
    return ids;
}

std::multiset<std::string> ids_of(int from, int to) {
    std::multiset<std::string> ids;
    for (int i = from; i < to; ++i) {
        ids.insert("flow-" + std::to_string(i));
    }
    return ids;
}

TEST(OtlpExporter, SendsValidBatchesToV1Traces) {
    test::otlp_collector collector;
    auto o = fast_options(collector);
    o.max_batch = 4;
    o.headers = {{"Authorization", "Basic abc"}};
    exporter e(o);
    for (int i = 0; i < 10; ++i) {
        e.push(numbered_flow(i));
    }
    ASSERT_TRUE(collector.wait_for_spans(10));
    EXPECT_EQ(received_ids(collector), ids_of(0, 10));
    for (const auto& r : collector.requests()) {
        EXPECT_EQ(r.method, "POST");
        EXPECT_EQ(r.target, "/v1/traces");
        EXPECT_EQ(r.headers.at("content-type"), "application/json");
        EXPECT_EQ(r.headers.at("authorization"), "Basic abc");
        auto body = json::parse(r.body);
        EXPECT_EQ(test::otlp_trace_problems(body), std::vector<std::string>{});
        EXPECT_LE(body["resourceSpans"][0]["scopeSpans"][0]["spans"].size(), 4u);
    }
    e.close();
    EXPECT_EQ(e.stats().exported_spans, 10u);
    EXPECT_EQ(e.stats().dropped_spans, 0u);
}

// Rendered by the pushing thread (texts joined in one buffer) or, with message content, by the
// exporter's thread: either way each POST holds whole spans, at most max_batch of them, and
// every span arrives once.
TEST(OtlpExporter, BatchesHoldWholeSpansWhoeverRendersThem) {
    for (bool content : {false, true}) {
        SCOPED_TRACE(content ? "content" : "no content");
        test::otlp_collector collector;
        auto o = fast_options(collector);
        o.max_batch = 3;
        o.batch_delay = 5s;  // batches go when full: rounds of several batches
        o.spans.content = content;
        exporter e(o);
        for (int i = 0; i < 11; ++i) {
            e.push(numbered_flow(i));
        }
        e.close();  // the last, partial batch
        ASSERT_TRUE(collector.wait_for_spans(11));
        EXPECT_EQ(received_ids(collector), ids_of(0, 11));
        for (const auto& r : collector.requests()) {
            auto body = json::parse(r.body);
            EXPECT_EQ(test::otlp_trace_problems(body), std::vector<std::string>{});
            auto n = body["resourceSpans"][0]["scopeSpans"][0]["spans"].size();
            EXPECT_GE(n, 1u);
            EXPECT_LE(n, 3u);
        }
        EXPECT_EQ(e.stats().exported_spans, 11u);
    }
}

TEST(OtlpExporter, GzipWhenAsked) {
    test::otlp_collector collector;
    auto o = fast_options(collector);
    o.gzip = true;
    exporter e(o);
    e.push(numbered_flow(1));
    ASSERT_TRUE(collector.wait_for_spans(1));
    auto r = collector.requests().at(0);
    EXPECT_EQ(r.headers.at("content-encoding"), "gzip");
    EXPECT_EQ(test::otlp_trace_problems(json::parse(r.body)), std::vector<std::string>{});
}

TEST(OtlpExporter, UnavailableCollectorLosesNothing) {
    test::otlp_collector collector;
    collector.answer_with(503);
    exporter e(fast_options(collector));
    for (int i = 0; i < 5; ++i) {
        e.push(numbered_flow(i));
    }
    ASSERT_TRUE(collector.wait_for_requests(2));  // tried, and tried again
    for (int i = 5; i < 8; ++i) {
        e.push(numbered_flow(i));
    }
    collector.answer_with(200);
    ASSERT_TRUE(collector.wait_for_spans(8));
    EXPECT_EQ(received_ids(collector), ids_of(0, 8));
    e.close();
    auto st = e.stats();
    EXPECT_EQ(st.exported_spans, 8u);
    EXPECT_EQ(st.dropped_spans, 0u);
    EXPECT_GE(st.failed_exports, 2u);
    EXPECT_EQ(st.spooled_spans, 0u);
}

TEST(OtlpExporter, CollectorDownThenUpLosesNothingAndKeepsOrder) {
    test::otlp_collector collector;
    exporter e(fast_options(collector));
    e.push(numbered_flow(0));
    ASSERT_TRUE(collector.wait_for_spans(1));
    collector.go_down();
    for (int i = 1; i < 30; ++i) {
        e.push(numbered_flow(i));
        std::this_thread::sleep_for(5ms);
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (e.stats().failed_exports == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_GT(e.stats().failed_exports, 0u);
    collector.come_back();
    ASSERT_TRUE(collector.wait_for_spans(30));
    EXPECT_EQ(received_ids(collector), ids_of(0, 30));
    // Oldest first: the spans arrive in the order the flows finished.
    std::vector<std::string> order;
    for (const auto& s : collector.spans()) {
        order.push_back(test::span_attribute_text(s, "llm_proxy.flow_id"));
    }
    for (std::size_t i = 0; i < order.size(); ++i) {
        EXPECT_EQ(order[i], "flow-" + std::to_string(i));
    }
    e.close();
    EXPECT_EQ(e.stats().dropped_spans, 0u);
}

// Batches of two spans (max_batch 2)...
exporter_options pairs_options(const test::otlp_collector& c) {
    auto o = fast_options(c);
    o.max_batch = 2;
    return o;
}

// ...sent one after another: flows 0 to 5, two at a time, each pair taken before the next.
bool send_three_pairs(exporter& e, const test::otlp_collector& c) {
    for (int i = 0; i < 6; i += 2) {
        e.push(numbered_flow(i));
        e.push(numbered_flow(i + 1));
        if (!c.wait_for_spans(static_cast<std::size_t>(i) + 2)) {
            return false;
        }
    }
    return true;
}

TEST(OtlpExporter, BatchesShareOneKeptAliveConnection) {
    test::otlp_collector collector;
    exporter e(pairs_options(collector));
    ASSERT_TRUE(send_three_pairs(e, collector));
    EXPECT_GE(collector.requests().size(), 3u);
    EXPECT_EQ(collector.connections(), 1u);
    e.close();
    EXPECT_EQ(received_ids(collector), ids_of(0, 6));
    EXPECT_EQ(e.stats().failed_exports, 0u);
}

TEST(OtlpExporter, ConnectionTheCollectorClosedIsOpenedAgainWithNothingLost) {
    test::otlp_collector collector;
    exporter e(fast_options(collector));
    for (int i = 0; i < 4; ++i) {
        e.push(numbered_flow(i));
        ASSERT_TRUE(collector.wait_for_spans(static_cast<std::size_t>(i) + 1));
        // The collector ends the kept connection while it is idle: the next batch, sent on
        // it, fails before any answer and goes again at once on a new connection.
        collector.close_connections();
    }
    e.close();
    EXPECT_EQ(received_ids(collector), ids_of(0, 4));
    EXPECT_EQ(collector.connections(), 4u);
    EXPECT_EQ(e.stats().failed_exports, 0u);
    EXPECT_EQ(e.stats().dropped_spans, 0u);
}

TEST(OtlpExporter, CollectorThatClosesEveryConnectionGetsEverySpan) {
    test::otlp_collector collector;
    collector.close_after_answer(true);
    exporter e(pairs_options(collector));
    ASSERT_TRUE(send_three_pairs(e, collector));
    e.close();
    EXPECT_EQ(received_ids(collector), ids_of(0, 6));
    EXPECT_EQ(collector.connections(), collector.requests().size());
    EXPECT_EQ(e.stats().failed_exports, 0u);
}

// Options whose unsent spans go to a spool in `dir`, with a short shutdown.
exporter_options spooling_options(const test::otlp_collector& c, const std::filesystem::path& dir) {
    auto o = fast_options(c);
    o.spool_dir = dir / "spool";
    o.shutdown_timeout = 300ms;
    return o;
}

// Flows 0 to n - 1 pushed to an exporter with options `o`, which is then closed: its stats.
exporter_stats push_and_close(const exporter_options& o, int n) {
    exporter e(o);
    for (int i = 0; i < n; ++i) {
        e.push(numbered_flow(i));
    }
    e.close();
    return e.stats();
}

TEST(OtlpExporter, DiskSpoolCarriesSpansAcrossARestart) {
    test::temp_dir dir("otlp_spool");
    test::otlp_collector collector;
    collector.go_down();
    auto st = push_and_close(spooling_options(collector, dir.path()), 6);
    EXPECT_EQ(st.spooled_spans, 6u);  // the collector is down: the spans stay in the spool
    EXPECT_EQ(st.dropped_spans, 0u);
    EXPECT_TRUE(collector.requests().empty());
    collector.come_back();
    auto o = fast_options(collector);
    o.spool_dir = dir / "spool";
    exporter again(o);
    again.push(numbered_flow(6));
    ASSERT_TRUE(collector.wait_for_spans(7));
    EXPECT_EQ(received_ids(collector), ids_of(0, 7));
    again.close();
    EXPECT_EQ(again.stats().spooled_spans, 0u);
    // Nothing left on disk but the lock.
    std::set<std::string> left;
    for (const auto& entry : std::filesystem::directory_iterator(dir / "spool")) {
        left.insert(entry.path().filename().string());
    }
    EXPECT_EQ(left, std::set<std::string>{".lock"});
}

TEST(OtlpExporter, ProtobufBatchesReachTheCollector) {
    for (bool content : {false, true}) {  // spans rendered by the workers, or by the exporter
        test::otlp_collector collector;
        auto o = fast_options(collector);
        o.protobuf = true;
        o.gzip = true;
        o.spans.content = content;
        exporter e(o);
        for (int i = 0; i < 5; ++i) {
            e.push(numbered_flow(i));
        }
        ASSERT_TRUE(collector.wait_for_spans(5));
        e.close();
        EXPECT_EQ(received_ids(collector), ids_of(0, 5));
        for (const auto& r : collector.requests()) {
            EXPECT_EQ(r.headers.at("content-type"), "application/x-protobuf");
            EXPECT_EQ(r.headers.at("content-encoding"), "gzip");
            EXPECT_FALSE(r.protobuf.empty());
            EXPECT_EQ(r.protobuf_error, "");
        }
        for (const auto& body : collector.accepted_bodies()) {
            EXPECT_EQ(test::otlp_trace_problems(body), std::vector<std::string>{});
        }
        EXPECT_EQ(e.stats().failed_exports, 0u);
    }
}

TEST(OtlpExporter, SpooledBatchesKeepTheirEncodingAcrossARestart) {
    test::temp_dir dir("otlp_spool");
    test::otlp_collector collector;
    collector.go_down();
    auto o = spooling_options(collector, dir.path());
    o.protobuf = true;
    o.gzip = true;
    EXPECT_EQ(push_and_close(o, 3).spooled_spans, 3u);
    std::set<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir / "spool")) {
        files.insert(entry.path().extension().string());
    }
    EXPECT_EQ(files, (std::set<std::string>{"", ".gz"}));  // ".lock" and <seq>-<spans>.pb.gz
    collector.come_back();
    o.protobuf = false;  // this run sends JSON; the spooled batch stays protobuf and gzip
    o.gzip = false;
    exporter again(o);
    again.push(numbered_flow(3));
    ASSERT_TRUE(collector.wait_for_spans(4));
    again.close();
    EXPECT_EQ(received_ids(collector), ids_of(0, 4));
    std::multiset<std::string> types;
    for (const auto& r : collector.requests()) {
        types.insert(r.headers.at("content-type") + " " +
                     (r.headers.count("content-encoding") ? r.headers.at("content-encoding") : ""));
        EXPECT_EQ(r.answered, 200u) << r.protobuf_error;
    }
    EXPECT_EQ(types,
              (std::multiset<std::string>{"application/json ", "application/x-protobuf gzip"}));
}

TEST(OtlpExporter, RefusedBatchesAreDroppedAndCounted) {
    test::otlp_collector collector;
    collector.answer_with(400);
    exporter e(fast_options(collector));
    e.push(numbered_flow(0));
    e.push(numbered_flow(1));
    ASSERT_TRUE(collector.wait_for_requests(1));
    collector.answer_with(200);
    e.push(numbered_flow(2));
    ASSERT_TRUE(collector.wait_for_spans(1));
    e.close();
    auto st = e.stats();
    EXPECT_EQ(st.exported_spans + st.dropped_spans, 3u);
    EXPECT_GE(st.dropped_spans, 1u);
    EXPECT_EQ(st.spooled_spans, 0u);
}

TEST(OtlpExporter, BoundedQueueAndSpoolCountWhatTheyDrop) {
    test::otlp_collector collector;
    collector.go_down();
    auto o = fast_options(collector);
    o.max_queue = 5;
    o.batch_delay = 10s;  // nothing leaves the queue while the test fills it
    o.max_batch = 1000;
    o.spool_bytes = 0;  // no spool: what the collector does not take is lost, and counted
    o.shutdown_timeout = 200ms;
    exporter e(o);
    for (int i = 0; i < 12; ++i) {
        e.push(numbered_flow(i));
    }
    EXPECT_EQ(e.stats().dropped_spans, 7u);
    EXPECT_EQ(e.stats().queued_spans, 5u);
    e.close();
    EXPECT_EQ(e.stats().dropped_spans, 12u);
    EXPECT_EQ(e.stats().exported_spans, 0u);
}

// A chat completion's flow whose answer is "answer I".
std::shared_ptr<const flow> answered_flow(int i) {
    auto f = std::make_shared<flow>(
        test::make_flow("POST", "https://api.openai.com/v1/chat/completions"));
    f->id = "flow-" + std::to_string(i);
    f->response = response_head{200, "OK", 11, {}};
    f->started_at = std::chrono::system_clock::now();
    llm::summary s;
    s.call.provider = llm::provider::openai;
    s.call.api = llm::api::chat_completions;
    s.call.request_model = "gpt-4o-mini";
    llm::answer a;
    a.content = "answer " + std::to_string(i);
    a.finish_reason = "stop";
    s.call.answers.push_back(a);
    f->llm = std::make_shared<const llm::summary>(s);
    return f;
}

// With message content the flows themselves wait for the exporter thread, up to
// max_content_bytes of them (the first of a round always): past it a span goes without its
// content, still with the call's attributes, and is counted. Once the thread has taken the
// queue, flows are kept whole again.
TEST(OtlpExporter, FlowsWaitingWithContentAreBoundedInBytes) {
    test::otlp_collector collector;
    auto o = fast_options(collector);
    o.spans.content = true;
    o.batch_delay = 10s;
    o.max_batch = 3;  // the thread takes the queue when it holds 3 spans
    const auto one = flow_footprint(*answered_flow(0));
    ASSERT_EQ(flow_footprint(*answered_flow(9)), one);
    o.max_content_bytes = 2 * one;  // two flows: at the bound, taken whole
    exporter e(o);
    for (int i = 0; i < 3; ++i) {
        e.push(answered_flow(i));
    }
    EXPECT_EQ(e.stats().spans_without_content, 1u);  // flow-2, one past the bound
    ASSERT_TRUE(collector.wait_for_spans(3));
    for (int i = 3; i < 5; ++i) {
        e.push(answered_flow(i));  // a new round: both whole
    }
    e.close();
    ASSERT_TRUE(collector.wait_for_spans(5));
    EXPECT_EQ(e.stats().spans_without_content, 1u);
    EXPECT_EQ(e.stats().exported_spans, 5u);
    std::map<std::string, json> spans;
    for (const auto& s : collector.spans()) {
        spans[test::span_attribute_text(s, "llm_proxy.flow_id")] = s;
    }
    ASSERT_EQ(spans.size(), 5u);
    for (int i = 0; i < 5; ++i) {
        const auto id = "flow-" + std::to_string(i);
        SCOPED_TRACE(id);
        const auto output = test::span_attribute_text(spans[id], "gen_ai.output.messages");
        if (i == 2) {
            EXPECT_EQ(output, "");
        } else {
            EXPECT_NE(output.find("answer " + std::to_string(i)), std::string::npos) << output;
        }
        EXPECT_EQ(test::span_attribute_text(spans[id], "gen_ai.request.model"), "gpt-4o-mini");
        EXPECT_EQ(test::span_attribute_text(spans[id], "gen_ai.response.finish_reasons"),
                  R"({"values":[{"stringValue":"stop"}]})");
    }
}

TEST(OtlpExporter, RejectsANonHttpUrl) {
    exporter_options o;
    o.url = "grpc://collector:4317";
    EXPECT_THROW(exporter{o}, std::invalid_argument);
}

TEST(OtlpSpool, MemoryBoundDropsTheOldest) {
    spool s({}, 100);
    EXPECT_FALSE(s.on_disk());
    EXPECT_TRUE(s.push({std::string(40, 'a'), 1}));
    EXPECT_TRUE(s.push({std::string(40, 'b'), 2}));
    EXPECT_TRUE(s.push({std::string(40, 'c'), 3}));  // drops 'a'
    EXPECT_EQ(s.batches(), 2u);
    EXPECT_EQ(s.spans(), 5u);
    EXPECT_EQ(s.dropped_spans(), 1u);
    EXPECT_EQ(s.front()->body[0], 'b');
    s.pop();
    EXPECT_EQ(s.front()->body[0], 'c');
    EXPECT_FALSE(s.push({std::string(101, 'x'), 4}));  // larger than the bound
    EXPECT_EQ(s.dropped_spans(), 5u);
    EXPECT_FALSE(s.problem.empty());
}

TEST(OtlpSpool, BoundIsInclusive) {
    spool s({}, 100);
    EXPECT_TRUE(s.push({std::string(99, 'a'), 1}));
    EXPECT_TRUE(s.push({std::string(1, 'b'), 1}));  // exactly 100: both kept
    EXPECT_EQ(s.bytes(), 100u);
    EXPECT_EQ(s.dropped_spans(), 0u);
    EXPECT_TRUE(s.push({std::string(100, 'c'), 3}));  // exactly the bound: the rest goes
    EXPECT_EQ(s.batches(), 1u);
    EXPECT_EQ(s.dropped_spans(), 2u);
    EXPECT_FALSE(s.push({std::string(101, 'd'), 4}));  // one byte over: refused, kept ones stay
    EXPECT_EQ(s.batches(), 1u);
    EXPECT_EQ(s.dropped_spans(), 6u);
    spool none({}, 0);  // --otlp-spool-mib 0: nothing is kept, and nothing said per batch
    EXPECT_FALSE(none.push({"x", 1}));
    EXPECT_EQ(none.dropped_spans(), 1u);
    EXPECT_TRUE(none.problem.empty());
}

TEST(OtlpSpool, DiskKeepsOrderAcrossInstancesAndIsLocked) {
    test::temp_dir dir("otlp_spool");
    {
        spool s(dir / "q", 1 << 20);
        ASSERT_TRUE(s.on_disk()) << s.problem;
        for (int i = 0; i < 12; ++i) {  // more than 9: the order is numeric, not by name length
            ASSERT_TRUE(s.push({"batch-" + std::to_string(i), 1}));
        }
        // A second spool on the same directory (another proxy) keeps to memory.
        spool other(dir / "q", 1 << 20);
        EXPECT_FALSE(other.on_disk());
        EXPECT_NE(other.problem.find("in use"), std::string::npos);
        s.pop();
    }
    dir.write_file("q/.0000000000000099-1.json.tmp", "half");  // an interrupted write
    {
        spool again(dir / "q", 1 << 20);
        ASSERT_TRUE(again.on_disk());
        EXPECT_EQ(again.batches(), 11u);
        for (int i = 1; i < 12; ++i) {
            auto b = again.front();
            ASSERT_TRUE(b);
            EXPECT_EQ(b->body, "batch-" + std::to_string(i));
            again.pop();
        }
        EXPECT_TRUE(again.empty());
        EXPECT_FALSE(std::filesystem::exists(dir / "q/.0000000000000099-1.json.tmp"));
    }
    // Reopened with a smaller bound, the oldest go.
    {
        spool s(dir / "q", 1 << 20);
        for (int i = 0; i < 4; ++i) {
            ASSERT_TRUE(s.push({std::string(10, 'a' + i), 2}));
        }
    }
    spool small(dir / "q", 25);
    EXPECT_EQ(small.batches(), 2u);
    EXPECT_EQ(small.dropped_spans(), 4u);
    EXPECT_EQ(small.front()->body, std::string(10, 'c'));
}

TEST(OtlpSettings, TracesUrlAndHeaders) {
    EXPECT_EQ(traces_url("http://c:4318"), "http://c:4318/v1/traces");
    EXPECT_EQ(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
    EXPECT_EQ(traces_url("https://cloud.langfuse.com/api/public/otel"),
              "https://cloud.langfuse.com/api/public/otel/v1/traces");
    EXPECT_EQ(traces_url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
    auto h = parse_headers("Authorization=Basic%20YWJj, x-team = a ,");
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[0], (std::pair<std::string, std::string>{"Authorization", "Basic YWJj"}));
    EXPECT_EQ(h[1], (std::pair<std::string, std::string>{"x-team", "a"}));
    EXPECT_THROW(parse_headers("novalue"), std::invalid_argument);
    EXPECT_THROW(parse_headers("a=b%0d%0aEvil: 1"), std::invalid_argument);
    EXPECT_THROW(parse_headers("bad name=1"), std::invalid_argument);
}

cli::env_reader env_of(std::map<std::string, std::string> vars) {
    return [vars](const char* name) -> std::optional<std::string> {
        if (auto it = vars.find(name); it != vars.end()) {
            return it->second;
        }
        return std::nullopt;
    };
}

TEST(OtlpSettings, FlagsAndOtelVariables) {
    cli::global_options g;
    EXPECT_FALSE(cli::make_otlp_options(g, env_of({})));

    auto o =
        cli::make_otlp_options(g, env_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"},
                                          {"OTEL_EXPORTER_OTLP_HEADERS", "api-key=k1"},
                                          {"OTEL_SERVICE_NAME", "gateway"},
                                          {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                                          {"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
                                          {"OTEL_BSP_SCHEDULE_DELAY", "200"},
                                          {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"},
                                          {"HOME", "/home/u"}}));
    ASSERT_TRUE(o);
    EXPECT_EQ(o->url, "http://collector:4318/v1/traces");
    EXPECT_EQ(o->headers.at(0).second, "k1");
    EXPECT_EQ(o->resource.attributes.at(0).second, "gateway");
    EXPECT_TRUE(o->gzip);
    EXPECT_EQ(o->timeout, 2500ms);
    EXPECT_EQ(o->batch_delay, 200ms);
    EXPECT_EQ(o->max_batch, 64u);
    EXPECT_EQ(o->spool_dir, "/home/u/.local/state/llm_proxy/otlp-spool");
    EXPECT_EQ(o->spool_bytes, 64ull << 20);
    EXPECT_FALSE(o->spans.content);

    // The traces endpoint is used as it is; the flag wins over both.
    auto t = cli::make_otlp_options(
        g, env_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
                   {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"}}));
    EXPECT_EQ(t->url, "http://b:4318/custom");
    g.otlp_endpoint = "http://flag:4318";
    g.otlp_headers = {"Authorization=Bearer x"};
    g.otlp_content = true;
    g.otlp_compression = "none";
    g.otlp_spool_dir = "/var/spool/x";
    g.otlp_spool_mib = 1;
    auto f = cli::make_otlp_options(g, env_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
                                               {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                                               {"OTEL_SDK_DISABLED", "true"}}));
    ASSERT_TRUE(f);
    EXPECT_EQ(f->url, "http://flag:4318/v1/traces");
    EXPECT_EQ(f->headers.back(),
              (std::pair<std::string, std::string>{"Authorization", "Bearer x"}));
    EXPECT_TRUE(f->spans.content);
    EXPECT_FALSE(f->gzip);
    EXPECT_EQ(f->spool_dir, "/var/spool/x");
    EXPECT_EQ(f->spool_bytes, 1u << 20);

    // OTEL_SDK_DISABLED turns off what the variables alone would turn on.
    cli::global_options plain;
    EXPECT_FALSE(cli::make_otlp_options(
        plain,
        env_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"}, {"OTEL_SDK_DISABLED", "true"}})));
}

TEST(OtlpSettings, ProtocolFromTheFlagOrTheVariables) {
    cli::global_options g;
    g.otlp_endpoint = "http://c:4318";
    EXPECT_FALSE(cli::make_otlp_options(g, env_of({}))->protobuf);  // http/json by default
    EXPECT_TRUE(
        cli::make_otlp_options(g, env_of({{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"}}))
            ->protobuf);
    // The traces variable wins over the general one, and the flag over both.
    EXPECT_FALSE(
        cli::make_otlp_options(g, env_of({{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"},
                                          {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"}}))
            ->protobuf);
    g.otlp_protocol = "http/protobuf";
    EXPECT_TRUE(cli::make_otlp_options(g, env_of({{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}}))
                    ->protobuf);
}

TEST(OtlpSettings, BadSettingsAreClearErrors) {
    cli::global_options g;
    auto fails = [&](std::map<std::string, std::string> vars, const std::string& says) {
        try {
            cli::make_otlp_options(g, env_of(std::move(vars)));
            ADD_FAILURE() << "no error, expected: " << says;
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
        }
    };
    fails({{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"}}, "not an http:// or https:// URL");
    fails(
        {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
        "4318");
    fails({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}, {"OTEL_EXPORTER_OTLP_HEADERS", "x"}},
          "OTEL_EXPORTER_OTLP_HEADERS");
    fails({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}, {"OTEL_EXPORTER_OTLP_TIMEOUT", "-1"}},
          "OTEL_EXPORTER_OTLP_TIMEOUT");
    fails({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
           {"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"}},
          "none or gzip");
    fails({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
           {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml"}},
          "http/json or http/protobuf");
    g.otlp_endpoint = "http://c:4318";
    g.otlp_headers = {"NoEquals"};
    fails({}, "--otlp-header");
}

}  // namespace
}  // namespace llm_proxy::otlp

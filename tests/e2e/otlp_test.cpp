// --otlp-endpoint: the real binary sends one span per flow to a test OTLP/HTTP collector (in
// this process, on loopback). Every request body is checked against the OTLP JSON encoding;
// an LLM call's span carries the same usage as its record; a client's traceparent is kept;
// prompts travel only with --otlp-content; a collector that goes down and comes back, or a
// proxy restarted while it is down (the disk spool), loses no span; the OTEL_* variables
// alone configure the exporter.

#include <regex>
#include <set>

#include "e2e_fixture.hpp"
#include "support/otlp_collector.hpp"

namespace llm_proxy::test {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string stream_body =
    R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},)"
    R"("messages":[{"role":"system","content":"Be brief."},)"
    R"({"role":"user","content":"Tell me a secret plan"}]})";

// The fake upstream reports usage for calls that are not streamed.
const std::string chat_body =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tell me a secret plan"}]})";

const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// Spans by their flow id.
std::map<std::string, json> by_flow_id(const std::vector<json>& spans) {
    std::map<std::string, json> out;
    for (const auto& s : spans) {
        out[span_attribute_text(s, "llm_proxy.flow_id")] = s;
    }
    return out;
}

}  // namespace

class Otlp : public e2e_test {
  protected:
    // Starts dir_logger with the exporter pointed at the collector, batching every 50 ms.
    void start_exporting(std::vector<std::string> extra = {}, spawn_options options = {}) {
        std::vector<std::string> args = {"--otlp-endpoint", collector_.endpoint(),
                                         "--otlp-spool-dir", (work_ / "spool").string()};
        args.insert(args.end(), extra.begin(), extra.end());
        args.insert(args.end(), {"dir_logger", "-o", log_dir().string()});
        options.env.emplace_back("OTEL_BSP_SCHEDULE_DELAY", "50");
        auto all = base_args();
        all.insert(all.end(), args.begin(), args.end());
        proxy_ = std::make_unique<proxy_process>(all, options);
    }

    // Every body the collector accepted is valid OTLP JSON.
    void expect_valid_requests() {
        for (const auto& body : collector_.accepted_bodies()) {
            EXPECT_EQ(otlp_trace_problems(body), std::vector<std::string>{}) << body.dump();
        }
    }

    void send_requests(int n) {
        auto client = proxied_client();
        for (int i = 0; i < n; ++i) {
            ASSERT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
        }
    }

    void llm_call_becomes_a_span(std::vector<std::string> extra);

    otlp_collector collector_;
};

// An LLM call and a failed request through the proxy, sent with `extra` flags: the call is a
// GenAI span with its record's usage, the failure a plain HTTP error span.
void Otlp::llm_call_becomes_a_span(std::vector<std::string> extra) {
    start_exporting(std::move(extra));
    auto client = proxied_client();
    auto chat = client.post("https://api.openai.com/v1/chat/completions", chat_body,
                            {{"Content-Type", "application/json"}, {"traceparent", traceparent}});
    ASSERT_EQ(chat.status, 200u) << chat.body;
    ASSERT_EQ(client.get("https://api.openai.com/status/503").status, 503u);
    ASSERT_TRUE(collector_.wait_for_spans(2)) << proxy_->stderr_text();
    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    expect_valid_requests();

    auto spans = by_flow_id(collector_.spans());
    ASSERT_EQ(spans.size(), 2u);
    const json* chat_record = nullptr;
    for (const auto& r : records) {
        if (r.contains("llm")) {
            chat_record = &r;
        }
    }
    ASSERT_NE(chat_record, nullptr);
    // Records written one per file carry their id in the file name, JSONL lines in "id".
    auto id = chat_record->value("id", std::string());
    const json* span = nullptr;
    for (const auto& [flow_id, s] : spans) {
        if (!span_attribute(s, "gen_ai.operation.name").is_null()) {
            span = &s;
        }
    }
    ASSERT_NE(span, nullptr);
    EXPECT_EQ((*span)["name"], "chat gpt-4o-mini");
    EXPECT_EQ((*span)["kind"], 3);
    EXPECT_EQ((*span)["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ((*span)["parentSpanId"], "00f067aa0ba902b7");
    EXPECT_EQ(span_attribute_text(*span, "gen_ai.provider.name"), "openai");
    EXPECT_EQ(span_attribute_text(*span, "gen_ai.request.model"), "gpt-4o-mini");
    EXPECT_EQ(span_attribute(*span, "gen_ai.request.stream"), (json{{"boolValue", false}}));
    EXPECT_EQ(span_attribute_text(*span, "server.address"), "api.openai.com");
    EXPECT_EQ(span_attribute_text(*span, "http.response.status_code"), "200");
    const auto& llm = (*chat_record)["llm"];
    EXPECT_EQ(span_attribute_text(*span, "gen_ai.response.model"), llm.value("response_model", ""));
    const auto& usage = llm["usage"];
    ASSERT_TRUE(usage.contains("input_tokens")) << llm.dump();
    EXPECT_EQ(span_attribute_text(*span, "gen_ai.usage.input_tokens"),
              std::to_string(usage.at("input_tokens").get<std::uint64_t>()));
    EXPECT_EQ(span_attribute_text(*span, "gen_ai.usage.output_tokens"),
              std::to_string(usage.at("output_tokens").get<std::uint64_t>()));
    if (llm.contains("cost_usd") && llm["cost_usd"].is_object()) {
        EXPECT_NEAR(span_attribute(*span, "llm_proxy.cost_usd")["doubleValue"].get<double>(),
                    std::stod(llm.at("cost_usd").at("total").dump()), 1e-9);
    }
    if (!id.empty()) {
        EXPECT_EQ(span_attribute_text(*span, "llm_proxy.flow_id"), id);
    }
    // No prompt, no answer without --otlp-content.
    EXPECT_TRUE(span_attribute(*span, "gen_ai.input.messages").is_null());
    EXPECT_TRUE(span_attribute(*span, "gen_ai.output.messages").is_null());
    for (const auto& body : collector_.accepted_bodies()) {
        EXPECT_EQ(body.dump().find("secret plan"), std::string::npos);
    }

    // The 503 is a plain HTTP client span, an error.
    for (const auto& [flow_id, s] : spans) {
        if (&s == span) {
            continue;
        }
        EXPECT_EQ(s["name"], "GET");
        EXPECT_EQ(span_attribute_text(s, "http.response.status_code"), "503");
        EXPECT_EQ(span_attribute_text(s, "error.type"), "503");
        EXPECT_EQ(s["status"]["code"], 2);
        EXPECT_FALSE(s.contains("parentSpanId"));
    }
    // Resource and request.
    auto body = collector_.accepted_bodies().at(0);
    EXPECT_EQ(body["resourceSpans"][0]["resource"]["attributes"][0],
              json::parse(R"({"key":"service.name","value":{"stringValue":"llm_proxy"}})"));
    EXPECT_EQ(collector_.requests().at(0).target, "/v1/traces");
    for (const auto& r : collector_.requests()) {
        EXPECT_EQ(r.protobuf.find("secret plan"), std::string::npos);
    }
}

TEST_F(Otlp, LlmCallBecomesAGenAiSpanWithTheUsageOfItsRecord) {
    llm_call_becomes_a_span({});
    for (const auto& r : collector_.requests()) {
        EXPECT_EQ(r.headers.at("content-type"), "application/json");
    }
}

TEST_F(Otlp, SameSpansInTheProtobufEncoding) {
    llm_call_becomes_a_span({"--otlp-protocol", "http/protobuf"});
    for (const auto& r : collector_.requests()) {
        EXPECT_EQ(r.headers.at("content-type"), "application/x-protobuf");
        EXPECT_EQ(r.protobuf_error, "");
        EXPECT_FALSE(r.protobuf.empty());
    }
}

TEST_F(Otlp, PromptsAndAnswersOnlyWithOtlpContent) {
    start_exporting({"--otlp-content"});
    auto client = proxied_client();
    auto chat = client.post("https://api.openai.com/v1/chat/completions", stream_body,
                            {{"Content-Type", "application/json"}});
    ASSERT_EQ(chat.status, 200u);
    ASSERT_TRUE(collector_.wait_for_spans(1));
    expect_valid_requests();
    auto span = collector_.spans().at(0);
    auto input = json::parse(span_attribute_text(span, "gen_ai.input.messages"));
    EXPECT_EQ(input, json::parse(R"([{"role":"user","parts":[{"type":"text",)"
                                 R"("content":"Tell me a secret plan"}]}])"));
    EXPECT_EQ(json::parse(span_attribute_text(span, "gen_ai.system_instructions")),
              json::parse(R"([{"type":"text","content":"Be brief."}])"));
    EXPECT_EQ(span_attribute(span, "gen_ai.request.stream"), (json{{"boolValue", true}}));
    // The streamed answer, reassembled.
    auto output = json::parse(span_attribute_text(span, "gen_ai.output.messages"));
    ASSERT_EQ(output.size(), 1u);
    EXPECT_EQ(output[0]["parts"][0]["content"], "tok0 tok1 tok2 tok3 tok4 ");
    EXPECT_EQ(output[0]["role"], "assistant");
    EXPECT_FALSE(output[0]["parts"].empty());
}

TEST_F(Otlp, CollectorDownThenUpLosesNothing) {
    start_exporting();
    send_requests(3);
    ASSERT_TRUE(collector_.wait_for_spans(3));
    collector_.go_down();
    send_requests(10);
    // The proxy keeps proxying; the spans wait.
    ASSERT_TRUE(
        proxy_->wait_for_stderr_line(std::regex("otlp: the collector .* did not take"), 10s))
        << proxy_->stderr_text();
    collector_.come_back();
    ASSERT_TRUE(collector_.wait_for_spans(13, 30s)) << proxy_->stderr_text();
    auto records = wait_for_records(13);
    std::set<std::string> record_ids;
    for (const auto& r : records) {
        record_ids.insert(r.value("id", ""));
    }
    auto spans = by_flow_id(collector_.spans());
    EXPECT_EQ(spans.size(), 13u);  // each exactly once
    EXPECT_EQ(collector_.spans().size(), 13u);
    expect_valid_requests();
}

TEST_F(Otlp, SpoolKeepsSpansAcrossAProxyRestart) {
    collector_.go_down();
    start_exporting();
    send_requests(5);
    ASSERT_TRUE(
        proxy_->wait_for_stderr_line(std::regex("otlp: the collector .* did not take"), 10s))
        << proxy_->stderr_text();
    ASSERT_EQ(proxy_->stop(), 0);
    EXPECT_NE(proxy_->stderr_text().find("are kept in"), std::string::npos)
        << proxy_->stderr_text();
    EXPECT_TRUE(collector_.requests().empty());
    collector_.come_back();
    start_exporting();
    ASSERT_TRUE(collector_.wait_for_spans(5, 30s)) << proxy_->stderr_text();
    send_requests(1);
    ASSERT_TRUE(collector_.wait_for_spans(6, 30s));
    EXPECT_EQ(by_flow_id(collector_.spans()).size(), 6u);
    expect_valid_requests();
}

TEST_F(Otlp, OtelVariablesAloneConfigureTheExporter) {
    spawn_options o;
    o.env = {{"OTEL_EXPORTER_OTLP_ENDPOINT", collector_.endpoint()},
             {"OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20cGs6c2s="},
             {"OTEL_SERVICE_NAME", "team-gateway"},
             {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"},
             {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
             {"OTEL_BSP_SCHEDULE_DELAY", "50"},
             {"XDG_STATE_HOME", (work_ / "state").string()}};
    auto all = base_args();
    all.insert(all.end(), {"dir_logger", "-o", log_dir().string()});
    proxy_ = std::make_unique<proxy_process>(all, o);
    send_requests(1);
    ASSERT_TRUE(collector_.wait_for_spans(1)) << proxy_->stderr_text();
    auto r = collector_.requests().at(0);
    EXPECT_EQ(r.headers.at("authorization"), "Basic cGs6c2s=");
    EXPECT_EQ(r.headers.at("content-encoding"), "gzip");
    auto body = json::parse(r.body);
    EXPECT_EQ(otlp_trace_problems(body), std::vector<std::string>{});
    auto attrs = body["resourceSpans"][0]["resource"]["attributes"];
    EXPECT_EQ(attrs[0],
              json::parse(R"({"key":"service.name","value":{"stringValue":"team-gateway"}})"));
    EXPECT_EQ(attrs[1],
              json::parse(R"({"key":"deployment.environment","value":{"stringValue":"test"}})"));
    EXPECT_TRUE(fs::is_directory(work_ / "state" / "llm_proxy" / "otlp-spool"));
}

TEST_F(Otlp, BadSettingsExitWithCode2) {
    auto all = base_args();
    all.insert(all.end(), {"--otlp-endpoint", "collector:4318", "dir_logger", "-o",
                           log_dir().string(), "--listen", "127.0.0.1:0"});
    all.insert(all.begin(), LLM_PROXY_BINARY);
    auto r = run_command(all, 10s);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--otlp-endpoint 'collector:4318' is not an http"), std::string::npos)
        << r.err;
}

}  // namespace llm_proxy::test

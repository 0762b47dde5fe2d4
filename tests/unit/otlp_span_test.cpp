// Flows as OTLP spans: the GenAI attributes, plain HTTP spans, errors, trace context, content
// only when asked, and every request valid OTLP JSON (the test collector's checker, which is
// itself shown to catch what it must).

#include <gtest/gtest.h>

#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/otlp/span.hpp"
#include "support/addon_test_kit.hpp"
#include "support/otlp_collector.hpp"
#include "support/otlp_protobuf.hpp"

namespace llm_proxy::otlp {
namespace {

using nlohmann::json;
using test::span_attribute;
using test::span_attribute_text;

const std::string chat_request = R"({"model":"gpt-4o-mini","stream":true,"messages":[)"
                                 R"({"role":"system","content":"Be brief."},)"
                                 R"({"role":"user","content":"What is the weather in Paris?"}]})";

flow chat_flow() {
    auto f = test::make_flow("POST", "https://api.openai.com/v1/chat/completions",
                             {{"Content-Type", "application/json"}}, chat_request);
    f.request_body.data = chat_request;
    f.request_body.total = chat_request.size();
    f.request_bytes = chat_request.size();
    f.response = response_head{200, "OK", 11, {{"Content-Type", "text/event-stream"}}};
    f.response_bytes = 1234;
    f.started_at = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
    f.duration = std::chrono::milliseconds(1500);
    llm::summary s;
    s.call.provider = llm::provider::openai;
    s.call.api = llm::api::chat_completions;
    s.call.request_model = "gpt-4o-mini";
    s.call.response_model = "gpt-4o-mini-2024-07-18";
    s.call.response_id = "chatcmpl-123";
    s.call.stream = true;
    s.call.usage.input_tokens = 1200;
    s.call.usage.output_tokens = 85;
    s.call.usage.cache_read_tokens = 1024;
    s.call.usage.cache_write_tokens = 0;
    s.call.usage.reasoning_tokens = 7;
    llm::answer a;
    a.content = "Sunny.";
    a.finish_reason = "tool_calls";
    a.tool_calls.push_back({"call_1", "function", "get_weather", R"({"city":"Paris"})"});
    s.call.answers.push_back(a);
    auto usd = *llm::money::parse("0.000185");
    s.cost_usd = llm::cost{usd, llm::money{}, usd};
    s.first_token_ms = 250;
    f.llm = std::make_shared<const llm::summary>(s);
    return f;
}

json request_of(const std::vector<json>& spans) {
    std::vector<std::string> texts;
    for (const auto& s : spans) {
        texts.push_back(s.dump());
    }
    return json::parse(export_request(make_resource("", ""), texts));
}

TEST(OtlpSpan, LlmCallFollowsTheGenAiConventions) {
    auto span = make_span(chat_flow(), {});
    EXPECT_EQ(span["name"], "chat gpt-4o-mini");
    EXPECT_EQ(span["kind"], 3);
    EXPECT_EQ(span["startTimeUnixNano"], "1700000000000000000");
    EXPECT_EQ(span["endTimeUnixNano"], "1700000001500000000");
    EXPECT_EQ(span_attribute_text(span, "gen_ai.operation.name"), "chat");
    EXPECT_EQ(span_attribute_text(span, "gen_ai.provider.name"), "openai");
    EXPECT_EQ(span_attribute_text(span, "gen_ai.request.model"), "gpt-4o-mini");
    EXPECT_EQ(span_attribute_text(span, "gen_ai.response.model"), "gpt-4o-mini-2024-07-18");
    EXPECT_EQ(span_attribute_text(span, "gen_ai.response.id"), "chatcmpl-123");
    EXPECT_EQ(span_attribute(span, "gen_ai.response.finish_reasons"),
              json::parse(R"({"arrayValue":{"values":[{"stringValue":"tool_calls"}]}})"));
    EXPECT_EQ(span_attribute(span, "gen_ai.usage.input_tokens"), (json{{"intValue", "1200"}}));
    EXPECT_EQ(span_attribute_text(span, "gen_ai.usage.output_tokens"), "85");
    EXPECT_EQ(span_attribute_text(span, "gen_ai.usage.cache_read.input_tokens"), "1024");
    EXPECT_EQ(span_attribute_text(span, "gen_ai.usage.cache_creation.input_tokens"), "0");
    EXPECT_EQ(span_attribute_text(span, "gen_ai.usage.reasoning.output_tokens"), "7");
    EXPECT_EQ(span_attribute(span, "gen_ai.request.stream"), (json{{"boolValue", true}}));
    EXPECT_EQ(span_attribute_text(span, "server.address"), "api.openai.com");
    EXPECT_EQ(span_attribute_text(span, "server.port"), "443");
    EXPECT_EQ(span_attribute_text(span, "http.response.status_code"), "200");
    EXPECT_EQ(span_attribute_text(span, "url.full"), "https://api.openai.com/v1/chat/completions");
    EXPECT_DOUBLE_EQ(span_attribute(span, "llm_proxy.cost_usd")["doubleValue"].get<double>(),
                     0.000185);
    EXPECT_DOUBLE_EQ(
        span_attribute(span, "llm_proxy.time_to_first_token_s")["doubleValue"].get<double>(), 0.25);
    EXPECT_TRUE(span_attribute(span, "error.type").is_null());
    EXPECT_EQ(span["status"], json::object());
    // No prompt or answer without --otlp-content.
    EXPECT_TRUE(span_attribute(span, "gen_ai.input.messages").is_null());
    EXPECT_TRUE(span_attribute(span, "gen_ai.output.messages").is_null());
    EXPECT_EQ(test::otlp_trace_problems(request_of({span})), std::vector<std::string>{});
}

TEST(OtlpSpan, ContentOnlyWhenAskedInTheConventionsShape) {
    auto span = make_span(chat_flow(), {.content = true});
    auto system = json::parse(span_attribute_text(span, "gen_ai.system_instructions"));
    EXPECT_EQ(system, json::parse(R"([{"type":"text","content":"Be brief."}])"));
    auto input = json::parse(span_attribute_text(span, "gen_ai.input.messages"));
    EXPECT_EQ(input, json::parse(R"([{"role":"user","parts":[{"type":"text",)"
                                 R"("content":"What is the weather in Paris?"}]}])"));
    auto output = json::parse(span_attribute_text(span, "gen_ai.output.messages"));
    EXPECT_EQ(output, json::parse(R"([{"role":"assistant","finish_reason":"tool_calls","parts":[)"
                                  R"({"type":"text","content":"Sunny."},)"
                                  R"({"type":"tool_call","id":"call_1","name":"get_weather",)"
                                  R"("arguments":"{\"city\":\"Paris\"}"}]}])"));
    EXPECT_EQ(test::otlp_trace_problems(request_of({span})), std::vector<std::string>{});
}

TEST(OtlpSpan, PlainHttpFlowIsAClientSpanWithoutGenAi) {
    auto f = test::make_flow("GET", "https://example.com/v1/models?alt=sse&key=SECRET123");
    f.response = response_head{503, "Service Unavailable", 11, {}};
    auto span = make_span(f, {});
    EXPECT_EQ(span["name"], "GET");
    EXPECT_EQ(span["kind"], 3);
    EXPECT_EQ(span_attribute_text(span, "http.request.method"), "GET");
    EXPECT_EQ(span_attribute_text(span, "http.response.status_code"), "503");
    EXPECT_EQ(span_attribute_text(span, "error.type"), "503");
    EXPECT_EQ(span["status"]["code"], 2);
    // Credentials in the query never leave the proxy.
    EXPECT_EQ(span_attribute_text(span, "url.full"),
              "https://example.com/v1/models?alt=sse&key=REDACTED");
    EXPECT_EQ(span.dump().find("SECRET123"), std::string::npos);
    for (const auto& kv : span["attributes"]) {
        EXPECT_NE(kv["key"].get<std::string>().rfind("gen_ai.", 0), 0u) << kv;
    }
    EXPECT_EQ(test::otlp_trace_problems(request_of({span})), std::vector<std::string>{});
}

TEST(OtlpSpan, UrlFullIsTheRequestUrlWithPortAndBrackets) {
    for (const char* url : {"https://api.openai.com/v1/models", "http://example.com/",
                            "https://example.com:8443/a?b=c", "http://10.0.0.1:8080/x",
                            "http://[::1]:8080/v1?x=1", "https://[2001:db8::1]/v1"}) {
        auto f = test::make_flow("GET", url);
        EXPECT_EQ(span_attribute_text(make_span(f, {}), "url.full"), f.request.url()) << url;
    }
    // Only the value of a parameter named like a credential goes; every other byte is kept.
    auto f = test::make_flow("GET", "https://h.test:444/p?a=1&api_key=S&&x&Signature=T&z=");
    EXPECT_EQ(span_attribute_text(make_span(f, {}), "url.full"),
              "https://h.test:444/p?a=1&api_key=REDACTED&&x&Signature=REDACTED&z=");
}

TEST(OtlpSpan, FinishReasonsOfTheAnswersThatHaveOne) {
    auto f = chat_flow();
    auto s = *f.llm;
    llm::answer no_reason;
    no_reason.content = "cut";
    llm::answer stopped;
    stopped.finish_reason = "stop";
    s.call.answers = {no_reason, stopped, no_reason};
    f.llm = std::make_shared<const llm::summary>(s);
    EXPECT_EQ(span_attribute(make_span(f, {}), "gen_ai.response.finish_reasons"),
              json::parse(R"({"arrayValue":{"values":[{"stringValue":"stop"}]}})"));
    s.call.answers = {no_reason};
    f.llm = std::make_shared<const llm::summary>(s);
    auto span = make_span(f, {});
    EXPECT_TRUE(span_attribute(span, "gen_ai.response.finish_reasons").is_null()) << span;
    EXPECT_EQ(test::otlp_trace_problems(request_of({span})), std::vector<std::string>{});
}

TEST(OtlpSpan, ProxyErrorsCarryTheirKind) {
    auto f = test::make_flow("POST", "https://down.test/v1/chat/completions");
    f.error_kind = flow_error::connect;
    f.error = "connection refused";
    f.response = response_head{502, "Bad Gateway", 11, {}};
    auto span = make_span(f, {});
    EXPECT_EQ(span_attribute_text(span, "error.type"), "connect");
    EXPECT_EQ(span["status"], json::parse(R"({"code":2,"message":"connection refused"})"));
}

TEST(OtlpSpan, ClientTraceparentJoinsTheTrace) {
    auto f = chat_flow();
    f.request.headers.emplace_back("traceparent",
                                   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    f.request.headers.emplace_back("tracestate", "congo=t61rcWkgMzE");
    auto span = make_span(f, {});
    EXPECT_EQ(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(span["parentSpanId"], "00f067aa0ba902b7");
    EXPECT_EQ(span["traceState"], "congo=t61rcWkgMzE");
    EXPECT_NE(span["spanId"], "00f067aa0ba902b7");
    EXPECT_EQ(span["flags"], 0x301);  // sampled; the parent's remoteness known, and remote
    EXPECT_EQ(test::otlp_trace_problems(request_of({span})), std::vector<std::string>{});

    // Without one (or with a broken one) the span starts its own trace.
    auto g = chat_flow();
    g.request.headers.emplace_back("traceparent",
                                   "00-00000000000000000000000000000000-"
                                   "00f067aa0ba902b7-01");
    auto own = make_span(g, {});
    EXPECT_FALSE(own.contains("parentSpanId"));
    EXPECT_EQ(own["traceId"].get<std::string>().size(), 32u);
    EXPECT_NE(own["traceId"], make_span(g, {})["traceId"]);
}

TEST(OtlpSpan, ParsesTraceparentStrictly) {
    auto t = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(t->parent_id, "00f067aa0ba902b7");
    EXPECT_EQ(t->flags, 1);
    // A later version may append fields.
    EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-xyz"));
    for (const char* bad : {
             "",
             "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
             "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent
             "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 with more
             "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",    // misplaced dash
             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
         }) {
        EXPECT_FALSE(parse_traceparent(bad)) << bad;
    }
}

TEST(OtlpSpan, OperationAndProviderNames) {
    EXPECT_STREQ(operation_name(llm::api::chat_completions), "chat");
    EXPECT_STREQ(operation_name(llm::api::responses), "chat");
    EXPECT_STREQ(operation_name(llm::api::messages), "chat");
    EXPECT_STREQ(operation_name(llm::api::completions), "text_completion");
    EXPECT_STREQ(operation_name(llm::api::embeddings), "embeddings");
    EXPECT_STREQ(operation_name(llm::api::generate_content), "generate_content");
    EXPECT_STREQ(provider_name(llm::provider::google), "gcp.gemini");
    EXPECT_STREQ(provider_name(llm::provider::anthropic), "anthropic");
}

TEST(OtlpSpan, LongAndInvalidTextStaysValid) {
    auto f = chat_flow();
    f.error_kind = flow_error::upstream_reset;
    f.error = std::string(100, 'x') + "\xff\xfe" + std::string(10, 'y');
    auto text = span_text(f, {.content = false, .max_attribute_length = 50});
    auto span = json::parse(text);  // valid UTF-8: bad bytes became U+FFFD
    EXPECT_EQ(span["status"]["message"].get<std::string>(), std::string(50, 'x'));
}

// Every place a string is written, with values that must be escaped (quotes, backslashes,
// control characters, text outside ASCII) and values with nothing to escape, read back whole.
TEST(OtlpSpan, EveryStringEscapedWhereItMustBe) {
    const std::string odd = "a\"b\\c\n\x01\td\xc3\xa9/\x7f";
    auto f = chat_flow();
    f.request.headers.emplace_back("traceparent",
                                   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    f.request.headers.emplace_back("tracestate", "k=" + odd);
    f.error_kind = flow_error::upstream_reset;
    f.error = "reset: " + odd;
    f.id = odd;
    f.tags["cache"] = odd;
    auto s = *f.llm;
    s.call.request_model = odd;
    s.call.response_model = "m" + odd;
    s.call.response_id = "";
    s.call.answers.front().finish_reason = odd;
    s.call.answers.push_back(llm::answer{});  // none: left out of the array
    s.call.answers.push_back(llm::answer{});
    s.call.answers.back().finish_reason = "stop";
    f.llm = std::make_shared<const llm::summary>(s);
    auto span = json::parse(span_text(f, {}));
    EXPECT_EQ(span["name"], "chat " + odd);
    EXPECT_EQ(span["traceState"], "k=" + odd);
    EXPECT_EQ(span["status"], (json{{"code", 2}, {"message", "reset: " + odd}}));
    EXPECT_EQ(span_attribute_text(span, "gen_ai.request.model"), odd);
    EXPECT_EQ(span_attribute_text(span, "gen_ai.response.model"), "m" + odd);
    EXPECT_TRUE(span_attribute(span, "gen_ai.response.id").is_null());
    EXPECT_EQ(
        span_attribute(span, "gen_ai.response.finish_reasons"),
        (json{{"arrayValue", {{"values", {{{"stringValue", odd}}, {{"stringValue", "stop"}}}}}}}));
    EXPECT_EQ(span_attribute_text(span, "llm_proxy.flow_id"), odd);
    EXPECT_EQ(span_attribute_text(span, "llm_proxy.cache"), odd);
    EXPECT_EQ(span_attribute_text(span, "error.type"), "upstream_reset");
    EXPECT_EQ(test::otlp_trace_problems(request_of({span})), std::vector<std::string>{});
}

// A span is written into a buffer of the thread that renders it: one that outgrows the buffer
// (4 KiB, then doubled) comes out whole, and a short span rendered after a long one holds
// nothing of it.
TEST(OtlpSpan, SpansLongerThanTheBufferComeOutWhole) {
    auto short_flow = chat_flow();
    auto without_ids = [](std::string_view text) {
        auto span = json::parse(text);
        span.erase("traceId");
        span.erase("spanId");
        return span;
    };
    const auto short_span = without_ids(span_text(short_flow, {}));
    for (std::size_t length : {4000u, 4096u, 8192u, 70'000u, 300'000u}) {
        auto f = chat_flow();
        auto s = *f.llm;
        s.call.request_model = std::string(length, 'm');
        s.call.response_id = std::string(length / 2, '"');  // escaped: twice as long
        f.llm = std::make_shared<const llm::summary>(s);
        const span_options o{.content = false, .max_attribute_length = 1u << 20};
        auto long_text = std::string(render_span(f, o));
        auto span = json::parse(long_text);
        EXPECT_EQ(span_attribute_text(span, "gen_ai.request.model"), s.call.request_model);
        EXPECT_EQ(span_attribute_text(span, "gen_ai.response.id"), s.call.response_id);
        EXPECT_GT(long_text.size(), 2 * length) << length;
        EXPECT_EQ(without_ids(render_span(short_flow, {})), short_span) << length;
        // Appended after what the string already holds.
        std::string joined = "[";
        append_span(joined, f, o);
        joined += ',';
        append_span(joined, short_flow, {});
        joined += ']';
        auto both = json::parse(joined);
        ASSERT_EQ(both.size(), 2u);
        EXPECT_EQ(span_attribute_text(both[0], "gen_ai.request.model"), s.call.request_model);
        EXPECT_EQ(without_ids(both[1].dump()), short_span);
    }
}

// The flows of the encoding comparison: an LLM call joining a client's trace, the same with
// long and invalid text, a plain HTTP error, and a blind tunnel.
std::vector<flow> encoding_flows() {
    std::vector<flow> flows;
    auto traced = chat_flow();
    traced.request.headers.emplace_back("traceparent",
                                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    traced.request.headers.emplace_back("tracestate", "congo=t61rcWkgMzE");
    flows.push_back(traced);
    auto odd = traced;
    odd.error_kind = flow_error::upstream_reset;
    odd.error = std::string(300, 'x') + "\xff\xfe\xc3(" + std::string(70'000, 'y');
    odd.id = "caf\xc3\xa9-\xe2\x82";  // valid, then a cut sequence
    auto s = *odd.llm;
    s.call.answers.push_back(llm::answer{});
    s.call.answers.back().finish_reason = std::string(200, 'r');
    s.cost_usd = llm::cost{*llm::money::parse("12.5"), llm::money{}, *llm::money::parse("12.5")};
    odd.llm = std::make_shared<const llm::summary>(s);
    flows.push_back(odd);
    auto plain = test::make_flow("GET", "http://example.com:8080/v1/models?key=S");
    plain.request.headers.emplace_back("traceparent",
                                       "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    plain.response = response_head{503, "Service Unavailable", 11, {}};
    flows.push_back(plain);
    auto tunnel = test::make_flow("CONNECT", "https://pinned.example:443/");
    tunnel.request.headers.emplace_back("traceparent",
                                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203332-01");
    tunnel.tunnel = tunnel_stats{"pinned.example", 1234, 5678, "client_closed"};
    flows.push_back(tunnel);
    return flows;
}

// The span ids of a request, checked (16 lowercase hex digits) and taken out: they are random
// per rendering.
void take_span_ids(json& request) {
    for (auto& span : request["resourceSpans"][0]["scopeSpans"][0]["spans"]) {
        auto id = span["spanId"].get<std::string>();
        EXPECT_EQ(id.size(), 16u);
        EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
        span.erase("spanId");
    }
}

TEST(OtlpSpan, ProtobufEncodingCarriesTheSameSpans) {
    const auto r = make_resource("svc", "deployment.environment=prod");
    for (bool content : {false, true}) {
        std::string texts;
        std::string entries;
        for (const auto& f : encoding_flows()) {
            span_options o{.content = content, .max_attribute_length = 64 * 1024};
            std::string text;
            append_span(text, f, o);
            std::string entry;
            append_span_protobuf(entry, f, o);
            EXPECT_LT(entry.size(), text.size()) << f.id;
            texts += texts.empty() ? text : "," + text;
            entries += entry;
        }
        auto from_json = json::parse(export_request_joined(r, texts));
        std::string error;
        auto from_protobuf =
            test::otlp_protobuf_to_json(export_request_protobuf(r, entries), error);
        ASSERT_TRUE(from_protobuf) << error;
        EXPECT_EQ(test::otlp_trace_problems(*from_protobuf), std::vector<std::string>{});
        ASSERT_EQ((*from_protobuf)["resourceSpans"][0]["scopeSpans"][0]["spans"].size(), 4u);
        take_span_ids(from_json);
        take_span_ids(*from_protobuf);
        EXPECT_EQ(*from_protobuf, from_json) << "content " << content;
    }
}

// A flow captured (the few hundred bytes the exporter queues) and rendered later gives the
// span rendered from the flow itself, in both encodings: captures one after another in one
// buffer, read back by their ends, with long, invalid and escaped text, tunnels, errors, a
// client's trace and none, attributes cut short or not.
TEST(OtlpSpan, CapturedFlowsRenderTheSameSpans) {
    auto flows = encoding_flows();
    flows.push_back(chat_flow());  // no traceparent: its trace id is drawn when rendered
    auto rejected = test::make_flow("GET", "http://example.com/missing");
    rejected.rejected = rejection{404, "/missing", "", false};
    rejected.error_kind = flow_error::none;
    flows.push_back(rejected);
    auto cached = chat_flow();
    cached.tags["cache"] = "hit";
    auto s = *cached.llm;
    s.saved_usd = *llm::money::parse("0.5");
    s.first_token_ms.reset();
    s.call.usage.reasoning_tokens.reset();
    s.call.incomplete = true;
    s.call.answers.clear();
    cached.llm = std::make_shared<const llm::summary>(s);
    flows.push_back(cached);
    auto without_ids = [](json span, bool keep_trace) {
        span.erase("spanId");
        if (!keep_trace) {
            span.erase("traceId");
        }
        return span;
    };
    for (std::size_t limit : {std::size_t{64} * 1024, std::size_t{20}}) {
        const span_options o{.content = false, .max_attribute_length = limit};
        std::string captures;
        std::vector<std::size_t> ends;
        for (const auto& f : flows) {
            capture_span(captures, f);
            ends.push_back(captures.size());
        }
        for (std::size_t i = 0; i < flows.size(); ++i) {
            const auto& f = flows[i];
            const bool traced = find_header(f.request.headers, "traceparent").has_value();
            const auto start = i == 0 ? 0 : ends[i - 1];
            const auto capture = std::string_view(captures).substr(start, ends[i] - start);
            auto direct = json::parse(render_span(f, o));
            auto later = json::parse(render_captured_span(capture, o, false));
            EXPECT_EQ(without_ids(later, traced), without_ids(direct, traced))
                << "flow " << i << " limit " << limit;
            std::string error;
            auto r = make_resource("svc", "");
            auto proto_direct = test::otlp_protobuf_to_json(
                export_request_protobuf(r, render_span_protobuf(f, o)), error);
            auto proto_later = test::otlp_protobuf_to_json(
                export_request_protobuf(r, render_captured_span(capture, o, true)), error);
            ASSERT_TRUE(proto_direct && proto_later) << error;
            EXPECT_EQ(without_ids((*proto_later)["resourceSpans"][0]["scopeSpans"][0]["spans"][0],
                                  traced),
                      without_ids((*proto_direct)["resourceSpans"][0]["scopeSpans"][0]["spans"][0],
                                  traced))
                << "flow " << i << " limit " << limit;
        }
    }
}

// Nested lengths take one varint byte below 128 and two below 16,384: values whose attribute,
// and the span around them, sit on either side of both bounds decode to the JSON encoding.
TEST(OtlpSpan, ProtobufLengthsAroundTheVarintBounds) {
    const auto r = make_resource("svc", "");
    for (std::size_t base : {std::size_t{100}, std::size_t{16'330}}) {
        for (std::size_t n = base; n < base + 60; ++n) {
            auto f = encoding_flows()[2];
            f.id = std::string(n, 'i');
            std::string text;
            append_span(text, f, {});
            std::string entry;
            append_span_protobuf(entry, f, {});
            auto from_json = json::parse(export_request_joined(r, text));
            std::string error;
            auto from_protobuf =
                test::otlp_protobuf_to_json(export_request_protobuf(r, entry), error);
            ASSERT_TRUE(from_protobuf) << n << ": " << error;
            take_span_ids(from_json);
            take_span_ids(*from_protobuf);
            ASSERT_EQ(*from_protobuf, from_json) << n;
        }
    }
}

TEST(OtlpSpan, ProtobufReaderRefusesBrokenMessages) {
    const auto r = make_resource("svc", "");
    std::string entry;
    append_span_protobuf(entry, encoding_flows()[0], {});
    const auto body = export_request_protobuf(r, entry);
    std::string error;
    ASSERT_TRUE(test::otlp_protobuf_to_json(body, error)) << error;
    // Cut anywhere, the request is refused, never read as something else.
    for (std::size_t n : {body.size() - 1, body.size() / 2, std::size_t{3}}) {
        EXPECT_FALSE(test::otlp_protobuf_to_json(std::string_view(body).substr(0, n), error)) << n;
    }
    // A field the protos do not have.
    EXPECT_FALSE(test::otlp_protobuf_to_json(body + std::string("\x10\x01"), error));
    EXPECT_NE(error.find("unknown field 2"), std::string::npos) << error;
}

TEST(OtlpResource, ServiceNameAndAttributes) {
    auto r = make_resource("", "deployment.environment=prod,team=a%2Cb, bad ,=x");
    ASSERT_EQ(r.attributes.size(), 3u);
    EXPECT_EQ(r.attributes[0], (std::pair<std::string, std::string>{"service.name", "llm_proxy"}));
    EXPECT_EQ(r.attributes[1].second, "prod");
    EXPECT_EQ(r.attributes[2], (std::pair<std::string, std::string>{"team", "a,b"}));
    auto named = make_resource("gateway", "service.name=ignored");
    ASSERT_EQ(named.attributes.size(), 1u);
    EXPECT_EQ(named.attributes[0].second, "gateway");
    auto from_attrs = make_resource("", "service.name=from-attrs");
    ASSERT_EQ(from_attrs.attributes.size(), 1u);
    EXPECT_EQ(from_attrs.attributes[0].second, "from-attrs");
    auto body = json::parse(export_request(named, {}));
    EXPECT_EQ(test::otlp_trace_problems(body), std::vector<std::string>{});
    EXPECT_EQ(body["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"], "llm_proxy");
}

// The checker the e2e tests rely on must reject what the OTLP protos reject.
TEST(OtlpChecker, RejectsWhatTheProtosReject) {
    auto good = request_of({make_span(chat_flow(), {})});
    ASSERT_EQ(test::otlp_trace_problems(good), std::vector<std::string>{});
    auto broken = [&](auto change) {
        auto j = good;
        change(j["resourceSpans"][0]["scopeSpans"][0]["spans"][0]);
        return test::otlp_trace_problems(j).size();
    };
    EXPECT_GT(broken([](json& s) { s["traceId"] = "4BF92F3577B34DA6A3CE929D0E0E4736"; }), 0u);
    EXPECT_GT(broken([](json& s) { s["spanId"] = "0000000000000000"; }), 0u);
    EXPECT_GT(broken([](json& s) { s["kind"] = "SPAN_KIND_CLIENT"; }), 0u);
    EXPECT_GT(broken([](json& s) { s["startTimeUnixNano"] = "1.5e9"; }), 0u);
    EXPECT_GT(broken([](json& s) { s["endTimeUnixNano"] = "1"; }), 0u);
    EXPECT_GT(broken([](json& s) { s["duration"] = 5; }), 0u);
    EXPECT_GT(broken([](json& s) { s["attributes"][0]["value"] = json{{"intValue", "x"}}; }), 0u);
    EXPECT_GT(broken([](json& s) {
                  s["attributes"][0]["value"] = json{{"stringValue", "a"}, {"boolValue", true}};
              }),
              0u);
    EXPECT_GT(broken([](json& s) { s["attributes"].push_back(s["attributes"][0]); }), 0u);
    EXPECT_GT(broken([](json& s) { s["status"] = json{{"code", 7}}; }), 0u);
}

}  // namespace
}  // namespace llm_proxy::otlp

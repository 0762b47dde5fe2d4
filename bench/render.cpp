// How long the work per finished flow takes, measured apart from the proxy: the LLM observer's
// steps (recognise, read the request, parse the answer, price it), a record (dir_logger's
// writer thread: a JSONL line and a record file) and an OpenTelemetry span (with
// --otlp-endpoint: the worker captures what the span needs, the exporter thread renders it from
// the capture), for a non-streamed chat completion like bench/record_layouts.sh's. Each
// is done many times per round, 7 rounds; prints the median and the fastest round in µs, and
// the output's size.
//
//   ninja -C build bench_render && build/bench_render
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "llm_proxy/llm/parser.hpp"
#include "llm_proxy/llm/prices.hpp"
#include "llm_proxy/llm/recognise.hpp"
#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/otlp/span.hpp"
#include "llm_proxy/record/flow_record.hpp"

using namespace llm_proxy;

namespace {

flow chat_flow() {
    const std::string request =
        R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}]})";
    const std::string response =
        R"({"id":"chatcmpl-fake000000000042","object":"chat.completion","created":1764633600,)"
        R"("model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":)"
        R"("This is a canned answer from the fake upstream server. It exists so that the tests )"
        R"(and the benchmarks have a realistic payload to relay without ever contacting a real )"
        R"(API.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":)"
        R"({"prompt_tokens":23,"completion_tokens":33,"total_tokens":56,"prompt_tokens_details":)"
        R"({"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":)"
        R"(0,"audio_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fake_upstream"})";
    flow f;
    f.id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    f.client_address = "127.0.0.1:41234";
    f.request.method = "POST";
    f.request.scheme = "https";
    f.request.host = "localhost";
    f.request.port = 8443;
    f.request.target = "/v1/chat/completions";
    f.request.headers = {{"Host", "localhost:8443"},
                         {"User-Agent", "hey/0.0.1"},
                         {"Content-Length", std::to_string(request.size())},
                         {"Content-Type", "application/json"},
                         {"Accept-Encoding", "gzip"}};
    f.request_body.append(request, 4u << 20);
    f.request_bytes = request.size();
    f.response = response_head{200,
                               "OK",
                               11,
                               {{"Content-Type", "application/json"},
                                {"Content-Length", std::to_string(response.size())},
                                {"Date", "Tue, 02 Dec 2026 00:00:00 GMT"},
                                {"X-Request-Id", "req_0123456789abcdef"}}};
    f.response_body.append(response, 4u << 20);
    f.response_bytes = response.size();
    f.started_at = std::chrono::system_clock::now();
    f.duration = std::chrono::milliseconds(3);
    llm::summary s;
    s.call.provider = llm::provider::openai;
    s.call.api = llm::api::chat_completions;
    s.call.request_model = "gpt-4o-mini";
    s.call.response_model = "gpt-4o-mini";
    s.call.response_id = "chatcmpl-fake000000000042";
    s.call.usage.input_tokens = 23;
    s.call.usage.output_tokens = 33;
    s.call.usage.cache_read_tokens = 0;
    s.call.usage.reasoning_tokens = 0;
    llm::answer a;
    a.role = "assistant";
    a.content = "This is a canned answer from the fake upstream server.";
    a.finish_reason = "stop";
    s.call.answers.push_back(a);
    auto usd = *llm::money::parse("0.0000234");
    s.cost_usd = llm::cost{usd, llm::money{}, usd};
    f.llm = std::make_shared<const llm::summary>(s);
    return f;
}

// Median and fastest of 7 rounds of `per_round` calls of `render` (which returns the bytes it
// made).
template <class Render>
void measure(const char* name, int per_round, Render render) {
    std::vector<double> rounds;
    std::size_t bytes = 0;
    for (int r = 0; r < 7; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < per_round; ++i) {
            bytes += render();
        }
        auto t1 = std::chrono::steady_clock::now();
        rounds.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / per_round);
    }
    std::sort(rounds.begin(), rounds.end());
    std::printf("%s: median %.2f µs, fastest round %.2f µs each; %zu bytes\n", name, rounds[3],
                rounds[0], bytes / (7 * static_cast<std::size_t>(per_round)));
}

}  // namespace

int main() {
    const auto f = chat_flow();
    const auto& prices = llm::price_table::builtin();
    const auto endpoint = *llm::recognise(f.request.authority(), f.request.target, "POST");
    const auto facts = llm::read_request(endpoint, f.request_body.data);
    measure("LLM: recognise the endpoint", 200000, [&] {
        return llm::recognise(f.request.authority(), f.request.target, f.request.method) ? 1 : 0;
    });
    measure("LLM: read the request", 200000,
            [&] { return llm::read_request(endpoint, f.request_body.data).model.size(); });
    measure("LLM: parse the answer", 100000, [&] {
        llm::response_parser parser(endpoint, facts);
        parser.feed(f.response_body.data);
        return parser.finish(true).answers.size();
    });
    const auto parsed = [&] {
        llm::response_parser parser(endpoint, facts);
        parser.feed(f.response_body.data);
        return parser.finish(true);
    }();
    measure("LLM: price it (summarize)", 200000,
            [&] { return llm::summarize(parsed, &prices, f.started_at, false).cost_usd ? 1 : 0; });
    const record::record_options options;
    measure("record, JSONL line", 50000, [&] {
        return record::render_record(f, options, "proxy-1", record::record_layout::line).size();
    });
    measure("record, file", 50000, [&] {
        return record::render_record(f, options, "proxy-1", record::record_layout::file).size();
    });
    const otlp::span_options span_options;
    std::string span;
    measure("OTLP span", 200000, [&] {
        span.clear();
        otlp::append_span(span, f, span_options);
        return span.size();
    });
    measure("OTLP span, protobuf", 200000, [&] {
        span.clear();
        otlp::append_span_protobuf(span, f, span_options);
        return span.size();
    });
    std::string capture;
    measure("OTLP capture (the worker's share of a span)", 200000, [&] {
        capture.clear();
        otlp::capture_span(capture, f);
        return capture.size();
    });
    measure("OTLP span from its capture (the exporter thread's)", 200000,
            [&] { return otlp::render_captured_span(capture, span_options, false).size(); });
    measure("OTLP span from its capture, protobuf", 200000,
            [&] { return otlp::render_captured_span(capture, span_options, true).size(); });
}

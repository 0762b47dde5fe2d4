// How long rendering one OpenTelemetry span takes (what a worker does when a flow ends with
// --otlp-endpoint): a chat completion's flow, rendered 100,000 times per round, 7 rounds;
// prints the median and the fastest round in µs per span, and the span's size.
//
//   ninja -C build bench_span_render && build/bench_span_render
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/otlp/span.hpp"

using namespace llm_proxy;

int main() {
    flow f;
    f.id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    f.request.method = "POST";
    f.request.scheme = "https";
    f.request.host = "api.openai.com";
    f.request.port = 443;
    f.request.target = "/v1/chat/completions";
    f.request.headers = {{"Content-Type", "application/json"},
                         {"Authorization", "Bearer sk-test"},
                         {"User-Agent", "OpenAI/Python 1.54.0"}};
    f.response = response_head{200, "OK", 11, {{"Content-Type", "text/event-stream"}}};
    f.started_at = std::chrono::system_clock::now();
    f.duration = std::chrono::milliseconds(850);
    llm::summary s;
    s.call.provider = llm::provider::openai;
    s.call.api = llm::api::chat_completions;
    s.call.request_model = "gpt-4o-mini";
    s.call.response_model = "gpt-4o-mini-2024-07-18";
    s.call.response_id = "chatcmpl-AbCdEf123";
    s.call.stream = true;
    s.call.usage.input_tokens = 1200;
    s.call.usage.output_tokens = 85;
    llm::answer a;
    a.content = "Sunny.";
    a.finish_reason = "stop";
    s.call.answers.push_back(a);
    auto usd = *llm::money::parse("0.000185");
    s.cost_usd = llm::cost{usd, llm::money{}, usd};
    s.first_token_ms = 250;
    f.llm = std::make_shared<const llm::summary>(s);

    const otlp::span_options options;
    constexpr int per_round = 100000;
    std::vector<double> rounds;
    std::string out;
    std::size_t bytes = 0;
    for (int r = 0; r < 7; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < per_round; ++i) {
            out.clear();
            otlp::append_span(out, f, options);
            bytes += out.size();
        }
        auto t1 = std::chrono::steady_clock::now();
        rounds.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / per_round);
    }
    std::sort(rounds.begin(), rounds.end());
    std::printf("span render: median %.2f µs, fastest round %.2f µs per span; %zu bytes\n",
                rounds[3], rounds[0], bytes / (7 * per_round));
}

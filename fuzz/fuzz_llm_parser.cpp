// The LLM stream parsers: a request line picked by the input is recognised (OpenAI chat,
// completions, responses, embeddings; Anthropic messages; Gemini generateContent and
// streamGenerateContent), its request body read, and the response body (SSE, a JSON object,
// a streamed JSON array, or anything) fed to response_parser in pieces of random sizes. The
// reassembled call must not depend on the cuts, and it is priced with the built-in table.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "llm_proxy/llm/parser.hpp"
#include "llm_proxy/llm/prices.hpp"
#include "llm_proxy/llm/recognise.hpp"

using llm_proxy::fuzz::check;
namespace llm = llm_proxy::llm;

namespace {

struct request_line {
    std::string_view host;
    std::string_view target;
};

constexpr std::array<request_line, 10> lines = {{
    {"api.openai.com", "/v1/chat/completions"},
    {"api.openai.com", "/v1/completions"},
    {"api.openai.com", "/v1/responses"},
    {"api.openai.com", "/v1/embeddings"},
    {"api.anthropic.com", "/v1/messages"},
    {"generativelanguage.googleapis.com",
     "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"},
    {"generativelanguage.googleapis.com", "/v1beta/models/gemini-1.5-pro:streamGenerateContent"},
    {"generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:generateContent"},
    {"gateway.example", "/openai/v1/chat/completions"},
    {"gateway.example", "/anthropic/v1/messages"},
}};

bool same_answers(const llm::call& a, const llm::call& b) {
    if (a.answers.size() != b.answers.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.answers.size(); ++i) {
        const auto& x = a.answers[i];
        const auto& y = b.answers[i];
        if (x.role != y.role || x.content != y.content || x.refusal != y.refusal ||
            x.reasoning != y.reasoning || x.finish_reason != y.finish_reason ||
            x.truncated != y.truncated || x.tool_calls.size() != y.tool_calls.size()) {
            return false;
        }
    }
    return true;
}

bool same_usage(const llm::usage& a, const llm::usage& b) {
    for (const auto& [name, field] : llm::usage_fields) {
        if (a.*field != b.*field) {
            return false;
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const request_line line = in.PickValueInArray(lines);
    const auto e = llm::recognise(line.host, line.target, "POST");
    check(e.has_value(), "a known API request line is not recognised");
    const std::string request_body = in.ConsumeRandomLengthString(512);
    const bool body_complete = in.ConsumeBool();
    llm::parser_limits limits;
    if (in.ConsumeBool()) {
        limits.max_json_body = in.ConsumeIntegralInRange<std::size_t>(0, 4096);
        limits.max_event = in.ConsumeIntegralInRange<std::size_t>(0, 4096);
        limits.max_text = in.ConsumeIntegralInRange<std::size_t>(0, 4096);
        limits.max_answers = in.ConsumeIntegralInRange<std::size_t>(0, 8);
        limits.max_tool_calls = in.ConsumeIntegralInRange<std::size_t>(0, 8);
    }
    std::vector<std::size_t> cuts;
    const auto pieces = in.ConsumeIntegralInRange(0, 32);
    for (int i = 0; i < pieces; ++i) {
        cuts.push_back(in.ConsumeIntegralInRange(0, 48));
    }
    const std::string body = in.ConsumeRemainingBytesAsString();

    const llm::request_facts facts = llm::read_request(*e, request_body);
    (void)llm::call_from_request(*e, facts);

    llm::response_parser whole(*e, facts, limits);
    whole.feed(body);
    const llm::call& a = whole.finish(body_complete);

    llm::response_parser split(*e, facts, limits);
    std::size_t at = 0;
    for (std::size_t n : cuts) {
        n = std::min(n, body.size() - at);
        split.feed(std::string_view(body).substr(at, n));
        (void)split.result();
        at += n;
    }
    split.feed(std::string_view(body).substr(at));
    const llm::call& b = split.finish(body_complete);
    split.feed("ignored after finish");

    check(a.response_model == b.response_model, "response model depends on the cuts");
    check(a.response_id == b.response_id, "response id depends on the cuts");
    check(a.incomplete == b.incomplete, "completeness depends on the cuts");
    check(a.error == b.error, "error depends on the cuts");
    check(same_usage(a.usage, b.usage), "usage depends on the cuts");
    check(same_answers(a, b), "answers depend on the cuts");
    check(whole.gave_up() == split.gave_up(), "giving up depends on the cuts");

    const auto at_time = std::chrono::system_clock::time_point(std::chrono::hours(24 * 20200));
    if (auto price = llm::price_table::builtin().price(b, at_time)) {
        check(price->total == price->input + price->output + price->requests,
              "price total is not the sum of its parts");
    }
    return 0;
}

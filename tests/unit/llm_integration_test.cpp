// The pieces that tie the llm module into the proxy: the usage-chunk filter and the request
// rewrite of --inject-usage, the run ledger, the unpriced-model warnings, the record's llm object
// and report totals.

#include <gtest/gtest.h>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../../src/addons/usage_chunk_filter.hpp"
#include "llm_proxy/addons/llm_observer.hpp"
#include "llm_proxy/llm/ledger.hpp"
#include "llm_proxy/llm/record_json.hpp"
#include "llm_proxy/llm/record_reader.hpp"
#include "llm_proxy/llm/report.hpp"
#include "llm_proxy/record/body_decoder.hpp"
#include "support/addon_test_kit.hpp"

using namespace llm_proxy;
using json = nlohmann::json;

namespace {

const std::string chunk1 =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
const std::string chunk2 =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n";
const std::string usage_chunk =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}"
    "\n\n";
const std::string done = "data: [DONE]\n\n";

std::string run_filter(const std::string& body, std::size_t piece, std::vector<std::string>& seen) {
    addons::usage_chunk_filter filter([&seen](std::string_view e) { seen.emplace_back(e); });
    std::string out;
    for (std::size_t at = 0; at < body.size(); at += piece) {
        filter.on_data(std::string_view(body).substr(at, piece), out);
    }
    filter.on_end(out);
    return out;
}

}  // namespace

TEST(LlmUsageFilter, DropsOnlyTheUsageChunkAndSeesEveryEventWhateverThePieces) {
    const std::string body = chunk1 + chunk2 + usage_chunk + done;
    for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{7}, body.size()}) {
        SCOPED_TRACE(piece);
        std::vector<std::string> seen;
        EXPECT_EQ(run_filter(body, piece, seen), chunk1 + chunk2 + done);
        EXPECT_EQ(seen, (std::vector<std::string>{chunk1, chunk2, usage_chunk, done}));
    }
}

TEST(LlmUsageFilter, AnEventThatNeverEndsIsNotHeld) {
    addons::usage_chunk_filter filter([](std::string_view) {});
    std::string out;
    const std::string piece(64 * 1024, 'x');
    filter.on_data("data: " + piece, out);
    EXPECT_TRUE(out.empty());  // an unfinished event waits, up to the bound
    std::size_t sent = 6 + piece.size();
    while (sent <= addons::usage_chunk_filter::max_pending) {
        filter.on_data(piece, out);
        sent += piece.size();
    }
    // Past the bound everything so far went out, and what follows passes at once.
    EXPECT_EQ(out.size(), sent);
    filter.on_data(piece, out);
    EXPECT_EQ(out.size(), sent + piece.size());
    filter.on_data("\n\n" + usage_chunk, out);
    EXPECT_EQ(out.size(), sent + piece.size() + 2);  // the usage-only chunk is still dropped
}

namespace {

// A usage-only event padded (JSON whitespace) so that it is `held` bytes long before its last
// byte, the second "\n" of its blank line.
std::string padded_usage_event(std::size_t held) {
    const std::string head = "data: {\"choices\":[],";
    const std::string tail = "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n";
    EXPECT_GT(held, head.size() + tail.size());
    return head + std::string(held - head.size() - tail.size(), ' ') + tail + "\n";
}

}  // namespace

TEST(LlmUsageFilter, UnfinishedEventAtTheBound) {
    constexpr std::size_t bound = addons::usage_chunk_filter::max_pending;
    for (std::size_t held : {bound - 1, bound, bound + 1}) {
        SCOPED_TRACE("unfinished event of " + std::to_string(held) + " bytes");
        const std::string event = padded_usage_event(held);
        ASSERT_EQ(event.size(), held + 1);
        ASSERT_TRUE(addons::usage_chunk_filter::is_usage_only(event));
        std::vector<std::string> seen;
        addons::usage_chunk_filter filter([&seen](std::string_view e) { seen.emplace_back(e); });
        std::string out;
        filter.on_data(chunk1, out);
        filter.on_data(std::string_view(event).substr(0, held), out);
        if (held <= bound) {
            EXPECT_EQ(out, chunk1) << "an unfinished event up to the bound is held";
        } else {
            EXPECT_EQ(out.size(), chunk1.size() + held) << "past the bound it goes on at once";
            EXPECT_TRUE(out == chunk1 + event.substr(0, held));
        }
        filter.on_data("\n", out);
        // The filter is in step again: a usage-only chunk is dropped, the rest passes.
        filter.on_data(usage_chunk + chunk2 + done, out);
        filter.on_end(out);
        const std::string expected =
            held <= bound ? chunk1 + chunk2 + done : chunk1 + event + chunk2 + done;
        EXPECT_EQ(out.size(), expected.size());
        EXPECT_TRUE(out == expected) << "byte-exact output";
        // The parser saw every byte, in order.
        std::string all_seen;
        for (const auto& s : seen) {
            all_seen += s;
        }
        EXPECT_TRUE(all_seen == chunk1 + event + usage_chunk + chunk2 + done);
        EXPECT_EQ(seen.back(), done);
    }
}

// Past the bound, the rest of the overlong event passes as it comes up to its blank line, even
// when a read ends in the middle of one of its lines.
// (The scan for its end once started each piece as if at the start of a line: a "\n" first in
// a piece was taken for the blank line, and the event's second data line, a usage-only chunk,
// was dropped.)
TEST(LlmUsageFilter, OverlongEventSplitInsideALinePassesWhole) {
    const std::string first = "data: " + std::string(addons::usage_chunk_filter::max_pending, 'x');
    // The event goes on with a second data line that alone would be a usage-only chunk.
    const std::string rest = "\n" + usage_chunk;
    addons::usage_chunk_filter filter([](std::string_view) {});
    std::string out;
    filter.on_data(first, out);
    EXPECT_EQ(out.size(), first.size()) << "past the bound the held bytes go on";
    filter.on_data(rest, out);
    filter.on_data(usage_chunk + done, out);
    filter.on_end(out);
    const std::string expected = first + rest + done;
    EXPECT_EQ(out.size(), expected.size());
    EXPECT_TRUE(out == expected) << "a line of the overlong event was filtered out";
}

// An overlong event with CRLF lines, its end fed in pieces of every size from 1 to 9 bytes, so
// that a piece ends between each CR and its LF, and between the blank line's CR and LF.
TEST(LlmUsageFilter, OverlongCrlfEventEndsWhereverThePiecesSplitIt) {
    const std::string crlf_usage = usage_chunk.substr(0, usage_chunk.size() - 2) + "\r\n\r\n";
    const std::string crlf_chunk2 = chunk2.substr(0, chunk2.size() - 2) + "\r\n\r\n";
    const std::string head =
        "data: " + std::string(addons::usage_chunk_filter::max_pending, 'x') + "\r";
    // The overlong event goes on with a line that alone would be a usage-only chunk; a
    // usage-only chunk of its own follows.
    const std::string tail = "\n" + crlf_usage + crlf_usage + crlf_chunk2 + "\r\n";
    for (std::size_t piece = 1; piece <= 9; ++piece) {
        SCOPED_TRACE("pieces of " + std::to_string(piece) + " bytes");
        std::string seen;
        addons::usage_chunk_filter filter([&seen](std::string_view e) { seen.append(e); });
        std::string out;
        filter.on_data(head, out);
        for (std::size_t at = 0; at < tail.size(); at += piece) {
            filter.on_data(std::string_view(tail).substr(at, piece), out);
        }
        filter.on_end(out);
        // The overlong event whole, the usage-only chunk dropped, the rest as sent.
        const std::string expected = head + "\n" + crlf_usage + crlf_chunk2 + "\r\n";
        EXPECT_EQ(out.size(), expected.size());
        EXPECT_TRUE(out == expected);
        EXPECT_TRUE(seen == head + tail) << "the parser saw every byte, in order";
    }
}

// An overlong event whose held bytes end with the CR of its blank line: the event ends there,
// and the LF that follows in the next piece belongs to it.
TEST(LlmUsageFilter, OverlongEventEndingWithACrAtTheBound) {
    const std::string head =
        "data: " + std::string(addons::usage_chunk_filter::max_pending, 'x') + "\r\n\r";
    std::string seen;
    addons::usage_chunk_filter filter([&seen](std::string_view e) { seen.append(e); });
    std::string out;
    filter.on_data(head, out);
    EXPECT_TRUE(out == head);
    filter.on_data("\n" + usage_chunk + chunk2, out);
    filter.on_end(out);
    EXPECT_TRUE(out == head + "\n" + chunk2) << "the usage-only chunk after it is dropped";
    EXPECT_TRUE(seen == head + "\n" + usage_chunk + chunk2);
}

TEST(LlmUsageFilter, CrlfEventsAndAnUnfinishedTailPass) {
    std::string crlf_usage = usage_chunk.substr(0, usage_chunk.size() - 2) + "\r\n\r\n";
    std::string body = "data: {\"choices\":[{\"index\":0,\"delta\":{}}]}\r\n\r\n" + crlf_usage +
                       "data: [DONE]";  // no blank line at the end
    std::vector<std::string> seen;
    EXPECT_EQ(run_filter(body, 3, seen),
              "data: {\"choices\":[{\"index\":0,\"delta\":{}}]}\r\n\r\ndata: [DONE]");
    EXPECT_EQ(seen.size(), 3u);
}

TEST(LlmUsageFilter, AChunkWithChoicesAndUsageStays) {
    EXPECT_FALSE(addons::usage_chunk_filter::is_usage_only(chunk2));
    EXPECT_TRUE(addons::usage_chunk_filter::is_usage_only(usage_chunk));
    EXPECT_FALSE(
        addons::usage_chunk_filter::is_usage_only("data: {\"usage\": 5, \"choices\": []}\n\n"));
    EXPECT_FALSE(addons::usage_chunk_filter::is_usage_only("data: not json \"usage\"\n\n"));
}

TEST(LlmInjectUsage, InsertsStreamOptionsKeepingEveryOtherByte) {
    std::string body =
        R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"\u00e9"}]})";
    auto changed = addons::with_usage_requested(body);
    ASSERT_TRUE(changed);
    EXPECT_EQ(
        *changed,
        R"({"stream_options":{"include_usage":true},"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"\u00e9"}]})");
    auto j = json::parse(*changed);
    EXPECT_TRUE(j["stream_options"]["include_usage"].get<bool>());
}

TEST(LlmInjectUsage, LeavesAloneWhatNeedsNoChange) {
    EXPECT_FALSE(addons::with_usage_requested(R"({"model":"m","messages":[]})"));
    EXPECT_FALSE(addons::with_usage_requested(R"({"stream":false})"));
    EXPECT_FALSE(
        addons::with_usage_requested(R"({"stream":true,"stream_options":{"include_usage":true}})"));
    EXPECT_FALSE(addons::with_usage_requested("not json"));
    EXPECT_FALSE(addons::with_usage_requested(R"({"stream":true,"stream_options":5})"));
    auto changed =
        addons::with_usage_requested(R"({"stream":true,"stream_options":{"include_usage":false}})");
    ASSERT_TRUE(changed);
    EXPECT_TRUE(json::parse(*changed)["stream_options"]["include_usage"].get<bool>());
}

namespace {
llm::summary sample_summary() {
    llm::summary s;
    s.call.provider = llm::provider::anthropic;
    s.call.api = llm::api::messages;
    s.call.request_model = "claude-sonnet-4-0";
    s.call.response_model = "claude-sonnet-4-20250514";
    s.call.stream = true;
    s.call.usage.input_tokens = 1200;
    s.call.usage.output_tokens = 85;
    s.call.usage.cache_read_tokens = 1024;
    llm::answer a;
    a.content = "Hello \"there\"";
    a.reasoning = "thinking...";
    a.finish_reason = "tool_use";
    llm::tool_call t;
    t.id = "toolu_1";
    t.name = "get_weather";
    t.arguments = R"({"city":"Paris"})";
    a.tool_calls.push_back(t);
    s.call.answers.push_back(a);
    s.cost_usd = llm::cost{*llm::money::parse("0.000134"), *llm::money::parse("0.000051"),
                           *llm::money::parse("0.000185")};
    s.priced_as = "claude-sonnet-4";
    s.first_token_ms = 312;
    return s;
}
}  // namespace

TEST(LlmRecordJson, RoundTripsEveryField) {
    auto s = sample_summary();
    auto j = llm::to_json(s);
    EXPECT_EQ(j["provider"], "anthropic");
    EXPECT_EQ(j["api"], "messages");
    EXPECT_EQ(j["usage"]["input_tokens"], 1200);
    EXPECT_FALSE(j["usage"].contains("reasoning_tokens")) << "not reported: left out, not 0";
    EXPECT_EQ(j["cost_usd"]["total"].dump(), "0.000185");
    EXPECT_EQ(j["output"]["tool_calls"][0]["function"]["name"], "get_weather");
    EXPECT_EQ(j["finish_reason"], "tool_use");
    EXPECT_EQ(j["first_token_ms"], 312);
    EXPECT_EQ(j["incomplete"], false);
    auto back = llm::summary_from_json(json::parse(j.dump()));
    ASSERT_TRUE(back);
    EXPECT_EQ(llm::to_json(*back), j);
    EXPECT_EQ(back->cost_usd->total, s.cost_usd->total);
}

TEST(LlmRecordJson, UnpricedCallHasNullCost) {
    auto s = sample_summary();
    s.cost_usd.reset();
    auto j = llm::to_json(s);
    EXPECT_TRUE(j["cost_usd"].is_null());
    EXPECT_FALSE(llm::summary_from_json(json::parse(j.dump()))->cost_usd);
    EXPECT_FALSE(llm::summary_from_json(json::object({{"provider", "nope"}})));
}

TEST(LlmLedger, SumsPerModelAndOverall) {
    llm::ledger l;
    auto s = sample_summary();
    l.add(s);
    auto t = l.add(s);
    EXPECT_EQ(t.calls, 2u);
    EXPECT_EQ(t.input_tokens, 2400u);
    EXPECT_EQ(l.spent(), *llm::money::parse("0.00037"));
    s.cost_usd.reset();
    s.call.response_model = "other";
    l.add(s);
    EXPECT_EQ(l.overall().calls, 3u);
    EXPECT_EQ(l.overall().unpriced_calls, 1u);
    EXPECT_EQ(l.by_model().size(), 2u);
    EXPECT_EQ(l.spent(), *llm::money::parse("0.00037"));
}

TEST(LlmLedger, ModelsPastTheBoundAreCountedTogether) {
    llm::ledger l;
    auto s = sample_summary();
    const std::size_t n = llm::ledger::max_models + 5;
    for (std::size_t i = 0; i < n; ++i) {
        s.call.response_model = "model-" + std::to_string(i);
        l.add(s);
    }
    s.call.response_model = "model-0";  // a model seen before the bound keeps its row
    l.add(s);
    auto rows = l.by_model();
    EXPECT_EQ(rows.size(), llm::ledger::max_models + 1);
    EXPECT_EQ(rows[llm::ledger::other_models].calls, 5u);
    EXPECT_EQ(rows["model-0"].calls, 2u);
    EXPECT_EQ(l.overall().calls, n + 1);
}

// max_models at N - 1, N and N + 1 distinct models: the first N each get their own row, the
// one after goes to "(other models)", and the rows still add up to the exact totals.
TEST(LlmLedger, ModelBoundAtItsEdges) {
    llm::ledger l;
    const std::size_t n = llm::ledger::max_models;
    auto call_of = [](std::size_t i) {
        auto s = sample_summary();
        s.call.response_model = "model-" + std::to_string(i);
        s.call.usage.input_tokens = 1000 + i;
        s.call.usage.output_tokens = i;
        s.cost_usd->total = llm::money::from_units(static_cast<llm::money::rep>(i + 1) * 7);
        if (i % 10 == 3) {
            s.cost_usd.reset();  // unpriced
        }
        return s;
    };
    for (std::size_t i = 0; i < n - 1; ++i) {
        l.add(call_of(i));
    }
    auto rows = l.by_model();
    EXPECT_EQ(rows.size(), n - 1);  // N - 1 models: a row each
    EXPECT_FALSE(rows.count(llm::ledger::other_models));
    auto t = l.add(call_of(n - 1));  // the N-th model still gets its own row
    EXPECT_EQ(t.calls, 1u);
    EXPECT_EQ(t.input_tokens, 1000 + n - 1);
    rows = l.by_model();
    EXPECT_EQ(rows.size(), n);
    EXPECT_EQ(rows.count("model-" + std::to_string(n - 1)), 1u);
    EXPECT_FALSE(rows.count(llm::ledger::other_models));
    t = l.add(call_of(n));  // model N + 1 goes to the shared row
    EXPECT_EQ(t.calls, 1u);
    EXPECT_EQ(t.input_tokens, 1000 + n);
    rows = l.by_model();
    EXPECT_EQ(rows.size(), n + 1);
    EXPECT_FALSE(rows.count("model-" + std::to_string(n)));
    ASSERT_TRUE(rows.count(llm::ledger::other_models));
    EXPECT_EQ(rows[llm::ledger::other_models].output_tokens, n);
    t = l.add(call_of(n + 1));  // and so does the next
    EXPECT_EQ(t.calls, 2u);
    EXPECT_EQ(l.by_model().size(), n + 1);

    // Totals stay exact: overall equals the expected sums and the sum of the rows.
    llm::totals want;
    for (std::size_t i = 0; i <= n + 1; ++i) {
        want.add(call_of(i));
    }
    llm::totals sum;
    for (const auto& [model, row] : l.by_model()) {
        sum.calls += row.calls;
        sum.input_tokens += row.input_tokens;
        sum.output_tokens += row.output_tokens;
        sum.unpriced_calls += row.unpriced_calls;
        sum.cost += row.cost;
    }
    const auto overall = l.overall();
    EXPECT_EQ(overall.calls, n + 2);
    for (const llm::totals* got : {&overall, static_cast<const llm::totals*>(&sum)}) {
        EXPECT_EQ(got->calls, want.calls);
        EXPECT_EQ(got->input_tokens, want.input_tokens);
        EXPECT_EQ(got->output_tokens, want.output_tokens);
        EXPECT_EQ(got->unpriced_calls, want.unpriced_calls);
        EXPECT_EQ(got->cost, want.cost);
    }
    EXPECT_EQ(l.spent(), want.cost);
}

namespace {
// Captures what spdlog's default logger writes while it exists.
class warn_capture {
  public:
    warn_capture()
        : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096)),
          previous_(spdlog::default_logger()) {
        auto logger = std::make_shared<spdlog::logger>("capture", sink_);
        logger->set_level(spdlog::level::warn);
        logger->set_pattern("%l %v");
        spdlog::set_default_logger(logger);
    }
    ~warn_capture() { spdlog::set_default_logger(previous_); }
    warn_capture(const warn_capture&) = delete;
    warn_capture& operator=(const warn_capture&) = delete;

    std::vector<std::string> lines() { return sink_->last_formatted(); }

  private:
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
    std::shared_ptr<spdlog::logger> previous_;
};

// One finished OpenAI chat call answered by `model`, with usage, through the observer.
void observe_call(addon_chain& chain, const std::string& model) {
    auto f = test::make_flow("POST", "https://api.openai.com/v1/chat/completions",
                             {{"Content-Type", "application/json"}},
                             R"({"model":")" + model + R"(","messages":[]})");
    json answer = {
        {"id", "chatcmpl-1"},
        {"object", "chat.completion"},
        {"model", model},
        {"choices",
         {{{"index", 0},
           {"message", {{"role", "assistant"}, {"content", "hi"}}},
           {"finish_reason", "stop"}}}},
        {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 1}, {"total_tokens", 4}}}};
    test::simulate(chain, f, {200, "OK", 11, {{"Content-Type", "application/json"}}},
                   {answer.dump()});
    ASSERT_TRUE(f.llm);
    EXPECT_FALSE(f.llm->cost_usd) << model;
}
}  // namespace

// The unpriced models warned about are bounded at 1,000 names: the 999th and 1,000th are
// named (the 1,000th with the last word), the 1,001st and a repeat are not.
TEST(LlmObserver, UnpricedModelWarningsStopAtTheBound) {
    addons::llm_observer_options options;
    options.prices = std::make_shared<const llm::price_table>(llm::price_table::builtin());
    auto observer = std::make_shared<addons::llm_observer>(options);
    addon_chain chain;
    chain.add(observer);
    warn_capture log;
    const std::string prefix = "warning no price is known for model '";
    auto name = [](int i) { return "zz-unpriced-" + std::to_string(i); };
    for (int i = 1; i <= 999; ++i) {
        observe_call(chain, name(i));
    }
    observe_call(chain, name(5));  // warned once only
    auto lines = log.lines();
    ASSERT_EQ(lines.size(), 999u);
    EXPECT_EQ(lines[998], prefix + name(999) + "': its calls are recorded with cost null\n");
    observe_call(chain, name(1000));
    lines = log.lines();
    ASSERT_EQ(lines.size(), 1000u);
    EXPECT_EQ(lines[999], prefix + name(1000) +
                              "': its calls are recorded with cost null (further unpriced "
                              "models are not named)\n");
    observe_call(chain, name(1001));
    observe_call(chain, name(1002));
    observe_call(chain, name(1));
    EXPECT_EQ(log.lines().size(), 1000u);
}

// --- max_decoded_body at its bound --------------------------------------------------------------
// A compressed answer is decoded up to options.max_decoded_body decoded bytes: N-1 and N give
// the whole call, N+1 stops decoding and marks the call incomplete. The decoded size counts,
// not the wire size; an uncompressed body is not decoded and so not bounded.
namespace {

// Content that needs no JSON escaping and does not repeat.
std::string padding(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; s.size() < n; ++i) {
        s += std::to_string(i) + "-";
    }
    s.resize(n);
    return s;
}

json chat_answer(const std::string& content) {
    return {{"id", "chatcmpl-1"},
            {"object", "chat.completion"},
            {"model", "gpt-4o-mini"},
            {"choices",
             {{{"index", 0},
               {"message", {{"role", "assistant"}, {"content", content}}},
               {"finish_reason", "stop"}}}},
            {"usage", {{"prompt_tokens", 9}, {"completion_tokens", 2}, {"total_tokens", 11}}}};
}

std::string sse_answer(const std::string& content) {
    json first = {
        {"id", "c1"},
        {"object", "chat.completion.chunk"},
        {"model", "gpt-4o-mini"},
        {"choices",
         {{{"index", 0}, {"delta", {{"content", content}}}, {"finish_reason", nullptr}}}}};
    return "data: " + first.dump() + "\n\n" + chunk2 + usage_chunk + done;
}

// An answer (JSON or SSE) exactly `size` bytes long before any coding, and its content.
std::pair<std::string, std::string> answer_of_size(bool stream, std::size_t size) {
    auto make = [stream](const std::string& c) {
        return stream ? sse_answer(c) : chat_answer(c).dump();
    };
    const std::size_t base = make("").size();
    EXPECT_GT(size, base);
    std::string content = padding(size - base);
    std::string body = make(content);
    EXPECT_EQ(body.size(), size);
    return {body, content};
}

// Runs one OpenAI chat call through an llm_observer with `max_decoded` as its bound: the
// response (`wire`, sent with `coding` as Content-Encoding unless empty) is handed over in
// pieces of `piece` bytes.
std::shared_ptr<const llm::summary> observe_answer(std::size_t max_decoded, bool stream,
                                                   const std::string& coding,
                                                   const std::string& wire, std::size_t piece) {
    addons::llm_observer_options options;
    options.max_decoded_body = max_decoded;
    addons::llm_observer observer(options);
    const std::string request = stream ? R"({"model":"gpt-4o-mini","stream":true,)"
                                         R"("stream_options":{"include_usage":true},"messages":[]})"
                                       : R"({"model":"gpt-4o-mini","messages":[]})";
    auto f = test::make_flow("POST", "https://api.openai.com/v1/chat/completions",
                             {{"Content-Type", "application/json"}}, request);
    observer.on_request_headers(f);
    EXPECT_TRUE(observer.endpoint_of(f));
    header_list headers = {{"Content-Type", stream ? "text/event-stream" : "application/json"}};
    if (!coding.empty()) {
        headers.emplace_back("Content-Encoding", coding);
    }
    f.response = response_head{200, "OK", 11, headers};
    test::run_hook(observer.on_response_headers(f));
    for (std::size_t pos = 0; pos < wire.size(); pos += piece) {
        observer.on_response_body(f, std::string_view(wire).substr(pos, piece));
    }
    observer.on_response_end(f);
    return f.llm;
}

void expect_whole_call(const std::shared_ptr<const llm::summary>& s, const std::string& content) {
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->call.incomplete);
    EXPECT_EQ(s->call.usage.input_tokens, 9u);
    EXPECT_EQ(s->call.usage.output_tokens, 2u);
    ASSERT_EQ(s->call.answers.size(), 1u);
    EXPECT_EQ(s->call.answers[0].content, content);
    EXPECT_EQ(s->call.answers[0].finish_reason, "stop");
}

}  // namespace

TEST(LlmObserver, DecodedBodyLimitAtItsBound) {
    // 4096: the whole body is one decoder write; 40000: the bound falls in the third write of
    // the decoder's 16 KiB buffer.
    for (std::size_t limit : {std::size_t{4096}, std::size_t{40000}}) {
        for (bool stream : {false, true}) {
            for (const char* coding : {"gzip", "deflate", "br", "zstd", "gzip, br"}) {
                for (std::size_t size : {limit - 1, limit, limit + 1}) {
                    for (std::size_t piece : {std::size_t{1} << 30, std::size_t{7}}) {
                        SCOPED_TRACE(std::string(stream ? "SSE" : "JSON") + ", " + coding +
                                     ", limit " + std::to_string(limit) + ", " +
                                     std::to_string(size) + " decoded bytes, pieces of " +
                                     std::to_string(piece));
                        auto [body, content] = answer_of_size(stream, size);
                        std::string wire = body;
                        std::string_view rest = coding;  // applied in the order listed
                        while (!rest.empty()) {
                            std::size_t comma = rest.find(',');
                            wire = record::encode_body(rest.substr(0, comma), wire);
                            rest = comma == std::string_view::npos ? std::string_view()
                                                                   : rest.substr(comma + 1);
                        }
                        ASSERT_LT(wire.size(), limit);  // the wire size is not what counts
                        auto s = observe_answer(limit, stream, coding, wire, piece);
                        if (size <= limit) {
                            expect_whole_call(s, content);
                        } else {
                            ASSERT_TRUE(s);
                            EXPECT_TRUE(s->call.incomplete);
                        }
                    }
                }
            }
        }
    }
}

TEST(LlmObserver, DecodedBodyLimitLeavesAnUncompressedBodyAlone) {
    const std::size_t limit = 4096;
    for (bool stream : {false, true}) {
        for (const char* coding : {"", "identity"}) {
            for (std::size_t size : {limit - 1, limit, limit + 1, 4 * limit}) {
                SCOPED_TRACE(std::string(stream ? "SSE" : "JSON") + ", coding \"" + coding +
                             "\", " + std::to_string(size) + " bytes");
                auto [body, content] = answer_of_size(stream, size);
                expect_whole_call(observe_answer(limit, stream, coding, body, 1000), content);
            }
        }
    }
}

// A zstd-compressed answer whose decoded size is a whole number of the stream decoder's 16 KiB
// buffers (16,384 bytes here) is complete: the decoder's zstd stage once took a frame that
// ended on a full buffer for an unfinished one, and the call was marked incomplete.
TEST(LlmObserver, ZstdAnswerOfAWholeDecoderBufferIsCompleteAtItsBound) {
    for (bool stream : {false, true}) {
        for (std::size_t size : {16383u, 16384u, 16385u}) {
            SCOPED_TRACE(std::string(stream ? "SSE, " : "JSON, ") + std::to_string(size) +
                         " decoded bytes");
            auto [body, content] = answer_of_size(stream, size);
            expect_whole_call(observe_answer(256u << 20, stream, "zstd",
                                             record::encode_body("zstd", body), 1u << 30),
                              content);
        }
    }
}

TEST(LlmRecordReader, TimestampsParseAsUtc) {
    using namespace std::chrono;
    auto t = llm::parse_timestamp("2026-11-27T05:23:07.123456Z");
    ASSERT_TRUE(t);
    EXPECT_EQ(duration_cast<microseconds>(t->time_since_epoch()).count() % 1000000, 123456);
    EXPECT_EQ(llm::parse_timestamp("2026-11-27T07:23:07.123456+02:00"), t);
    auto day = llm::parse_timestamp("2026-11-27");
    ASSERT_TRUE(day);
    EXPECT_EQ(floor<days>(*t), *day);
    EXPECT_FALSE(llm::parse_timestamp("2026-13-01"));
    EXPECT_FALSE(llm::parse_timestamp("yesterday"));
    EXPECT_FALSE(llm::parse_timestamp("2026-11-27T05:23"));
}

TEST(LlmRecordReader, ReadsTheLlmObjectOfARecord) {
    json record = {
        {"object_type", "llm_proxy_traffic_log"},
        {"schema", "v2"},
        {"timestamp", "2026-11-27T05:23:07.123456Z"},
        {"connection_stats", {{"duration_ms", 840}}},
        {"request", {{"method", "POST"}, {"url", "https://api.anthropic.com/v1/messages"}}},
        {"response", {{"status", 200}}},
        {"llm", llm::to_json(sample_summary())}};
    auto row = llm::read_record(record, {});
    ASSERT_TRUE(row);
    EXPECT_EQ(row->host, "api.anthropic.com");
    EXPECT_EQ(row->day, "2026-11-27");
    EXPECT_EQ(row->status, 200u);
    EXPECT_EQ(row->duration_ms, 840);
    ASSERT_TRUE(row->llm);
    EXPECT_FALSE(row->computed);
    EXPECT_EQ(row->llm->call.usage.output_tokens, 85u);
    EXPECT_FALSE(llm::read_record(json::object({{"foo", 1}}), {}));
}

TEST(LlmRecordReader, ComputesTheLlmObjectOfAGoToolRecord) {
    // As the original Go tool writes them: Go's RFC 3339 time with nanoseconds and the local
    // offset, header values as lists, decoded bodies, no llm object.
    json record = json::parse(R"({
      "object_type": "llm_proxy_traffic_log", "schema": "v2",
      "timestamp": "2024-05-14T22:04:05.123456789-07:00",
      "connection_stats": {"client_address": "127.0.0.1:50412",
                           "url": "https://api.openai.com/v1/chat/completions",
                           "duration_ms": 431, "proxy_id": "0b7a3c1e"},
      "request": {"method": "POST", "url": "https://api.openai.com/v1/chat/completions",
                  "proto": "HTTP/1.1", "header": {"Content-Type": ["application/json"]},
                  "body": "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"},
      "response": {"status": 200, "header": {"Content-Type": ["application/json"]},
                   "body": "{\"id\":\"chatcmpl-9\",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello!\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}"}
    })");
    llm::read_options options;
    options.prices = &llm::price_table::builtin();
    auto row = llm::read_record(record, options);
    ASSERT_TRUE(row);
    EXPECT_EQ(row->day, "2024-05-15") << "05-14 22:04 at -07:00 is 05-15 in UTC";
    EXPECT_EQ(row->host, "api.openai.com");
    EXPECT_EQ(row->duration_ms, 431);
    ASSERT_TRUE(row->llm);
    EXPECT_TRUE(row->computed);
    EXPECT_EQ(row->llm->call.request_model, "gpt-4o-mini");
    EXPECT_EQ(row->llm->call.response_model, "gpt-4o-mini-2024-07-18");
    EXPECT_EQ(row->llm->call.usage.input_tokens, 9u);
    EXPECT_EQ(row->llm->call.usage.output_tokens, 2u);
    ASSERT_EQ(row->llm->call.answers.size(), 1u);
    EXPECT_EQ(row->llm->call.answers[0].content, "Hello!");
    EXPECT_TRUE(row->llm->cost_usd) << "priced with the built-in table";
}

TEST(LlmReport, GroupsTotalsAndPercentiles) {
    llm::report rep(llm::group_by::model);
    llm::record_row row;
    row.status = 200;
    row.llm = sample_summary();
    for (int i = 1; i <= 10; ++i) {
        row.duration_ms = i * 100;
        rep.add(row);
    }
    llm::record_row failed;
    failed.error_kind = "upstream_reset";
    rep.add(failed);
    ASSERT_EQ(rep.groups().size(), 2u);
    const auto& g = rep.groups().at("claude-sonnet-4-20250514");
    EXPECT_EQ(g.requests, 10u);
    EXPECT_EQ(g.llm.input_tokens, 12000u);
    EXPECT_EQ(g.llm.cost, *llm::money::parse("0.00185"));
    EXPECT_EQ(rep.total().requests, 11u);
    EXPECT_EQ(rep.total().errors, 1u);
    auto j = json::parse(rep.json());
    EXPECT_EQ(j["total"]["cost_usd"].dump(), "0.00185");
    ASSERT_EQ(j["groups"].size(), 2u);
    EXPECT_EQ(j["groups"][0]["key"], "(not an LLM call)");
    const auto& model = j["groups"][1];
    EXPECT_EQ(model["key"], "claude-sonnet-4-20250514");
    EXPECT_EQ(model["latency_ms_p50"], 500);
    EXPECT_EQ(model["latency_ms_p95"], 1000);
    EXPECT_TRUE(j["groups"][0]["latency_ms_p50"].is_null()) << "no duration was recorded";
    auto csv = rep.csv();
    EXPECT_NE(csv.find("claude-sonnet-4-20250514,10,0,10,12000,10240,850,0,0.00185,"),
              std::string::npos)
        << csv;
    EXPECT_NE(rep.table().find("total"), std::string::npos);
}

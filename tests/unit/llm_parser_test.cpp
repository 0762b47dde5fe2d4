#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <cstdlib>

#include "llm/json_access.hpp"
#include "llm_proxy/llm/parser.hpp"
#include "llm_proxy/llm/recognise.hpp"
#include "llm_proxy/llm/sse.hpp"

using namespace llm_proxy;

namespace {

llm::endpoint endpoint_for(const char* host, const char* target) {
    auto e = llm::recognise(host, target, "POST");
    EXPECT_TRUE(e.has_value()) << host << target;
    return e.value_or(llm::endpoint{});
}

// Reassembles `body` fed in pieces of `piece` bytes (0: whole).
llm::call parse(const llm::endpoint& e, std::string_view request, std::string_view body,
                std::size_t piece = 0, bool complete = true, llm::parser_limits limits = {}) {
    llm::response_parser p(e, llm::read_request(e, request), limits);
    if (piece == 0) {
        p.feed(body);
    } else {
        for (std::size_t at = 0; at < body.size(); at += piece) {
            p.feed(body.substr(at, piece));
        }
    }
    return p.finish(complete);
}

// The same result for every way of cutting the body.
llm::call parse_all_ways(const llm::endpoint& e, std::string_view request, std::string_view body) {
    llm::call whole = parse(e, request, body);
    for (std::size_t piece : {1, 2, 3, 5, 64}) {
        llm::call cut = parse(e, request, body, piece);
        SCOPED_TRACE(piece);
        EXPECT_EQ(cut.answers.size(), whole.answers.size());
        for (std::size_t i = 0; i < std::min(cut.answers.size(), whole.answers.size()); ++i) {
            EXPECT_EQ(cut.answers[i].content, whole.answers[i].content);
            EXPECT_EQ(cut.answers[i].reasoning, whole.answers[i].reasoning);
            EXPECT_EQ(cut.answers[i].finish_reason, whole.answers[i].finish_reason);
            EXPECT_EQ(cut.answers[i].tool_calls.size(), whole.answers[i].tool_calls.size());
        }
        EXPECT_EQ(cut.usage.input_tokens, whole.usage.input_tokens);
        EXPECT_EQ(cut.usage.output_tokens, whole.usage.output_tokens);
        EXPECT_EQ(cut.incomplete, whole.incomplete);
    }
    return whole;
}

std::string sse(std::initializer_list<std::string_view> datas, std::string_view eol = "\n") {
    std::string out;
    for (auto d : datas) {
        out += "data: ";
        out += d;
        out += eol;
        out += eol;
    }
    return out;
}

}  // namespace

// --- SSE decoding -------------------------------------------------------------------------

TEST(LlmParser, TakeMovesTheFinishedCallOut) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    llm::response_parser p(e, llm::read_request(e, R"({"model":"gpt-4o"})"));
    p.feed(R"({"id":"c1","model":"gpt-4o-2024","choices":[{"index":0,"message":)"
           R"({"role":"assistant","content":"Hi there"},"finish_reason":"stop"}]})");
    EXPECT_EQ(p.finish(true).answers.size(), 1u);
    llm::call c = p.take();
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, "Hi there");
    EXPECT_EQ(c.response_model, "gpt-4o-2024");
    EXPECT_EQ(c.request_model, "gpt-4o");
    EXPECT_FALSE(c.incomplete);
}

// Small documents are parsed with the AVX2 kernel where simdjson would pick AVX-512, unless
// SIMDJSON_FORCE_IMPLEMENTATION says otherwise; elsewhere simdjson's own choice stands.
TEST(LlmParser, SmallDocumentKernelChoice) {
    llm::json_access::thread_parser::get();
    const auto& available = simdjson::get_available_implementations();
    std::string best = available.detect_best_supported()->name();
    std::string active = simdjson::get_active_implementation()->name();
    const char* forced = std::getenv("SIMDJSON_FORCE_IMPLEMENTATION");
    if (forced != nullptr && *forced != '\0') {
        EXPECT_EQ(active, forced);
    } else if (best == "icelake") {
        EXPECT_EQ(active, "haswell");
    } else {
        EXPECT_EQ(active, best);
    }
    std::string text = R"({"a":[1,2,{"b":"c"}]})";
    auto doc = llm::json_access::thread_parser::get().parse(text);
    ASSERT_TRUE(doc);
    EXPECT_EQ(llm::json_access::dump(*doc), text);
}

TEST(LlmSse, FollowsTheEventStreamRules) {
    std::vector<std::pair<std::string, std::string>> events;
    llm::sse_decoder d([&](std::string_view ev, std::string_view data) {
        events.emplace_back(std::string(ev), std::string(data));
    });
    d.feed("\xEF\xBB\xBF: comment\r\nevent: a\r\ndata: one\r\ndata:two\r\nid: 7\r\n\r\n");
    d.feed("data\n\ndata: x\rdata: y\r\r");
    d.feed("event: empty\n\n");    // no data: not dispatched
    d.feed("data: unfinished\n");  // the stream ends before the blank line
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0], std::make_pair(std::string("a"), std::string("one\ntwo")));
    EXPECT_EQ(events[1], std::make_pair(std::string("message"), std::string("")));
    EXPECT_EQ(events[2], std::make_pair(std::string("message"), std::string("x\ny")));
}

TEST(LlmSse, CrLfSplitAcrossPiecesIsOneLineEnd) {
    std::vector<std::string> datas;
    llm::sse_decoder d([&](std::string_view, std::string_view data) { datas.emplace_back(data); });
    std::string_view stream = "data: a\r\n\r\ndata: b\r\n\r\n";
    for (char ch : stream) {
        d.feed(std::string_view(&ch, 1));
    }
    EXPECT_EQ(datas, (std::vector<std::string>{"a", "b"}));
}

TEST(LlmSse, BomSplitAcrossPieces) {
    std::vector<std::string> datas;
    llm::sse_decoder d([&](std::string_view, std::string_view data) { datas.emplace_back(data); });
    d.feed("\xEF");
    d.feed("\xBB");
    d.feed(
        "\xBF"
        "data: a\n\n");
    EXPECT_EQ(datas, (std::vector<std::string>{"a"}));
}

TEST(LlmSse, OversizedEventsAreDroppedNotBuffered) {
    std::vector<std::string> datas;
    llm::sse_decoder d([&](std::string_view, std::string_view data) { datas.emplace_back(data); },
                       16);
    d.feed("data: 0123456789");
    d.feed("0123456789\n\ndata: ok\n\n");
    d.feed("data: 0123456789\ndata: 0123456789\n\ndata: ok2\n\n");
    EXPECT_EQ(datas, (std::vector<std::string>{"ok", "ok2"}));
    EXPECT_EQ(d.dropped_events(), 2u);
    EXPECT_LE(d.buffered_bytes(), 16u);
}

// --- OpenAI chat --------------------------------------------------------------------------

TEST(LlmParser, OpenAiChatSeveralChoicesWithInterleavedToolCallFragments) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    std::string body = sse({
        R"({"id":"c1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}},{"index":1,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_c","type":"function","function":{"name":"get_time","arguments":""}}]}}]})",
        R"({"id":"c1","model":"gpt-4o-2024-08-06","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"tz\":"}}]}},{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]})",
        R"({"id":"c1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}]}},{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"UTC\"}"}}]}}]})",
        R"({"id":"c1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"Rome\"}"}}]},"finish_reason":"tool_calls"}]})",
        R"({"id":"c1","model":"gpt-4o-2024-08-06","choices":[{"index":1,"delta":{},"finish_reason":"tool_calls"}]})",
        R"({"id":"c1","model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":40,"total_tokens":90,"prompt_tokens_details":{"cached_tokens":10,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}}})",
        "[DONE]",
    });
    auto c = parse_all_ways(
        e, R"({"model":"gpt-4o","stream":true,"n":2,"stream_options":{"include_usage":true}})",
        body);
    EXPECT_EQ(c.request_model, "gpt-4o");
    EXPECT_EQ(c.response_model, "gpt-4o-2024-08-06");
    EXPECT_EQ(c.response_id, "c1");
    EXPECT_TRUE(c.stream);
    EXPECT_FALSE(c.incomplete);
    ASSERT_EQ(c.answers.size(), 2u);
    ASSERT_EQ(c.answers[0].tool_calls.size(), 2u);
    EXPECT_EQ(c.answers[0].tool_calls[0].id, "call_a");
    EXPECT_EQ(c.answers[0].tool_calls[0].name, "get_weather");
    EXPECT_EQ(c.answers[0].tool_calls[0].arguments, R"({"city":"Paris"})");
    EXPECT_EQ(c.answers[0].tool_calls[1].id, "call_b");
    EXPECT_EQ(c.answers[0].tool_calls[1].arguments, R"({"city":"Rome"})");
    EXPECT_EQ(c.answers[0].content, std::nullopt);
    EXPECT_EQ(c.answers[0].finish_reason, "tool_calls");
    ASSERT_EQ(c.answers[1].tool_calls.size(), 1u);
    EXPECT_EQ(c.answers[1].tool_calls[0].id, "call_c");
    EXPECT_EQ(c.answers[1].tool_calls[0].name, "get_time");
    EXPECT_EQ(c.answers[1].tool_calls[0].arguments, R"({"tz":"UTC"})");
    EXPECT_EQ(c.answers[1].finish_reason, "tool_calls");
    EXPECT_EQ(c.usage.input_tokens, 50u);
    EXPECT_EQ(c.usage.output_tokens, 40u);
    EXPECT_EQ(c.usage.cache_read_tokens, 10u);
    EXPECT_EQ(c.usage.reasoning_tokens, 0u);
    EXPECT_EQ(c.usage.input_audio_tokens, 0u);
    EXPECT_EQ(c.usage.cache_write_tokens, std::nullopt);
}

TEST(LlmParser, CrLfStreamSplitInsideUtf8) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    // "Grüße 👋" cut inside ü and inside the emoji, every line ending in CRLF.
    std::string body = sse(
        {
            R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})",
            R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"Grüße "}}]})",
            R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"👋"},"finish_reason":"stop"}]})",
            "[DONE]",
        },
        "\r\n");
    auto c = parse_all_ways(e, R"({"model":"m","stream":true})", body);
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, "Grüße 👋");
    EXPECT_EQ(c.answers[0].finish_reason, "stop");
    EXPECT_FALSE(c.incomplete);
    EXPECT_TRUE(c.usage.empty());  // include_usage was not asked for
}

TEST(LlmParser, InterruptedStreamKeepsWhatArrived) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    std::string body = sse({
        R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"Hello"}}]})",
        R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"content":" wor"}}]})",
    });
    body += R"(data: {"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"ld"}}]})";
    for (bool complete : {false, true}) {
        auto c = parse(e, "{}", body, 7, complete);
        ASSERT_EQ(c.answers.size(), 1u);
        EXPECT_EQ(c.answers[0].content, "Hello wor");  // the unfinished event is not used
        EXPECT_EQ(c.answers[0].finish_reason, std::nullopt);
        EXPECT_TRUE(c.incomplete);  // no [DONE]
    }
    // A truncated non-streamed body.
    auto c =
        parse(e, "{}", R"({"id":"x","choices":[{"index":0,"message":{"content":"Hel)", 0, false);
    EXPECT_TRUE(c.incomplete);
    EXPECT_TRUE(c.answers.empty());
}

TEST(LlmParser, OpenAiChatNonStreamedWithLegacyFunctionCallAndReasoningContent) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    auto c = parse_all_ways(
        e, R"({"model":"gpt-3.5-turbo"})",
        R"({"id":"c","model":"gpt-3.5-turbo-0613","choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"thinking","function_call":{"name":"f","arguments":"{\"a\":1}"}},"finish_reason":"function_call"}],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}})");
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, std::nullopt);
    EXPECT_EQ(c.answers[0].reasoning, "thinking");
    ASSERT_EQ(c.answers[0].tool_calls.size(), 1u);
    EXPECT_EQ(c.answers[0].tool_calls[0].name, "f");
    EXPECT_EQ(c.answers[0].tool_calls[0].arguments, R"({"a":1})");
    EXPECT_EQ(c.answers[0].finish_reason, "function_call");
    EXPECT_EQ(c.usage.input_tokens, 5u);
    EXPECT_EQ(c.usage.output_tokens, 6u);
    EXPECT_EQ(c.usage.cache_read_tokens, std::nullopt);
    EXPECT_FALSE(c.incomplete);
}

TEST(LlmParser, LegacyCompletions) {
    auto e = endpoint_for("api.openai.com", "/v1/completions");
    auto c = parse_all_ways(
        e, R"({"model":"gpt-3.5-turbo-instruct","prompt":"Say","n":2})",
        R"({"id":"cmpl-1","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[{"text":"\n\nHi","index":0,"logprobs":null,"finish_reason":"stop"},{"text":"Hello","index":1,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":4,"total_tokens":5}})");
    ASSERT_EQ(c.answers.size(), 2u);
    EXPECT_EQ(c.answers[0].content, "\n\nHi");
    EXPECT_EQ(c.answers[1].content, "Hello");
    EXPECT_EQ(c.answers[1].finish_reason, "length");
    EXPECT_EQ(c.usage.output_tokens, 4u);

    std::string body = sse({
        R"({"id":"cmpl-2","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[{"text":"One","index":0,"finish_reason":null}]})",
        R"({"id":"cmpl-2","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[{"text":", two","index":0,"finish_reason":"stop"}]})",
        R"({"id":"cmpl-2","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})",
        "[DONE]",
    });
    c = parse_all_ways(e, R"({"model":"gpt-3.5-turbo-instruct","stream":true})", body);
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, "One, two");
    EXPECT_EQ(c.answers[0].finish_reason, "stop");
    EXPECT_EQ(c.usage.input_tokens, 3u);
    EXPECT_TRUE(c.stream);
    EXPECT_FALSE(c.incomplete);
}

TEST(LlmParser, Embeddings) {
    auto e = endpoint_for("api.openai.com", "/v1/embeddings");
    auto c = parse_all_ways(
        e, R"({"model":"text-embedding-3-small","input":"hello"})",
        R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}})");
    EXPECT_TRUE(c.answers.empty());
    EXPECT_EQ(c.response_model, "text-embedding-3-small");
    EXPECT_EQ(c.usage.input_tokens, 2u);
    EXPECT_EQ(c.usage.output_tokens, std::nullopt);
    EXPECT_FALSE(c.incomplete);
}

TEST(LlmParser, ErrorBodies) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    auto c = parse(
        e, R"({"model":"m","stream":true})",
        R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})");
    EXPECT_EQ(c.error, "Incorrect API key provided");
    EXPECT_FALSE(c.incomplete);
    EXPECT_TRUE(c.stream);

    auto a = endpoint_for("api.anthropic.com", "/v1/messages");
    c = parse(a, "{}",
              "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
              "\"message\":\"Overloaded\"}}\n\n");
    EXPECT_EQ(c.error, "Overloaded");
    EXPECT_FALSE(c.incomplete);

    auto g = endpoint_for("generativelanguage.googleapis.com",
                          "/v1beta/models/gemini-2.0-flash:streamGenerateContent");
    c = parse(
        g, "{}",
        R"([{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}])",
        3);
    EXPECT_EQ(c.error, "Resource has been exhausted");
}

// --- Anthropic ----------------------------------------------------------------------------

TEST(LlmParser, AnthropicCumulativeUsageIsAssignedNotSummed) {
    auto e = endpoint_for("api.anthropic.com", "/v1/messages");
    std::string body =
        "event: message_start\n"
        R"(data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":200,"cache_read_input_tokens":3000,"cache_creation":{"ephemeral_5m_input_tokens":150,"ephemeral_1h_input_tokens":50},"output_tokens":1}}})"
        "\n\n"
        "event: content_block_start\n"
        R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}})"
        "\n\n"
        R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think."}})"
        "\n\n"
        R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig1"}})"
        "\n\n"
        R"(data: {"type":"content_block_stop","index":0})"
        "\n\n"
        R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})"
        "\n\n"
        R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}})"
        "\n\n"
        R"(data: {"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":5}})"
        "\n\n"
        R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" there"}})"
        "\n\n"
        R"(data: {"type":"content_block_stop","index":1})"
        "\n\n"
        R"(data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"ping","input":{}}})"
        "\n\n"
        R"(data: {"type":"content_block_stop","index":2})"
        "\n\n"
        R"(data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":10,"cache_creation_input_tokens":200,"cache_read_input_tokens":3000,"output_tokens":42}})"
        "\n\n"
        "event: message_stop\n"
        R"(data: {"type":"message_stop"})"
        "\n\n";
    auto c = parse_all_ways(e, R"({"model":"claude-sonnet-4-5","stream":true})", body);
    EXPECT_EQ(c.request_model, "claude-sonnet-4-5");
    EXPECT_EQ(c.response_model, "claude-sonnet-4-5-20250929");
    EXPECT_EQ(c.response_id, "msg_1");
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, "Hi there");
    EXPECT_EQ(c.answers[0].reasoning, "Let me think.");
    EXPECT_EQ(c.answers[0].finish_reason, "tool_use");
    ASSERT_EQ(c.answers[0].tool_calls.size(), 1u);
    EXPECT_EQ(c.answers[0].tool_calls[0].id, "toolu_1");
    EXPECT_EQ(c.answers[0].tool_calls[0].type, "function");
    EXPECT_EQ(c.answers[0].tool_calls[0].arguments, "{}");
    EXPECT_EQ(c.usage.input_tokens, 3210u);
    EXPECT_EQ(c.usage.output_tokens, 42u);
    EXPECT_EQ(c.usage.cache_read_tokens, 3000u);
    EXPECT_EQ(c.usage.cache_write_tokens, 200u);
    EXPECT_EQ(c.usage.cache_write_1h_tokens, 50u);
    EXPECT_FALSE(c.incomplete);
}

TEST(LlmParser, AnthropicNonStreamedKeepsToolInputKeyOrder) {
    auto e = endpoint_for("api.anthropic.com", "/v1/messages");
    auto c = parse_all_ways(
        e, R"({"model":"claude-opus-4-1"})",
        R"({"id":"msg_2","type":"message","role":"assistant","model":"claude-opus-4-1-20250805","content":[{"type":"text","text":"Sure. "},{"type":"tool_use","id":"toolu_2","name":"book","input":{"zeta":1,"alpha":"ü","nested":{"b":[1,2],"a":null}}},{"type":"text","text":"Done."}],"stop_reason":"tool_use","usage":{"input_tokens":7,"output_tokens":9}})");
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, "Sure. Done.");
    ASSERT_EQ(c.answers[0].tool_calls.size(), 1u);
    EXPECT_EQ(c.answers[0].tool_calls[0].arguments,
              R"({"zeta":1,"alpha":"ü","nested":{"b":[1,2],"a":null}})");
    EXPECT_EQ(c.usage.input_tokens, 7u);
    EXPECT_EQ(c.usage.cache_read_tokens, std::nullopt);
    EXPECT_EQ(c.usage.cache_write_tokens, std::nullopt);
}

// --- OpenAI Responses ---------------------------------------------------------------------

TEST(LlmParser, ResponsesStreamWithFunctionCallAndReasoning) {
    auto e = endpoint_for("api.openai.com", "/v1/responses");
    std::string body =
        "event: response.created\n"
        R"(data: {"type":"response.created","response":{"id":"resp_1","model":"o4-mini-2025-04-16","status":"in_progress","usage":null}})"
        "\n\n"
        R"(data: {"type":"response.output_item.added","output_index":0,"item":{"type":"reasoning","id":"rs_1","summary":[]}})"
        "\n\n"
        R"(data: {"type":"response.reasoning_summary_text.delta","output_index":0,"summary_index":0,"delta":"**Plan**"})"
        "\n\n"
        R"(data: {"type":"response.output_item.added","output_index":1,"item":{"type":"message","id":"m_1","content":[]}})"
        "\n\n"
        R"(data: {"type":"response.content_part.added","output_index":1,"content_index":0,"part":{"type":"output_text","text":""}})"
        "\n\n"
        R"(data: {"type":"response.output_text.delta","output_index":1,"content_index":0,"delta":"Checking"})"
        "\n\n"
        R"(data: {"type":"response.output_item.added","output_index":2,"item":{"type":"function_call","id":"fc_1","call_id":"call_9","name":"lookup","arguments":""}})"
        "\n\n"
        R"(data: {"type":"response.function_call_arguments.delta","output_index":2,"item_id":"fc_1","delta":"{\"q\":"})"
        "\n\n"
        R"(data: {"type":"response.function_call_arguments.delta","output_index":2,"item_id":"fc_1","delta":"1}"})"
        "\n\n"
        R"(data: {"type":"response.completed","response":{"id":"resp_1","model":"o4-mini-2025-04-16","status":"completed","usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":0},"output_tokens":20,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":50}}})"
        "\n\n";
    auto c = parse_all_ways(e, R"({"model":"o4-mini","stream":true})", body);
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, "Checking");
    EXPECT_EQ(c.answers[0].reasoning, "**Plan**");
    EXPECT_EQ(c.answers[0].finish_reason, "completed");
    ASSERT_EQ(c.answers[0].tool_calls.size(), 1u);
    EXPECT_EQ(c.answers[0].tool_calls[0].id, "call_9");
    EXPECT_EQ(c.answers[0].tool_calls[0].name, "lookup");
    EXPECT_EQ(c.answers[0].tool_calls[0].arguments, R"({"q":1})");
    EXPECT_EQ(c.usage.input_tokens, 30u);
    EXPECT_EQ(c.usage.output_tokens, 20u);
    EXPECT_EQ(c.usage.reasoning_tokens, 12u);
    EXPECT_EQ(c.usage.cache_read_tokens, 0u);
    EXPECT_EQ(c.response_model, "o4-mini-2025-04-16");
    EXPECT_FALSE(c.incomplete);

    // Cut before response.completed: what arrived, marked incomplete, no final status.
    auto cut = parse(e, R"({"model":"o4-mini","stream":true})",
                     body.substr(0, body.find("data: {\"type\":\"response.completed\"")), 4, true);
    EXPECT_TRUE(cut.incomplete);
    ASSERT_EQ(cut.answers.size(), 1u);
    EXPECT_EQ(cut.answers[0].finish_reason, std::nullopt);
    EXPECT_EQ(cut.answers[0].tool_calls.at(0).arguments, R"({"q":1})");
    EXPECT_TRUE(cut.usage.empty());
}

// --- Gemini -------------------------------------------------------------------------------

namespace {

const char* gemini_chunk_1 =
    R"({"candidates":[{"content":{"parts":[{"text":"Let me see.","thought":true},{"text":"The answer"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":2,"thoughtsTokenCount":30,"totalTokenCount":44},"modelVersion":"gemini-2.5-flash","responseId":"r1"})";
const char* gemini_chunk_2 =
    R"({"candidates":[{"content":{"parts":[{"text":" is 4."},{"functionCall":{"name":"record","args":{"value":4,"unit":"n"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":9,"thoughtsTokenCount":30,"cachedContentTokenCount":8,"toolUsePromptTokenCount":3,"totalTokenCount":54},"modelVersion":"gemini-2.5-flash","responseId":"r1"})";

void expect_gemini_answer(const llm::call& c) {
    EXPECT_EQ(c.provider, llm::provider::google);
    EXPECT_EQ(c.request_model, "gemini-2.5-flash");
    EXPECT_EQ(c.response_model, "gemini-2.5-flash");
    EXPECT_EQ(c.response_id, "r1");
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, "The answer is 4.");
    EXPECT_EQ(c.answers[0].reasoning, "Let me see.");
    EXPECT_EQ(c.answers[0].finish_reason, "STOP");
    ASSERT_EQ(c.answers[0].tool_calls.size(), 1u);
    EXPECT_EQ(c.answers[0].tool_calls[0].name, "record");
    EXPECT_EQ(c.answers[0].tool_calls[0].arguments, R"({"value":4,"unit":"n"})");
    // Usage is cumulative per chunk: the last one counts.
    EXPECT_EQ(c.usage.input_tokens, 15u);   // prompt + tool-use prompt
    EXPECT_EQ(c.usage.output_tokens, 39u);  // candidates + thoughts
    EXPECT_EQ(c.usage.reasoning_tokens, 30u);
    EXPECT_EQ(c.usage.cache_read_tokens, 8u);
    EXPECT_FALSE(c.incomplete);
}

}  // namespace

TEST(LlmParser, GeminiStreamedSse) {
    auto e = endpoint_for("generativelanguage.googleapis.com",
                          "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    std::string body = sse({gemini_chunk_1, gemini_chunk_2}, "\r\n");
    auto c = parse_all_ways(e, R"({"contents":[]})", body);
    EXPECT_TRUE(c.stream);
    expect_gemini_answer(c);

    auto cut = parse(e, "{}", sse({gemini_chunk_1}), 5, false);
    EXPECT_TRUE(cut.incomplete);
    EXPECT_EQ(cut.answers.at(0).content, "The answer");
    EXPECT_EQ(cut.usage.output_tokens, 32u);
}

TEST(LlmParser, GeminiStreamedJsonArray) {
    auto e = endpoint_for("generativelanguage.googleapis.com",
                          "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    std::string body = std::string("[") + gemini_chunk_1 + ",\r\n" + gemini_chunk_2 + "]";
    auto c = parse_all_ways(e, "{}", body);
    EXPECT_TRUE(c.stream);
    expect_gemini_answer(c);

    auto cut = parse(e, "{}", body.substr(0, body.size() - 1), 9, true);
    EXPECT_TRUE(cut.incomplete);  // the array never closed
}

TEST(LlmParser, GeminiNonStreamed) {
    auto e = endpoint_for("generativelanguage.googleapis.com",
                          "/v1beta/models/gemini-2.5-flash:generateContent");
    auto c = parse_all_ways(
        e, "{}",
        R"({"candidates":[{"content":{"parts":[{"text":"Let me see.","thought":true},{"text":"The answer is 4."},{"functionCall":{"name":"record","args":{"value":4,"unit":"n"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":9,"thoughtsTokenCount":30,"cachedContentTokenCount":8,"toolUsePromptTokenCount":3},"modelVersion":"gemini-2.5-flash","responseId":"r1"})");
    EXPECT_FALSE(c.stream);
    expect_gemini_answer(c);
}

// --- bounds and cost ----------------------------------------------------------------------

TEST(LlmParser, TextIsCappedAtTheLimitOnACharacterBoundary) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    llm::parser_limits limits;
    limits.max_text = 10;
    std::string body = sse({
        R"({"choices":[{"index":0,"delta":{"content":"abcdefgh"}}]})",
        R"({"choices":[{"index":0,"delta":{"content":"éé"}}]})",
        R"({"choices":[{"index":0,"delta":{"content":"more"},"finish_reason":"stop"}]})",
        "[DONE]",
    });
    auto c = parse(e, "{}", body, 3, true, limits);
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, "abcdefghé");
    EXPECT_TRUE(c.answers[0].truncated);
    EXPECT_EQ(c.answers[0].finish_reason, "stop");
}

TEST(LlmParser, JsonBodyBeyondTheLimitIsGivenUp) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    llm::parser_limits limits;
    limits.max_json_body = 64;
    std::string body = R"({"choices":[{"index":0,"message":{"content":")" + std::string(200, 'x') +
                       R"("}}],"usage":{"prompt_tokens":1,"completion_tokens":2}})";
    llm::response_parser p(e, {}, limits);
    p.feed(body);
    const auto& c = p.finish(true);
    EXPECT_TRUE(p.gave_up());
    EXPECT_TRUE(c.answers.empty());
    EXPECT_TRUE(c.usage.empty());
    EXPECT_FALSE(c.incomplete);
}

TEST(LlmParser, ManyEventsInPiecesAreAllReassembled) {
    // 40,000 events fed in 1,500-byte pieces that cut events anywhere: every one counts once.
    // (How the time grows with the number of events is a benchmark question, not a test's.)
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    const std::size_t events = 40000;
    std::string body;
    for (std::size_t i = 0; i < events; ++i) {
        body += R"(data: {"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"tok ",)"
                R"("tool_calls":[{"index":0,"function":{"arguments":"ab"}}]}}]})"
                "\n\n";
    }
    body += "data: [DONE]\n\n";
    llm::response_parser p(e, {});
    for (std::size_t at = 0; at < body.size(); at += 1500) {
        p.feed(std::string_view(body).substr(at, 1500));
    }
    const auto& c = p.finish(true);
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content->size(), events * 4);
    ASSERT_EQ(c.answers[0].tool_calls.size(), 1u);
    EXPECT_EQ(c.answers[0].tool_calls[0].arguments.size(), events * 2);
    EXPECT_FALSE(c.incomplete);
}

TEST(LlmParser, DamagedBodiesNeverThrow) {
    struct sample {
        const char* host;
        const char* target;
        std::string body;
    };
    const std::vector<sample> samples = {
        {"api.openai.com", "/v1/chat/completions",
         sse({R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"a","tool_calls":[{"index":3,"id":"c","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}})",
              "[DONE]"})},
        {"api.openai.com", "/v1/responses",
         sse({R"({"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","call_id":"c","name":"f","arguments":""}})",
              R"({"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":1}}})"})},
        {"api.anthropic.com", "/v1/messages",
         sse({R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"n","input":{}}})",
              R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}})",
              R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}})",
              R"({"type":"message_stop"})"})},
        {"generativelanguage.googleapis.com", "/v1beta/models/g:streamGenerateContent",
         std::string("[") + gemini_chunk_1 + "," + gemini_chunk_2 + "]"},
    };
    std::uint32_t seed = 12345;
    auto next = [&] {
        seed = seed * 1664525u + 1013904223u;
        return seed >> 8;
    };
    for (const auto& s : samples) {
        auto e = endpoint_for(s.host, s.target);
        for (std::size_t len = 0; len < s.body.size(); len += 3) {
            auto c = parse(e, "{}", std::string_view(s.body).substr(0, len), 2, false);
            EXPECT_TRUE(c.incomplete);
        }
        for (int round = 0; round < 200; ++round) {
            std::string damaged = s.body;
            for (int flips = 0; flips < 4; ++flips) {
                damaged[next() % damaged.size()] = static_cast<char>(next() & 0xff);
            }
            EXPECT_NO_THROW(parse(e, "{}", damaged, 1 + next() % 50));
        }
    }
}

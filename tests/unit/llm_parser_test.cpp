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

// The unfinished line at its bound (16 here): a line of 15 and 16 bytes (its end not counted)
// is kept, one of 17 drops its event (counted), and the next event is decoded, however the
// stream is cut into pieces and whichever line end it uses.
TEST(LlmSse, LineAtItsBound) {
    for (std::string_view eol : {"\n", "\r\n", "\r"}) {
        const std::string stream =
            "data:" + std::string(11, 'b') + std::string(eol) + std::string(eol) +  // 16 bytes
            "data:" + std::string(12, 'c') + std::string(eol) + std::string(eol) +  // 17 bytes
            "data:" + std::string(10, 'a') + std::string(eol) + std::string(eol) +  // 15 bytes
            "data: ok" + std::string(eol) + std::string(eol);
        for (std::size_t piece :
             {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{16}, std::size_t{17}}) {
            SCOPED_TRACE(::testing::Message() << "eol " << eol.size() << " piece " << piece);
            std::vector<std::string> datas;
            llm::sse_decoder d(
                [&](std::string_view, std::string_view data) { datas.emplace_back(data); }, 16);
            std::size_t most_held = 0;
            if (piece == 0) {
                d.feed(stream);
            } else {
                for (std::size_t at = 0; at < stream.size(); at += piece) {
                    d.feed(std::string_view(stream).substr(at, piece));
                    most_held = std::max(most_held, d.buffered_bytes());
                }
            }
            EXPECT_EQ(datas,
                      (std::vector<std::string>{std::string(11, 'b'), std::string(10, 'a'), "ok"}));
            EXPECT_EQ(d.dropped_events(), 1u);
            EXPECT_LE(most_held, 2 * 16u);  // the line and the data, 16 each
        }
    }
}

// The current event's data at its bound (16 here, counting the \n after each data line): 15
// and 16 bytes are delivered, 17 drops the event (counted), and the next event is decoded.
TEST(LlmSse, EventDataAtItsBound) {
    const std::string stream =
        "data:1234567\ndata:123456\n\n"    // 8 + 7 = 15
        "data:1234567\ndata:1234567\n\n"   // 8 + 8 = 16
        "data:1234567\ndata:12345678\n\n"  // 8 + 9 = 17
        "data:1234567\ndata:1234567\n\n"   // 16 again, right after the dropped one
        "data: ok\n\n";
    for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
        SCOPED_TRACE(piece);
        std::vector<std::string> datas;
        llm::sse_decoder d(
            [&](std::string_view, std::string_view data) { datas.emplace_back(data); }, 16);
        if (piece == 0) {
            d.feed(stream);
        } else {
            for (std::size_t at = 0; at < stream.size(); at += piece) {
                d.feed(std::string_view(stream).substr(at, piece));
                EXPECT_LE(d.buffered_bytes(), 2 * 16u);  // the line and the data, 16 each
            }
        }
        EXPECT_EQ(datas, (std::vector<std::string>{"1234567\n123456", "1234567\n1234567",
                                                   "1234567\n1234567", "ok"}));
        EXPECT_EQ(d.dropped_events(), 1u);
    }
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

// max_text at its edge (10 here): content of 9 and 10 bytes is kept whole, 11 is cut to 10 and
// the answer marked truncated; in one piece or many.
TEST(LlmParser, TextLimitAtItsEdge) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    llm::parser_limits limits;
    limits.max_text = 10;
    for (std::size_t size : {std::size_t{9}, std::size_t{10}, std::size_t{11}}) {
        const std::string text = std::string(size - 1, 'x') + "!";
        const std::string json_body = R"({"choices":[{"index":0,"message":{"content":")" + text +
                                      R"("},"finish_reason":"stop"}]})";
        // Streamed: the text in two events, the second ending at, past or short of the bound.
        const std::string stream_body = sse({
            R"({"choices":[{"index":0,"delta":{"content":")" + text.substr(0, 5) + R"("}}]})",
            R"({"choices":[{"index":0,"delta":{"content":")" + text.substr(5) +
                R"("},"finish_reason":"stop"}]})",
            "[DONE]",
        });
        for (const std::string* body : {&json_body, &stream_body}) {
            for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
                SCOPED_TRACE(::testing::Message() << size << " bytes, piece " << piece << ", "
                                                  << (body == &json_body ? "json" : "sse"));
                auto c = parse(e, "{}", *body, piece, true, limits);
                ASSERT_EQ(c.answers.size(), 1u);
                EXPECT_EQ(c.answers[0].content, text.substr(0, std::min<std::size_t>(size, 10)));
                EXPECT_EQ(c.answers[0].truncated, size > 10);
                EXPECT_EQ(c.answers[0].finish_reason, "stop");
            }
        }
    }
}

// A character straddling max_text (10 here) is dropped whole, never cut: 2-, 3- and 4-byte
// characters ending at the bound are kept, ones crossing it are not, whether the character
// comes in the piece that crosses the bound or in a piece of its own.
TEST(LlmParser, TextLimitDropsACharacterThatStraddlesIt) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    llm::parser_limits limits;
    limits.max_text = 10;
    struct row {
        std::string prefix;
        std::string ch;
        bool fits;
    };
    const std::vector<row> rows = {
        {"abcdefgh", "\xC3\xA9", true},          // é ends at 10
        {"abcdefghi", "\xC3\xA9", false},        // é would be bytes 10 and 11
        {"abcdefg", "\xE2\x82\xAC", true},       // € ends at 10
        {"abcdefgh", "\xE2\x82\xAC", false},     // € crosses by one
        {"abcdefghi", "\xE2\x82\xAC", false},    // € crosses by two
        {"abcdef", "\xF0\x9F\x98\x80", true},    // 😀 ends at 10
        {"abcdefg", "\xF0\x9F\x98\x80", false},  // 😀 crosses by one
        {"abcdefghi", "\xF0\x9F\x98\x80", false},
    };
    for (const auto& r : rows) {
        const std::string want = r.fits ? r.prefix + r.ch : r.prefix;
        // The character at the end of a single piece of text, and in an event of its own.
        const std::string one = sse({
            R"({"choices":[{"index":0,"delta":{"content":")" + r.prefix + r.ch + R"("}}]})",
            "[DONE]",
        });
        const std::string two = sse({
            R"({"choices":[{"index":0,"delta":{"content":")" + r.prefix + R"("}}]})",
            R"({"choices":[{"index":0,"delta":{"content":")" + r.ch + R"("}}]})",
            "[DONE]",
        });
        for (const std::string* body : {&one, &two}) {
            SCOPED_TRACE(::testing::Message() << r.prefix << " + " << r.ch.size() << "-byte char, "
                                              << (body == &one ? "one piece" : "own event"));
            auto c = parse(e, "{}", *body, 1, true, limits);
            ASSERT_EQ(c.answers.size(), 1u);
            EXPECT_EQ(c.answers[0].content, want);
            EXPECT_EQ(c.answers[0].truncated, !r.fits);
        }
    }
}

// max_text counts all the call's text together: reasoning and content filling it exactly are
// whole; one byte more is cut.
TEST(LlmParser, TextLimitCountsEveryFieldTogether) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    llm::parser_limits limits;
    limits.max_text = 10;
    for (std::size_t content : {std::size_t{4}, std::size_t{5}}) {
        const std::string body = sse({
            R"({"choices":[{"index":0,"delta":{"reasoning_content":"thinks"}}]})",
            R"({"choices":[{"index":0,"delta":{"content":")" + std::string(content, 'c') +
                R"("}}]})",
            "[DONE]",
        });
        auto c = parse(e, "{}", body, 0, true, limits);
        ASSERT_EQ(c.answers.size(), 1u);
        EXPECT_EQ(c.answers[0].reasoning, "thinks");
        EXPECT_EQ(c.answers[0].content, std::string(4, 'c'));
        EXPECT_EQ(c.answers[0].truncated, content > 4);
    }
}

// max_answers at its edge (3 here): choice indexes 0 to 2 are kept, 3 and 4 are ignored, streamed
// (where index 3 comes first) and not.
TEST(LlmParser, AnswersAtTheirBound) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    llm::parser_limits limits;
    limits.max_answers = 3;
    std::string choices;
    for (int i : {3, 0, 1, 4, 2}) {
        choices += std::string(choices.empty() ? "" : ",") + R"({"index":)" + std::to_string(i) +
                   R"(,"message":{"content":"c)" + std::to_string(i) + R"("}})";
    }
    auto json_call = parse(e, "{}", R"({"choices":[)" + choices + "]}", 0, true, limits);
    std::string stream_body;
    for (int i : {3, 0, 1, 4, 2}) {
        stream_body += sse({R"({"choices":[{"index":)" + std::to_string(i) +
                            R"(,"delta":{"content":"c)" + std::to_string(i) + R"("}}]})"});
    }
    stream_body += sse({"[DONE]"});
    auto stream_call = parse(e, "{}", stream_body, 0, true, limits);
    for (const auto* c : {&json_call, &stream_call}) {
        ASSERT_EQ(c->answers.size(), 3u);
        for (std::size_t i = 0; i < 3; ++i) {
            EXPECT_EQ(c->answers[i].content, "c" + std::to_string(i));
        }
    }
}

// max_tool_calls at its edge (3 here): the first three tool calls of an answer are kept (and
// still take argument fragments after the bound was reached), a fourth is ignored with its
// fragments.
TEST(LlmParser, ToolCallsAtTheirBound) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    llm::parser_limits limits;
    limits.max_tool_calls = 3;
    auto tool_event = [](int index, std::string_view head, std::string_view args) {
        return R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":)" +
               std::to_string(index) + std::string(head) + R"(,"function":{)" + R"("arguments":")" +
               std::string(args) + R"("}}]}}]})";
    };
    std::string body;
    for (int i = 0; i < 4; ++i) {
        const std::string n = std::to_string(i);
        body += sse({tool_event(i, R"(,"id":"call_)" + n + R"(","type":"function")", "a" + n)});
    }
    body += sse({tool_event(2, "", "+"), tool_event(3, "", "+"), tool_event(0, "", "+"),
                 R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})", "[DONE]"});
    auto c = parse(e, "{}", body, 0, true, limits);
    ASSERT_EQ(c.answers.size(), 1u);
    const auto& calls = c.answers[0].tool_calls;
    ASSERT_EQ(calls.size(), 3u);
    EXPECT_EQ(calls[0].id, "call_0");
    EXPECT_EQ(calls[0].arguments, "a0+");
    EXPECT_EQ(calls[1].id, "call_1");
    EXPECT_EQ(calls[1].arguments, "a1");
    EXPECT_EQ(calls[2].id, "call_2");
    EXPECT_EQ(calls[2].arguments, "a2+");
    EXPECT_EQ(c.answers[0].finish_reason, "tool_calls");
}

// Anthropic content block indexes below 4,096 are used; 4,096 and above are ignored.
TEST(LlmParser, AnthropicBlockIndexAtItsBound) {
    auto e = endpoint_for("api.anthropic.com", "/v1/messages");
    auto block = [](int index, std::string_view text) {
        const std::string i = std::to_string(index);
        return sse({R"({"type":"content_block_start","index":)" + i +
                        R"(,"content_block":{"type":"text","text":""}})",
                    R"({"type":"content_block_delta","index":)" + i +
                        R"(,"delta":{"type":"text_delta","text":")" + std::string(text) + R"("}})",
                    R"({"type":"content_block_stop","index":)" + i + "}"});
    };
    const std::string body =
        sse({R"({"type":"message_start","message":{"id":"m","model":"claude","usage":{"input_tokens":1}}})"}) +
        block(4094, "a") + block(4095, "b") + block(4096, "X") + block(4097, "Y") +
        sse({R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}})",
             R"({"type":"message_stop"})"});
    auto c = parse(e, "{}", body);
    ASSERT_EQ(c.answers.size(), 1u);
    EXPECT_EQ(c.answers[0].content, "ab");
    EXPECT_EQ(c.answers[0].finish_reason, "end_turn");
}

// max_json_body at its edge: a body of exactly the limit is parsed, one byte more is given up.
TEST(LlmParser, JsonBodyAtItsLimit) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    const std::string body =
        R"({"choices":[{"index":0,"message":{"content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":2}})";
    for (std::size_t limit : {body.size() + 1, body.size(), body.size() - 1}) {
        SCOPED_TRACE(limit);
        llm::parser_limits limits;
        limits.max_json_body = limit;
        for (std::size_t piece : {std::size_t{0}, std::size_t{1}}) {
            llm::response_parser p(e, {}, limits);
            if (piece == 0) {
                p.feed(body);
            } else {
                for (char ch : body) {
                    p.feed(std::string_view(&ch, 1));
                }
            }
            const auto& c = p.finish(true);
            EXPECT_EQ(p.gave_up(), limit < body.size());
            EXPECT_EQ(c.answers.size(), limit < body.size() ? 0u : 1u);
        }
    }
}

// max_event at its edge for a stream (the SSE decoder's line and event bound): an event whose
// data line is exactly the limit is parsed, one byte longer is skipped (gave_up()), and the
// events after it are parsed.
TEST(LlmParser, StreamEventAtItsLimit) {
    auto e = endpoint_for("api.openai.com", "/v1/chat/completions");
    auto event = [](std::string_view text) {
        return R"({"choices":[{"index":0,"delta":{"content":")" + std::string(text) + R"("}}]})";
    };
    const std::string at = event("0123456789");
    for (std::size_t limit : {at.size() + 6 + 1, at.size() + 6, at.size() + 6 - 1}) {
        SCOPED_TRACE(limit);  // "data: " + the JSON is the line
        llm::parser_limits limits;
        limits.max_event = limit;
        const std::string body = sse({at, event("!"), "[DONE]"});
        auto c = parse(e, "{}", body, 5, true, limits);
        const bool kept = limit >= at.size() + 6;
        ASSERT_EQ(c.answers.size(), 1u);
        EXPECT_EQ(c.answers[0].content, kept ? "0123456789!" : "!");
        llm::response_parser p(e, {}, limits);
        p.feed(body);
        p.finish(true);
        EXPECT_EQ(p.gave_up(), !kept);
    }
}

// max_event at its edge for a streamed JSON array (Gemini without alt=sse): an element of
// exactly the limit is parsed, one byte longer is skipped (gave_up()), and the element after it
// is parsed, however the body is cut into pieces.
TEST(LlmParser, ArrayElementAtItsLimit) {
    auto e = endpoint_for("generativelanguage.googleapis.com",
                          "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    const std::string big =
        R"({"candidates":[{"content":{"parts":[{"text":"0123456789012345678901234567890123456789"}],"role":"model"},"index":0}]})";
    const std::string small =
        R"({"candidates":[{"content":{"parts":[{"text":"!"}],"role":"model"},"finishReason":"STOP","index":0}]})";
    ASSERT_LT(small.size(), big.size() - 1);
    const std::string body = "[" + big + ",\r\n" + small + "]";
    for (std::size_t limit : {big.size() + 1, big.size(), big.size() - 1}) {
        const bool kept = limit >= big.size();
        for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
            SCOPED_TRACE(::testing::Message() << "limit " << limit << " piece " << piece);
            llm::parser_limits limits;
            limits.max_event = limit;
            llm::response_parser p(e, {}, limits);
            if (piece == 0) {
                p.feed(body);
            } else {
                for (std::size_t at = 0; at < body.size(); at += piece) {
                    p.feed(std::string_view(body).substr(at, piece));
                }
            }
            const auto& c = p.finish(true);
            EXPECT_EQ(p.gave_up(), !kept);
            ASSERT_EQ(c.answers.size(), 1u);
            EXPECT_EQ(c.answers[0].content,
                      kept ? "0123456789012345678901234567890123456789!" : "!");
            EXPECT_EQ(c.answers[0].finish_reason, "STOP");
        }
    }
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

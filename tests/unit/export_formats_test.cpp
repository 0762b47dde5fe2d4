// From each API's request and answer to each export format: chat completions, the Responses
// API and Anthropic messages into OpenAI chat fine-tuning lines, Bedrock Claude lines and the
// provider-neutral line; what does not map is skipped with its reason, never changed.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "llm_proxy/export/check.hpp"
#include "llm_proxy/export/conversation.hpp"
#include "llm_proxy/export/formats.hpp"

using namespace llm_proxy;
using namespace llm_proxy::exporter;
using json = nlohmann::json;

namespace {

conversation read(llm::api api, const json& body) {
    std::string error;
    auto c = read_conversation(api, body.dump(), error);
    EXPECT_TRUE(c.has_value()) << error;
    return c.value_or(conversation{});
}

llm::answer text_answer(std::string text) {
    llm::answer a;
    a.content = std::move(text);
    a.finish_reason = "stop";
    return a;
}

llm::answer tool_answer(std::vector<llm::tool_call> calls, std::optional<std::string> text = {}) {
    llm::answer a;
    a.content = std::move(text);
    a.tool_calls = std::move(calls);
    return a;
}

llm::tool_call call(std::string id, std::string name, std::string args,
                    std::string type = "function") {
    llm::tool_call t;
    t.id = std::move(id);
    t.name = std::move(name);
    t.arguments = std::move(args);
    t.type = std::move(type);
    return t;
}

// The line of an example, parsed; fails the test when the example was skipped or the line
// breaks the format's rules.
json line_of(const example& e, format f) {
    EXPECT_TRUE(e.ok) << e.skipped;
    if (!e.ok) {
        return {};
    }
    std::vector<std::string> problems;
    if (f == format::openai_chat) {
        check_openai_chat_line(e.line, problems);
    } else {
        check_anthropic_line(e.line, problems);
    }
    EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << e.line;
    return json::parse(e.line);
}

const json weather_tool_chat = {
    {"type", "function"},
    {"function",
     {{"name", "get_weather"},
      {"description", "Weather of a city"},
      {"parameters", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}};

}  // namespace

TEST(ExportChat, MultiTurnWithToolCallsAndAnImage) {
    json body = {
        {"model", "gpt-4o-mini"},
        {"messages",
         {{{"role", "system"}, {"content", "You are terse."}},
          {{"role", "user"},
           {"content",
            {{{"type", "text"}, {"text", "Weather where this photo was taken?"}},
             {{"type", "image_url"},
              {"image_url", {{"url", "https://example.com/p.jpg"}, {"detail", "low"}}}}}}},
          {{"role", "assistant"},
           {"content", nullptr},
           {"refusal", nullptr},
           {"tool_calls",
            {{{"id", "call_1"},
              {"type", "function"},
              {"function", {{"name", "get_weather"}, {"arguments", "{\"city\": \"Paris\"}"}}}}}}},
          {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "18C, sunny"}},
          {{"role", "assistant"}, {"content", "It is sunny."}, {"weight", 0}},
          {{"role", "user"}, {"name", "ana"}, {"content", "And tomorrow?"}}}},
        {"tools", {weather_tool_chat}},
        {"parallel_tool_calls", false},
        {"temperature", 0.2}};
    auto c = read(llm::api::chat_completions, body);
    append_answer(c, text_answer("Rain."), llm::provider::openai);
    json j = line_of(to_openai_chat(c), format::openai_chat);
    json expected = {
        {"messages",
         {{{"role", "system"}, {"content", "You are terse."}},
          {{"role", "user"},
           {"content",
            {{{"type", "text"}, {"text", "Weather where this photo was taken?"}},
             {{"type", "image_url"},
              {"image_url", {{"url", "https://example.com/p.jpg"}, {"detail", "low"}}}}}}},
          {{"role", "assistant"},
           {"tool_calls",
            {{{"id", "call_1"},
              {"type", "function"},
              {"function", {{"name", "get_weather"}, {"arguments", "{\"city\": \"Paris\"}"}}}}}}},
          {{"role", "tool"}, {"content", "18C, sunny"}, {"tool_call_id", "call_1"}},
          {{"role", "assistant"}, {"content", "It is sunny."}, {"weight", 0}},
          {{"role", "user"}, {"name", "ana"}, {"content", "And tomorrow?"}},
          {{"role", "assistant"}, {"content", "Rain."}}}},
        {"tools", {weather_tool_chat}},
        {"parallel_tool_calls", false}};
    EXPECT_EQ(j, expected);
    // The key order of the line is the format's: messages, tools, parallel_tool_calls.
    auto e = to_openai_chat(c);
    EXPECT_TRUE(e.line.starts_with("{\"messages\":[{\"role\":\"system\""));
    ASSERT_EQ(e.messages.size(), 7u);
    EXPECT_EQ(
        e.line.substr(e.messages.back().first, e.messages.back().second - e.messages.back().first),
        R"({"role":"assistant","content":"Rain."})");
    // Bedrock's format has no tools, images or tool calls: skipped, with the reason.
    auto b = to_anthropic(c);
    EXPECT_FALSE(b.ok);
    EXPECT_EQ(b.skipped, "tools (the format has no tools)");
}

TEST(ExportChat, AnswerWithToolCallsIsTheLastAssistantMessage) {
    json body = {{"model", "gpt-4o"},
                 {"messages", {{{"role", "user"}, {"content", "Paris and Rome?"}}}},
                 {"tools", {weather_tool_chat}}};
    auto c = read(llm::api::chat_completions, body);
    append_answer(c,
                  tool_answer({call("call_a", "get_weather", "{\"city\":\"Paris\"}"),
                               call("call_b", "get_weather", "{\"city\":\"Rome\"}")}),
                  llm::provider::openai);
    json j = line_of(to_openai_chat(c), format::openai_chat);
    const auto& last = j["messages"].back();
    EXPECT_EQ(last["role"], "assistant");
    EXPECT_FALSE(last.contains("content"));
    ASSERT_EQ(last["tool_calls"].size(), 2u);
    EXPECT_EQ(last["tool_calls"][1]["id"], "call_b");
    EXPECT_EQ(last["tool_calls"][1]["function"]["arguments"], "{\"city\":\"Rome\"}");
}

TEST(ExportChat, WhatDoesNotMapIsSkippedWithItsReason) {
    auto skipped = [](const json& body, llm::answer a = text_answer("ok")) {
        auto c = read(llm::api::chat_completions, body);
        append_answer(c, a, llm::provider::openai);
        auto e = to_openai_chat(c);
        EXPECT_FALSE(e.ok) << e.line;
        return e.skipped;
    };
    json audio = {{"model", "gpt-4o-audio-preview"},
                  {"messages",
                   {{{"role", "user"},
                     {"content",
                      {{{"type", "input_audio"},
                        {"input_audio", {{"data", "AAAA"}, {"format", "wav"}}}}}}}}}};
    EXPECT_EQ(skipped(audio), "unmappable user content: input_audio");
    json function_role = {{"messages", {{{"role", "function"}, {"name", "f"}, {"content", "x"}}}}};
    EXPECT_EQ(skipped(function_role), "unmappable user content: role function");
    json orphan = {{"messages",
                    {{{"role", "user"}, {"content", "hi"}},
                     {{"role", "tool"}, {"tool_call_id", "nope"}, {"content", "42"}}}}};
    EXPECT_EQ(skipped(orphan), "tool result without an earlier call");
    json custom_tool = {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                        {"tools", {{{"type", "custom"}, {"custom", {{"name", "grammar"}}}}}}};
    EXPECT_EQ(skipped(custom_tool), "unmappable tool: custom");
    json several = {{"n", 3}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    EXPECT_EQ(skipped(several), "several choices asked for (n > 1)");
    json weight = {{"messages",
                    {{{"role", "user"}, {"content", "hi"}},
                     {{"role", "assistant"}, {"content", "a"}, {"weight", 2}},
                     {{"role", "user"}, {"content", "b"}}}}};
    EXPECT_EQ(skipped(weight), "weight other than 0 or 1");
    json audio_key = {{"messages",
                       {{{"role", "user"}, {"content", "hi"}},
                        {{"role", "assistant"}, {"audio", {{"id", "audio_1"}}}},
                        {{"role", "user"}, {"content", "b"}}}}};
    EXPECT_EQ(skipped(audio_key), "unmappable assistant content: message audio");
    llm::answer refusal;
    refusal.refusal = "I can't help with that.";
    EXPECT_EQ(skipped({{"messages", {{{"role", "user"}, {"content", "hi"}}}}}, refusal),
              "refusal (the format has no refusal message)");
    EXPECT_EQ(skipped({{"messages", {{{"role", "user"}, {"content", "hi"}}}}}, llm::answer{}),
              "empty answer");
    EXPECT_EQ(skipped({{"model", "gpt-4o"}}), "no messages in the request");
}

TEST(ExportResponses, InputItemsBecomeMessages) {
    json body = {{"model", "gpt-4.1"},
                 {"instructions", "Answer briefly."},
                 {"input",
                  {{{"role", "user"},
                    {"content",
                     {{{"type", "input_text"}, {"text", "Weather in Paris?"}},
                      {{"type", "input_image"},
                       {"image_url", "data:image/png;base64,iVBORw0KGgo="},
                       {"detail", "auto"}}}}},
                   {{"type", "reasoning"},
                    {"id", "rs_1"},
                    {"summary", {{{"type", "summary_text"}, {"text", "Need the tool."}}}}},
                   {{"type", "function_call"},
                    {"call_id", "call_9"},
                    {"name", "get_weather"},
                    {"arguments", "{\"city\":\"Paris\"}"}},
                   {{"type", "function_call_output"}, {"call_id", "call_9"}, {"output", "18C"}}}},
                 {"tools",
                  {{{"type", "function"},
                    {"name", "get_weather"},
                    {"description", "Weather"},
                    {"parameters", {{"type", "object"}}},
                    {"strict", true}}}}};
    auto c = read(llm::api::responses, body);
    append_answer(c, text_answer("18C in Paris."), llm::provider::openai);
    auto e = to_openai_chat(c);
    json j = line_of(e, format::openai_chat);
    json expected_messages = {
        {{"role", "system"}, {"content", "Answer briefly."}},
        {{"role", "user"},
         {"content",
          {{{"type", "text"}, {"text", "Weather in Paris?"}},
           {{"type", "image_url"},
            {"image_url", {{"url", "data:image/png;base64,iVBORw0KGgo="}, {"detail", "auto"}}}}}}},
        {{"role", "assistant"},
         {"tool_calls",
          {{{"id", "call_9"},
            {"type", "function"},
            {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Paris\"}"}}}}}}},
        {{"role", "tool"}, {"content", "18C"}, {"tool_call_id", "call_9"}},
        {{"role", "assistant"}, {"content", "18C in Paris."}}};
    EXPECT_EQ(j["messages"], expected_messages);
    EXPECT_EQ(j["tools"][0]["function"], json({{"name", "get_weather"},
                                               {"description", "Weather"},
                                               {"parameters", {{"type", "object"}}},
                                               {"strict", true}}));
    ASSERT_EQ(e.notes.size(), 1u);
    EXPECT_EQ(e.notes[0], "reasoning left out");
    // The neutral line keeps the reasoning and the image.
    call_facts facts;
    facts.time = "2026-11-27T05:23:07.123456Z";
    json n = json::parse(to_jsonl(facts, &c));
    EXPECT_EQ(n["messages"][2]["content"][0],
              json({{"type", "reasoning"}, {"text", "Need the tool."}}));
    EXPECT_EQ(n["messages"][1]["content"][1]["type"], "image");
}

TEST(ExportResponses, StringInputAndServerHeldConversations) {
    auto c = read(llm::api::responses, {{"model", "gpt-4.1"}, {"input", "Hi"}});
    append_answer(c, text_answer("Hello!"), llm::provider::openai);
    EXPECT_EQ(line_of(to_anthropic(c), format::anthropic),
              json::parse(R"({"messages":[{"role":"user","content":"Hi"},)"
                          R"({"role":"assistant","content":"Hello!"}]})"));
    auto later =
        read(llm::api::responses,
             {{"model", "gpt-4.1"}, {"input", "And then?"}, {"previous_response_id", "r"}});
    append_answer(later, text_answer("Then."), llm::provider::openai);
    EXPECT_EQ(to_openai_chat(later).skipped,
              "conversation held by the server (previous_response_id)");
    auto web = read(llm::api::responses,
                    {{"input", "news?"}, {"tools", {{{"type", "web_search_preview"}}}}});
    append_answer(web, text_answer("..."), llm::provider::openai);
    EXPECT_EQ(to_openai_chat(web).skipped, "unmappable tool: web_search_preview");
    auto item =
        read(llm::api::responses, {{"input", {{{"type", "item_reference"}, {"id", "msg_1"}}}}});
    append_answer(item, text_answer("..."), llm::provider::openai);
    EXPECT_EQ(to_openai_chat(item).skipped, "unmappable assistant content: item_reference");
}

TEST(ExportAnthropic, MessagesWithToolUseToBothFormats) {
    json body = {
        {"model", "claude-sonnet-4-0"},
        {"max_tokens", 1024},
        {"system",
         {{{"type", "text"}, {"text", "Be brief."}, {"cache_control", {{"type", "ephemeral"}}}}}},
        {"messages",
         {{{"role", "user"},
           {"content",
            {{{"type", "text"}, {"text", "What is in this image?"}},
             {{"type", "image"},
              {"source", {{"type", "base64"}, {"media_type", "image/png"}, {"data", "iVBOR"}}}}}}},
          {{"role", "assistant"},
           {"content",
            {{{"type", "thinking"}, {"thinking", "Look closer."}, {"signature", "sig"}},
             {{"type", "text"}, {"text", "Let me zoom."}},
             {{"type", "tool_use"},
              {"id", "toolu_1"},
              {"name", "zoom"},
              {"input", {{"factor", 2}, {"area", "top"}}}}}}},
          {{"role", "user"},
           {"content",
            {{{"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", "a cat"}},
             {{"type", "text"}, {"text", "So?"}}}}}}},
        {"tools",
         {{{"name", "zoom"}, {"description", "Zoom in"}, {"input_schema", {{"type", "object"}}}}}},
        {"tool_choice", {{"type", "auto"}, {"disable_parallel_tool_use", true}}}};
    auto c = read(llm::api::messages, body);
    append_answer(c, text_answer("A cat."), llm::provider::anthropic);
    auto e = to_openai_chat(c);
    json j = line_of(e, format::openai_chat);
    json expected = {
        {"messages",
         {{{"role", "system"}, {"content", "Be brief."}},
          {{"role", "user"},
           {"content",
            {{{"type", "text"}, {"text", "What is in this image?"}},
             {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,iVBOR"}}}}}}},
          {{"role", "assistant"},
           {"content", "Let me zoom."},
           {"tool_calls",
            {{{"id", "toolu_1"},
              {"type", "function"},
              {"function",
               {{"name", "zoom"}, {"arguments", "{\"area\":\"top\",\"factor\":2}"}}}}}}},
          {{"role", "tool"}, {"content", "a cat"}, {"tool_call_id", "toolu_1"}},
          {{"role", "user"}, {"content", "So?"}},
          {{"role", "assistant"}, {"content", "A cat."}}}},
        {"tools",
         {{{"type", "function"},
           {"function",
            {{"name", "zoom"},
             {"description", "Zoom in"},
             {"parameters", {{"type", "object"}}}}}}}},
        {"parallel_tool_calls", false}};
    EXPECT_EQ(j, expected);
    EXPECT_EQ(e.notes, std::vector<std::string>{"reasoning left out"});
    EXPECT_EQ(to_anthropic(c).skipped, "tools (the format has no tools)");
}

TEST(ExportAnthropic, StreamedToolArgumentsCompareEqualToTheNextRequest) {
    // A streamed answer's arguments are the model's text ("{\"city\": \"Paris\"}"); sent back,
    // the call's input is an object. Both come out as the same compact JSON, so --longest sees
    // the later request extend the earlier one.
    auto first = read(llm::api::messages,
                      {{"messages", {{{"role", "user"}, {"content", "Paris?"}}}},
                       {"tools", {{{"name", "w"}, {"input_schema", {{"type", "object"}}}}}}});
    append_answer(first, tool_answer({call("toolu_2", "w", "{\"city\": \"Paris\"}")}),
                  llm::provider::anthropic);
    auto second =
        read(llm::api::messages,
             {{"messages",
               {{{"role", "user"}, {"content", "Paris?"}},
                {{"role", "assistant"},
                 {"content",
                  {{{"type", "tool_use"},
                    {"id", "toolu_2"},
                    {"name", "w"},
                    {"input", {{"city", "Paris"}}}}}}},
                {{"role", "user"},
                 {"content",
                  {{{"type", "tool_result"}, {"tool_use_id", "toolu_2"}, {"content", "18C"}}}}}}},
              {"tools", {{{"name", "w"}, {"input_schema", {{"type", "object"}}}}}}});
    append_answer(second, text_answer("18C."), llm::provider::anthropic);
    auto a = to_openai_chat(first), b = to_openai_chat(second);
    ASSERT_TRUE(a.ok && b.ok) << a.skipped << b.skipped;
    auto answer =
        a.line.substr(a.messages.back().first, a.messages.back().second - a.messages.back().first);
    auto history = b.line.substr(b.messages[1].first, b.messages[1].second - b.messages[1].first);
    EXPECT_EQ(answer, history);
}

TEST(ExportAnthropic, BedrockRules) {
    auto bedrock = [](const json& body, llm::answer a = text_answer("Sure.")) {
        auto c = read(llm::api::messages, body);
        append_answer(c, a, llm::provider::anthropic);
        return to_anthropic(c);
    };
    auto ok = bedrock(
        {{"system", "Be kind."},
         {"messages",
          {{{"role", "user"}, {"content", "Hi"}},
           {{"role", "assistant"}, {"content", "Hello."}},
           {{"role", "user"},
            {"content",
             {{{"type", "text"}, {"text", "Help"}}, {{"type", "text"}, {"text", " me"}}}}}}}});
    EXPECT_EQ(line_of(ok, format::anthropic),
              json::parse(R"({"system":"Be kind.","messages":[{"role":"user","content":"Hi"},)"
                          R"({"role":"assistant","content":"Hello."},)"
                          R"({"role":"user","content":"Help me"},)"
                          R"({"role":"assistant","content":"Sure."}]})"));
    EXPECT_EQ(ok.notes, std::vector<std::string>{"text parts of a message joined"});
    EXPECT_EQ(
        bedrock({{"messages",
                  {{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}}}})
            .skipped,
        "user and assistant messages do not alternate");
    EXPECT_EQ(bedrock({{"messages", {{{"role", "assistant"}, {"content", "a"}}}}}).skipped,
              "first message is not a user's");
    EXPECT_EQ(bedrock({{"messages",
                        {{{"role", "user"},
                          {"content",
                           {{{"type", "image"},
                             {"source", {{"type", "url"}, {"url", "https://x/y.png"}}}}}}}}}})
                  .skipped,
              "image (the format takes text only)");
    EXPECT_EQ(bedrock({{"messages",
                        {{{"role", "user"},
                          {"content", {{{"type", "document"}, {"source", {{"type", "text"}}}}}}}}}})
                  .skipped,
              "unmappable user content: document");
    // A server tool's call in the answer: Anthropic ran it; no client-side call to train.
    auto server =
        read(llm::api::messages, {{"messages", {{{"role", "user"}, {"content", "news"}}}}});
    append_answer(
        server,
        tool_answer({call("srvtoolu_1", "web_search", "{\"query\":\"news\"}", "server_tool_use")},
                    "Searching."),
        llm::provider::anthropic);
    EXPECT_EQ(to_openai_chat(server).skipped, "unmappable assistant content: server_tool_use");
    // A chat-completions conversation whose system prompt comes later does not map to Bedrock.
    auto chat = read(llm::api::chat_completions, {{"messages",
                                                   {{{"role", "user"}, {"content", "a"}},
                                                    {{"role", "assistant"}, {"content", "b"}},
                                                    {{"role", "system"}, {"content", "c"}},
                                                    {{"role", "user"}, {"content", "d"}}}}});
    append_answer(chat, text_answer("e"), llm::provider::openai);
    EXPECT_EQ(to_anthropic(chat).skipped, "system message inside the conversation");
}

TEST(ExportConversation, BodiesThatAreNotConversations) {
    std::string error;
    EXPECT_FALSE(read_conversation(llm::api::chat_completions, "{\"messages\": [", error));
    EXPECT_EQ(error, "the request body is not a JSON object");
    EXPECT_FALSE(read_conversation(llm::api::embeddings, "{}", error));
    EXPECT_EQ(error, "the embeddings API has no conversation");
}

TEST(ExportJsonl, EveryKeyIsAlwaysThere) {
    llm::summary s;
    s.call.provider = llm::provider::anthropic;
    s.call.api = llm::api::messages;
    s.call.request_model = "claude-sonnet-4-0";
    s.call.response_model = "claude-sonnet-4-20250514";
    s.call.usage.input_tokens = 377;
    s.call.usage.output_tokens = 65;
    s.call.answers.push_back(text_answer("Hi"));
    s.cost_usd = llm::cost{*llm::money::parse("0.001131"), *llm::money::parse("0.000975"),
                           *llm::money::parse("0.002106")};
    s.first_token_ms = 312;
    call_facts f;
    f.time = "2026-11-27T05:23:07.123456Z";
    f.record = "0b7c5d0e";
    f.host = "api.anthropic.com";
    f.status = 200;
    f.latency_ms = 812;
    f.llm = &s;
    auto c = read(llm::api::messages, {{"messages", {{{"role", "user"}, {"content", "Hello"}}}}});
    auto line = to_jsonl(f, &c);
    std::vector<std::string> problems;
    check_jsonl_line(line, problems);
    EXPECT_TRUE(problems.empty()) << problems.front();
    json j = json::parse(line);
    EXPECT_EQ(j["model"], "claude-sonnet-4-20250514");
    EXPECT_EQ(j["usage"]["input_tokens"], 377);
    EXPECT_TRUE(j["usage"]["cache_read_tokens"].is_null());
    EXPECT_EQ(line.find("\"cost_usd\":0.002106,") != std::string::npos, true) << line;
    EXPECT_EQ(j["output"]["content"], "Hi");
    EXPECT_EQ(j["messages"][0]["content"][0]["text"], "Hello");
    // Without a conversation (an embeddings call): messages and tools are null, the keys stay.
    auto none = json::parse(to_jsonl(f, nullptr));
    EXPECT_TRUE(none["messages"].is_null());
    EXPECT_TRUE(none["tools"].is_null());
    EXPECT_EQ(none.size(), j.size());
}

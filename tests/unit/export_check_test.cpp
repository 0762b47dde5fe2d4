// `export --check`: every rule of every format is caught, at its line.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "llm_proxy/export/check.hpp"

using namespace llm_proxy::exporter;
using json = nlohmann::json;

namespace {

// The problems found in `text`, as "LINE: message".
std::vector<std::string> problems(std::string_view text, format f) {
    auto r = check_text(text, f);
    std::vector<std::string> out;
    for (const auto& p : r.problems) {
        out.push_back(std::to_string(p.line) + ": " + p.message);
    }
    return out;
}

// A file whose line `n` is `bad` and whose other lines are `good`; the problems must be
// exactly `expected`, all on line n.
void expect_caught(format f, const std::string& good, const std::string& bad,
                   std::vector<std::string> expected) {
    std::string text = good + "\n" + good + "\n" + bad + "\n" + good + "\n";
    for (auto& e : expected) {
        e = "3: " + e;
    }
    EXPECT_EQ(problems(text, f), expected) << bad;
}

const std::string good_chat =
    R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},)"
    R"({"role":"assistant","content":"Hello."}]})";

const std::string good_tools =
    R"({"messages":[{"role":"user","content":"Paris?"},{"role":"assistant","tool_calls":)"
    R"([{"id":"c1","type":"function","function":{"name":"w","arguments":"{}"}}]},)"
    R"({"role":"tool","tool_call_id":"c1","content":"18C"},{"role":"assistant","content":"18C.",)"
    R"("weight":1}],"tools":[{"type":"function","function":{"name":"w"}}],)"
    R"("parallel_tool_calls":false})";

const std::string good_bedrock =
    R"({"system":"Be brief.","messages":[{"role":"user","content":"Hi"},)"
    R"({"role":"assistant","content":"Hello."}]})";

}  // namespace

TEST(ExportCheck, GoodFilesPass) {
    auto r = check_text(good_chat + "\n" + good_tools + "\n", format::openai_chat);
    EXPECT_EQ(r.problem_count, 0u) << r.problems.front().message;
    EXPECT_EQ(r.items, 2u);
    EXPECT_EQ(check_text(good_bedrock + "\n", format::anthropic).problem_count, 0u);
}

TEST(ExportCheck, OpenAiChatRules) {
    const auto f = format::openai_chat;
    expect_caught(f, good_chat, R"({"messages":[{"role":"user","content":"Hi"})",
                  {"not valid JSON (column 44: syntax error while parsing array - unexpected end "
                   "of input; expected ']')"});
    expect_caught(f, good_chat, R"([1,2])", {"not a JSON object"});
    expect_caught(
        f, good_chat, R"({"prompt":"x","completion":"y"})",
        {"unexpected key \"completion\"", "unexpected key \"prompt\"", "no \"messages\" list"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"bot","content":"Hi"},{"role":"assistant","content":"x"}]})",
        {"messages[0]: role \"bot\" is not one of system, developer, user, assistant, "
         "tool"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":null}]})",
        {"messages[1]: no content and no tool calls"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":""},{"role":"assistant","content":"x"}]})",
        {"messages[0]: no content and no tool calls"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":"Hi"},{"role":"tool","tool_call_id":"c9","content":"1"},{"role":"assistant","content":"x"}]})",
        {"messages[1]: tool message answers call id \"c9\", which no earlier assistant "
         "message made"});
    expect_caught(f, good_chat,
                  R"({"messages":[{"role":"user","content":"Hi"},{"role":"user","content":"x"}]})",
                  {"no assistant message"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"x","weight":3}]})",
        {"messages[1]: weight must be 0 or 1"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":"Hi","weight":1},{"role":"assistant","content":"x"}]})",
        {"messages[0]: weight is allowed on assistant messages only"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":"Hi","audio":{}},{"role":"assistant","content":"x"}]})",
        {"messages[0]: unexpected key \"audio\""});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"w","arguments":{}}}]}]})",
        {"messages[1]: tool_calls[0]: must be {\"id\", \"type\": \"function\", "
         "\"function\": {\"name\", \"arguments\": string}}"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"w","arguments":"{\"city\": \"Par"}}]}]})",
        {"messages[1]: tool_calls[0]: arguments are not JSON"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]})",
        {"messages[1]: content[0]: images are allowed in user messages only"});
    expect_caught(
        f, good_chat,
        R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"x"}],"tools":[{"type":"code_interpreter"}],"parallel_tool_calls":"no"})",
        {"tools[0]: must be {\"type\": \"function\", \"function\": {\"name\": ...}}",
         "\"parallel_tool_calls\" must be true or false"});
    expect_caught(f, good_chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}",
                  {"not valid UTF-8 (byte 40 of the line)"});
}

TEST(ExportCheck, EmptyLinesAndEmptyFiles) {
    EXPECT_EQ(problems(good_chat + "\n\n" + good_chat + "\n", format::openai_chat),
              std::vector<std::string>{"2: empty line"});
    // Trailing blank lines are the end of the file, not a problem.
    EXPECT_TRUE(problems(good_chat + "\n\n\n", format::openai_chat).empty());
    EXPECT_EQ(problems("", format::openai_chat),
              std::vector<std::string>{"1: no examples: the file is empty"});
}

TEST(ExportCheck, BedrockRules) {
    const auto f = format::anthropic;
    expect_caught(
        f, good_bedrock,
        R"({"system":"s","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}],"tools":[]})",
        {"unexpected key \"tools\" (only \"system\" and \"messages\")"});
    expect_caught(
        f, good_bedrock,
        R"({"system":["s"],"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]})",
        {"\"system\" must be a string"});
    expect_caught(f, good_bedrock, R"({"messages":[{"role":"user","content":"a"}]})",
                  {"at least two messages are needed", "the last message must be an assistant's"});
    expect_caught(
        f, good_bedrock,
        R"({"messages":[{"role":"assistant","content":"a"},{"role":"user","content":"b"},{"role":"assistant","content":"c"}]})",
        {"the first message must be a user's"});
    expect_caught(
        f, good_bedrock,
        R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"assistant","content":"c"}]})",
        {"messages[1]: follows another user message: user and assistant must "
         "alternate"});
    expect_caught(
        f, good_bedrock,
        R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":"b"}]})",
        {"messages[0]: content must be a non-empty string"});
    expect_caught(
        f, good_bedrock,
        R"({"messages":[{"role":"user","content":"a","name":"x"},{"role":"assistant","content":"b"}]})",
        {"messages[0]: unexpected key \"name\" (only \"role\" and \"content\")"});
    expect_caught(
        f, good_bedrock,
        R"({"messages":[{"role":"system","content":"a"},{"role":"user","content":"b"},{"role":"assistant","content":"c"}]})",
        {"messages[0]: role must be \"user\" or \"assistant\", not \"system\"",
         "the first message must be a user's"});
}

TEST(ExportCheck, JsonlSchema) {
    json good = {{"time", "2026-11-27T05:23:07.123456Z"},
                 {"record", "r"},
                 {"host", "api.openai.com"},
                 {"provider", "openai"},
                 {"api", "chat_completions"},
                 {"model", "gpt-4o-mini"},
                 {"request_model", "gpt-4o-mini"},
                 {"stream", false},
                 {"status", 200},
                 {"error", nullptr},
                 {"incomplete", false},
                 {"messages",
                  {{{"role", "user"},
                    {"content", {{{"type", "text"}, {"text", "Hi"}}}},
                    {"tool_calls", json::array()},
                    {"tool_call_id", nullptr},
                    {"name", nullptr},
                    {"refusal", nullptr},
                    {"weight", nullptr}}}},
                 {"tools", json::array()},
                 {"parallel_tool_calls", nullptr},
                 {"output",
                  {{"content", "Hello"},
                   {"refusal", nullptr},
                   {"reasoning", nullptr},
                   {"tool_calls", json::array()},
                   {"truncated", false}}},
                 {"choices", 1},
                 {"finish_reason", "stop"},
                 {"usage",
                  {{"input_tokens", 10},
                   {"output_tokens", 2},
                   {"cache_read_tokens", nullptr},
                   {"cache_write_tokens", nullptr},
                   {"reasoning_tokens", nullptr}}},
                 {"cost_usd", 0.0001},
                 {"latency_ms", 812},
                 {"first_token_ms", nullptr}};
    const auto f = format::jsonl;
    EXPECT_TRUE(problems(good.dump() + "\n", f).empty());
    auto bad = good;
    bad.erase("usage");
    bad["status"] = "200";
    bad["extra"] = 1;
    bad["time"] = "yesterday";
    expect_caught(f, good.dump(), bad.dump(),
                  {"\"status\" must be an integer", "missing \"usage\"", "unexpected key \"extra\"",
                   "\"time\" is not an RFC 3339 time"});
    bad = good;
    bad["messages"][0].erase("content");
    bad["output"]["tool_calls"] = nullptr;
    bad["usage"]["input_tokens"] = "10";
    expect_caught(f, good.dump(), bad.dump(),
                  {"messages[0]: missing \"content\"", "output: \"tool_calls\" must be a list",
                   "usage: \"input_tokens\" must be an integer or null"});
}

namespace {

json har_entry(double time, double wait, double receive) {
    return {{"startedDateTime", "2026-11-27T05:23:07.123456Z"},
            {"time", time},
            {"request",
             {{"method", "POST"},
              {"url", "https://api.openai.com/v1/chat/completions?x=1"},
              {"httpVersion", "HTTP/1.1"},
              {"cookies", json::array()},
              {"headers", {{{"name", "Content-Type"}, {"value", "application/json"}}}},
              {"queryString", {{{"name", "x"}, {"value", "1"}}}},
              {"postData", {{"mimeType", "application/json"}, {"text", "{}"}}},
              {"headersSize", -1},
              {"bodySize", 2}}},
            {"response",
             {{"status", 200},
              {"statusText", "OK"},
              {"httpVersion", "HTTP/1.1"},
              {"cookies", json::array()},
              {"headers", json::array()},
              {"content", {{"size", 2}, {"mimeType", "application/json"}, {"text", "{}"}}},
              {"redirectURL", ""},
              {"headersSize", -1},
              {"bodySize", 2}}},
            {"cache", json::object()},
            {"timings",
             {{"blocked", -1},
              {"dns", -1},
              {"connect", -1},
              {"ssl", -1},
              {"send", 0},
              {"wait", wait},
              {"receive", receive}}}};
}

// A HAR with one entry per line, as the export writes it.
std::string har_text(const std::vector<json>& entries) {
    std::string text = R"({"log":{"version":"1.2","creator":{"name":"t","version":"1"},"entries":[)"
                       "\n";
    for (std::size_t i = 0; i < entries.size(); ++i) {
        text += (i ? "," : "") + entries[i].dump() + "\n";
    }
    return text + "]}}\n";
}

}  // namespace

TEST(ExportCheck, HarRules) {
    const auto f = format::har;
    EXPECT_TRUE(problems(har_text({har_entry(812, 312, 500), har_entry(5, 5, 0)}), f).empty());
    auto wrong_time = har_entry(900, 312, 500);
    auto missing = har_entry(1, 1, 0);
    missing["request"].erase("queryString");
    missing["response"]["content"].erase("mimeType");
    missing.erase("cache");
    auto bad_types = har_entry(1, 1, 0);
    bad_types["startedDateTime"] = "yesterday";
    bad_types["request"]["url"] = "not a url";
    bad_types["timings"]["wait"] = -1;
    bad_types["response"]["headers"] = {{{"name", "A"}}};
    EXPECT_EQ(problems(har_text({har_entry(1, 1, 0), wrong_time, missing, bad_types}), f),
              (std::vector<std::string>{
                  "3: entries[1]: time 900 is not the sum of the timings (812)",
                  "4: entries[2].request.queryString: missing",
                  "4: entries[2].response.content.mimeType: missing",
                  "4: entries[2].cache: missing",
                  "5: entries[3].startedDateTime: is not an ISO 8601 date and time",
                  "5: entries[3].request.url: is not an absolute URI",
                  "5: entries[3].response.headers[0].value: missing",
                  "5: entries[3].timings.wait: must not be negative",
                  "5: entries[3]: time 1 is not the sum of the timings (0)",
              }));
    EXPECT_EQ(problems("{\"log\":{\"version\":\"1.2\",\n\"creator\":{}, \"entries\":[]}}", f),
              std::vector<std::string>{"1: log.creator: needs \"name\" and \"version\" strings"});
    EXPECT_EQ(problems("{\"log\":\n{\"version\":1.2,", f).size(), 1u);
    EXPECT_EQ(problems("{\"log\":\n{\"version\":1.2,", f)[0].substr(0, 19), "2: not valid JSON (");
    EXPECT_EQ(problems("{\"log\":\n{\"version\":\"\xc3\x28\"}}", f),
              std::vector<std::string>{"2: not valid UTF-8"});
}

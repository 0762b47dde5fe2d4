// The llm-streams corpus (../shared/data/llm-streams: real responses recorded by the SDKs' test
// suites, with their requests) as records without an llm object, exported to every format:
// each example written follows its format's rules and ends with the answer the SDKs
// reassemble; each example skipped says why, with a reason from the known list.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "llm_proxy/export/check.hpp"
#include "llm_proxy/export/har.hpp"
#include "llm_proxy/export/record_examples.hpp"
#include "llm_proxy/llm/prices.hpp"
#include "llm_proxy/util/text.hpp"

using namespace llm_proxy;
using namespace llm_proxy::exporter;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* missing_case = "corpus_missing";

fs::path corpus_dir() {
    if (const char* env = std::getenv("LLM_PROXY_SHARED_DIR"); env && *env) {
        return fs::path(env) / "data" / "llm-streams";
    }
    return fs::path(LLM_PROXY_SHARED_DIR) / "data" / "llm-streams";
}

std::vector<std::string> corpus_cases() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(corpus_dir(), ec)) {
        if (entry.is_directory() && fs::exists(entry.path() / "meta.json")) {
            names.push_back(entry.path().filename().string());
        }
    }
    std::sort(names.begin(), names.end());
    if (names.empty()) {
        names.push_back(missing_case);  // reported as skipped, never as passed
    }
    return names;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The case as dir_logger would have recorded it before records had an llm object.
std::string record_text(const std::string& name) {
    const auto dir = corpus_dir() / name;
    auto meta = json::parse(slurp(dir / "meta.json"));
    std::string body = slurp(dir / "response.bin");
    json response = {
        {"status", meta.value("status", 200)},
        {"header", {{"Content-Type", {meta.value("content_type", "application/json")}}}}};
    try {
        (void)json(body).dump();  // throws on bytes that are not UTF-8
        response["body"] = body;
    } catch (const json::type_error&) {
        response["body"] = base64_encode(body);
        response["body_encoding"] = "base64";
    }
    json r = {{"object_type", "llm_proxy_traffic_log"},
              {"schema", "v2"},
              {"timestamp", "2026-11-27T05:23:07.123456Z"},
              {"connection_stats", {{"duration_ms", 900}, {"client_address", "127.0.0.1:1"}}},
              {"request",
               {{"method", "POST"},
                {"url", "https://" + meta.value("host", "") + meta.value("path", "")},
                {"proto", "HTTP/1.1"},
                {"header", {{"Content-Type", {"application/json"}}}},
                {"body", slurp(dir / "request.json")}}},
              {"response", response}};
    return r.dump();
}

std::string test_name(const testing::TestParamInfo<std::string>& info) {
    std::string name = info.param;
    for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) {
            ch = '_';
        }
    }
    return name;
}

// Why a corpus example may be skipped: what the formats cannot carry.
bool known_reason(format f, const std::string& why) {
    static const std::vector<std::string> common = {
        "refusal (the format has no refusal message)",
        "unmappable tool: ",
        "unmappable assistant content: ",
        "several choices (n > 1)",
        "the embeddings API has no conversation",
        "conversation held by the server",
        "empty answer",
        "tool call arguments are not JSON",
    };
    static const std::vector<std::string> bedrock = {
        "tools (the format has no tools)",
        "user and assistant messages do not alternate",
        "empty system message",
    };
    auto starts = [&](const std::vector<std::string>& list) {
        return std::any_of(list.begin(), list.end(),
                           [&](const std::string& p) { return why.starts_with(p); });
    };
    return starts(common) || (f == format::anthropic && starts(bedrock));
}

class ExportCorpus : public testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        if (GetParam() == missing_case) {
            GTEST_SKIP() << "the llm-streams corpus is not at " << corpus_dir()
                         << " (set LLM_PROXY_SHARED_DIR to the shared folder)";
        }
        meta_ = json::parse(slurp(corpus_dir() / GetParam() / "meta.json"));
        text_ = record_text(GetParam());
    }

    llm::read_options options() const {
        llm::read_options o;
        o.prices = &llm::price_table::builtin();
        return o;
    }

    json meta_;
    std::string text_;
};

}  // namespace

TEST_P(ExportCorpus, EveryFormat) {
    record_source source(options());
    std::string why;
    const flow_view* f = source.parse(text_, GetParam(), why);
    ASSERT_NE(f, nullptr) << why;
    ASSERT_TRUE(f->llm.has_value());
    ASSERT_TRUE(f->llm_computed);
    const auto& expected = meta_["expected"];
    const auto& compare = meta_["compare"];

    for (format fmt : {format::openai_chat, format::anthropic}) {
        SCOPED_TRACE(to_string(fmt));
        example e = example_of(*f, fmt);
        if (!e.ok) {
            EXPECT_TRUE(known_reason(fmt, e.skipped)) << "skipped: " << e.skipped;
            continue;
        }
        std::vector<std::string> problems;
        fmt == format::openai_chat ? check_openai_chat_line(e.line, problems)
                                   : check_anthropic_line(e.line, problems);
        EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << e.line;
        json j = json::parse(e.line);
        const json& answer = j["messages"].back();
        EXPECT_EQ(answer["role"], "assistant");
        if (compare.value("content", false) && expected["content"].is_string()) {
            EXPECT_EQ(answer.value("content", json("")), expected["content"]);
        }
        if (compare.value("tool_calls", false)) {
            const json calls = answer.value("tool_calls", json::array());
            ASSERT_EQ(calls.size(), expected["tool_calls"].size());
            for (std::size_t i = 0; i < calls.size(); ++i) {
                EXPECT_EQ(calls[i]["id"], expected["tool_calls"][i]["id"]);
                EXPECT_EQ(calls[i]["function"]["name"], expected["tool_calls"][i]["name"]);
                // Anthropic inputs are objects: compact JSON of the same value.
                EXPECT_EQ(json::parse(calls[i]["function"]["arguments"].get<std::string>()),
                          json::parse(expected["tool_calls"][i]["arguments"].get<std::string>()));
                // (an example whose arguments are not JSON is skipped, see known_reason)
            }
        }
    }

    // The neutral line: always written, always in the schema.
    std::string line = jsonl_line_of(*f);
    std::vector<std::string> problems;
    check_jsonl_line(line, problems);
    EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << line.substr(0, 400);
    json j = json::parse(line);
    EXPECT_EQ(j["provider"], expected["provider"]);
    EXPECT_EQ(j["api"], expected["api"]);
    const json usage = expected.value("usage", json::object());
    for (const auto& [k, v] : usage.items()) {
        EXPECT_EQ(j["usage"].value(k, json()), v) << k;
    }

    // A HAR of this one flow.
    std::string har = har_header() + har_entry(*f) + "\n" + har_footer();
    auto r = check_text(har, format::har);
    EXPECT_EQ(r.problem_count, 0u) << r.problems.front().message;
}

INSTANTIATE_TEST_SUITE_P(SharedCorpus, ExportCorpus, testing::ValuesIn(corpus_cases()), test_name);

namespace {

const flow_view* read_case(record_source& source, const std::string& name) {
    std::string why;
    const flow_view* f = source.parse(record_text(name), name, why);
    EXPECT_NE(f, nullptr) << why;
    return f;
}

bool corpus_missing() {
    return corpus_cases().front() == missing_case;
}

}  // namespace

TEST(ExportCorpusCases, AnthropicStreamToBothChatFormats) {
    if (corpus_missing()) {
        GTEST_SKIP() << "the llm-streams corpus is not at " << corpus_dir();
    }
    llm::read_options o;
    record_source source(o);
    const flow_view* basic = read_case(source, "anth-msg-stream-basic");
    ASSERT_TRUE(basic && basic->llm);
    const std::string expected =
        R"({"messages":[{"role":"user","content":"Hello"},{"role":"assistant","content":"Hello there!"}]})";
    EXPECT_EQ(example_of(*basic, format::openai_chat).line, expected);
    EXPECT_EQ(example_of(*basic, format::anthropic).line, expected);

    const flow_view* tool = read_case(source, "anth-msg-stream-tool-use");
    ASSERT_TRUE(tool && tool->llm);
    auto e = example_of(*tool, format::openai_chat);
    ASSERT_TRUE(e.ok) << e.skipped;
    EXPECT_EQ(
        e.line,
        R"({"messages":[{"role":"user","content":"Hello"},{"role":"assistant","content":"I'll check )"
        R"(the current weather in Paris for you.","tool_calls":[{"id":"toolu_01NRLabsLyVHZPKxbKvkfSMn",)"
        R"("type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}}]}],)"
        R"("tools":[{"type":"function","function":{"name":"get_weather","description":"",)"
        R"("parameters":{"type":"object"}}}]})");
    EXPECT_EQ(example_of(*tool, format::anthropic).skipped, "tools (the format has no tools)");
}

TEST(ExportCorpusCases, ResponsesAndChatStreams) {
    if (corpus_missing()) {
        GTEST_SKIP() << "the llm-streams corpus is not at " << corpus_dir();
    }
    llm::read_options o;
    record_source source(o);
    // A streamed Responses call (empty instructions: no system message) answering with a
    // function call, then the next request, which sends the call and its output back.
    const flow_view* resp = read_case(source, "pai-resp-stream-openai-responses-stream");
    ASSERT_TRUE(resp && resp->llm);
    auto e = example_of(*resp, format::openai_chat);
    ASSERT_TRUE(e.ok) << e.skipped;
    json j = json::parse(e.line);
    ASSERT_EQ(j["messages"].size(), 2u);
    EXPECT_EQ(j["messages"][0],
              json({{"role", "user"}, {"content", "What is the capital of France?"}}));
    EXPECT_EQ(j["messages"][1]["tool_calls"][0]["function"]["arguments"],
              "{\"country\":\"France\"}");
    const flow_view* next = read_case(source, "pai-resp-stream-openai-responses-stream-1");
    ASSERT_TRUE(next && next->llm);
    e = example_of(*next, format::openai_chat);
    ASSERT_TRUE(e.ok) << e.skipped;
    j = json::parse(e.line);
    ASSERT_EQ(j["messages"].size(), 4u);
    EXPECT_EQ(j["messages"][1]["tool_calls"][0]["id"],
              "fc_67e554a1de488191af0831d35cbe082e0794405d35281ae2");
    EXPECT_EQ(j["messages"][2],
              json({{"role", "tool"},
                    {"content", "Paris"},
                    {"tool_call_id", "fc_67e554a1de488191af0831d35cbe082e0794405d35281ae2"}}));
    EXPECT_EQ(j["messages"][3]["content"], "The capital of France is Paris.");
    EXPECT_EQ(j["tools"][0]["function"]["strict"], true);
    // A streamed chat call with parallel tool calls.
    const flow_view* chat = read_case(source, "oaipy-chat-stream-parse_multiple_pydantic_tools");
    ASSERT_TRUE(chat && chat->llm);
    e = example_of(*chat, format::openai_chat);
    ASSERT_TRUE(e.ok) << e.skipped;
    j = json::parse(e.line);
    EXPECT_EQ(j["messages"].back()["tool_calls"].size(), 2u);
    EXPECT_EQ(j["tools"].size(), 2u);
}

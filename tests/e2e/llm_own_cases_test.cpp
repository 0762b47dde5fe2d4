// LLM calls the shared corpus lacks, end to end through the real binary: Gemini streamed
// (SSE) and whole, and OpenAI legacy completions. The fake upstream replays answers written
// here (the corpus's replay format in a temp dir); the records' llm objects are checked field
// by field, priced with the built-in table.

#include <fstream>

#include "e2e_fixture.hpp"

namespace llm_proxy::test {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* gemini_chunk_1 =
    R"({"candidates":[{"content":{"parts":[{"text":"Let me see.","thought":true},{"text":"The answer"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":2,"thoughtsTokenCount":30,"totalTokenCount":44},"modelVersion":"gemini-2.5-flash","responseId":"r1"})";
const char* gemini_chunk_2 =
    R"({"candidates":[{"content":{"parts":[{"text":" is 4."},{"functionCall":{"name":"record","args":{"value":4,"unit":"n"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":9,"thoughtsTokenCount":30,"cachedContentTokenCount":8,"toolUsePromptTokenCount":3,"totalTokenCount":54},"modelVersion":"gemini-2.5-flash","responseId":"r1"})";

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

}  // namespace

class LlmOwnCases : public e2e_test {
  protected:
    void SetUp() override {
        auto dir = work_ / "replay";
        add_case(dir, "gemini-stream", "text/event-stream",
                 std::string("data: ") + gemini_chunk_1 + "\r\n\r\ndata: " + gemini_chunk_2 +
                     "\r\n\r\n");
        add_case(dir, "gemini-json", "application/json",
                 std::string(R"({"candidates":[{"content":{"parts":[{"text":"Four."}],)") +
                     R"("role":"model"},"finishReason":"STOP","index":0}],)" +
                     R"("usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2,)" +
                     R"("totalTokenCount":9},"modelVersion":"gemini-2.0-flash-001",)" +
                     R"("responseId":"r2"})");
        add_case(
            dir, "completions-stream", "text/event-stream",
            "data: "
            R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct","choices":[{"text":"Hello","index":0,"logprobs":null,"finish_reason":null}]})"
            "\n\ndata: "
            R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct","choices":[{"text":" there","index":0,"logprobs":null,"finish_reason":"length"}]})"
            "\n\ndata: "
            R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})"
            "\n\ndata: [DONE]\n\n");
        pki_ = make_test_pki(work_ / "pki", {"api.openai.com", "generativelanguage.googleapis.com",
                                             "localhost", "upstream.test"});
        upstream_ = std::make_unique<fake_upstream>(
            pki_, std::vector<std::string>{"--replay-dir", dir.string()});
    }

    static void add_case(const fs::path& dir, const std::string& name, const std::string& type,
                         const std::string& body) {
        fs::create_directories(dir / name);
        write_file(dir / name / "response.bin", body);
        write_file(dir / name / "meta.json", json{{"status", 200}, {"content_type", type}}.dump());
    }

    void start() {
        auto port = std::to_string(upstream_->port());
        start_proxy({"--connect-to", "generativelanguage.googleapis.com:443:127.0.0.1:" + port,
                     "dir_logger", "-o", log_dir().string()});
    }

    json llm_of_only_record() {
        auto records = wait_for_records(1);
        EXPECT_EQ(records.size(), 1u);
        if (records.empty() || !records[0].contains("llm")) {
            ADD_FAILURE() << "no llm object";
            return json::object();
        }
        return records[0]["llm"];
    }
};

TEST_F(LlmOwnCases, GeminiStreamIsReassembledAndPriced) {
    start();
    auto client = proxied_client();
    auto r = client.post(
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-2.5-flash:streamGenerateContent?alt=sse",
        R"({"contents":[{"role":"user","parts":[{"text":"2+2?"}]}]})",
        {{"Content-Type", "application/json"}, {"X-Fake-Replay", "gemini-stream"}});
    ASSERT_EQ(r.status, 200u);
    json llm = llm_of_only_record();
    EXPECT_EQ(llm["provider"], "google");
    EXPECT_EQ(llm["api"], "generate_content");
    EXPECT_EQ(llm["request_model"], "gemini-2.5-flash") << "from the path";
    EXPECT_EQ(llm["response_model"], "gemini-2.5-flash");
    EXPECT_EQ(llm["stream"], true);
    EXPECT_EQ(llm["incomplete"], false);
    EXPECT_EQ(llm["finish_reason"], "STOP");
    // Tool-use prompt tokens are input, thinking tokens are output; the last chunk's usage
    // is the call's (each chunk repeats the running totals).
    EXPECT_EQ(llm["usage"]["input_tokens"], 15);
    EXPECT_EQ(llm["usage"]["output_tokens"], 39);
    EXPECT_EQ(llm["usage"]["reasoning_tokens"], 30);
    EXPECT_EQ(llm["usage"]["cache_read_tokens"], 8);
    EXPECT_EQ(llm["output"]["content"], "The answer is 4.");
    EXPECT_EQ(llm["output"]["reasoning"], "Let me see.");
    ASSERT_EQ(llm["output"]["tool_calls"].size(), 1u);
    EXPECT_EQ(llm["output"]["tool_calls"][0]["function"]["name"], "record");
    EXPECT_EQ(
        json::parse(llm["output"]["tool_calls"][0]["function"]["arguments"].get<std::string>()),
        json::parse(R"({"value":4,"unit":"n"})"));
    ASSERT_TRUE(llm["cost_usd"].is_object()) << llm.dump();
    EXPECT_GT(llm["cost_usd"]["total"].get<double>(), 0.0);
}

TEST_F(LlmOwnCases, GeminiWholeAnswer) {
    start();
    auto client = proxied_client();
    auto r = client.post(
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent",
        R"({"contents":[{"role":"user","parts":[{"text":"2+2?"}]}]})",
        {{"Content-Type", "application/json"}, {"X-Fake-Replay", "gemini-json"}});
    ASSERT_EQ(r.status, 200u);
    json llm = llm_of_only_record();
    EXPECT_EQ(llm["provider"], "google");
    EXPECT_EQ(llm["stream"], false);
    EXPECT_EQ(llm["request_model"], "gemini-2.0-flash");
    EXPECT_EQ(llm["response_model"], "gemini-2.0-flash-001");
    EXPECT_EQ(llm["usage"]["input_tokens"], 7);
    EXPECT_EQ(llm["usage"]["output_tokens"], 2);
    EXPECT_EQ(llm["output"]["content"], "Four.");
    EXPECT_EQ(llm["finish_reason"], "STOP");
    EXPECT_TRUE(llm["cost_usd"].is_object()) << llm.dump();
}

TEST_F(LlmOwnCases, LegacyCompletionsStream) {
    start();
    auto client = proxied_client();
    auto r = client.post(
        "https://api.openai.com/v1/completions",
        R"({"model":"gpt-3.5-turbo-instruct","prompt":"Say hi","stream":true,)"
        R"("stream_options":{"include_usage":true}})",
        {{"Content-Type", "application/json"}, {"X-Fake-Replay", "completions-stream"}});
    ASSERT_EQ(r.status, 200u);
    json llm = llm_of_only_record();
    EXPECT_EQ(llm["provider"], "openai");
    EXPECT_EQ(llm["api"], "completions");
    EXPECT_EQ(llm["stream"], true);
    EXPECT_EQ(llm["output"]["content"], "Hello there");
    EXPECT_EQ(llm["finish_reason"], "length");
    EXPECT_EQ(llm["usage"]["input_tokens"], 5);
    EXPECT_EQ(llm["usage"]["output_tokens"], 2);
    EXPECT_EQ(llm["incomplete"], false);
}

}  // namespace llm_proxy::test

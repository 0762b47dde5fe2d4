// `llm_proxy export`, end to end: conversations made through the proxy by the official SDKs
// (OpenAI Node SDK: a multi-turn conversation with parallel tool calls; Anthropic SDK: a
// streamed multi-turn conversation), exported by the real binary and validated by its own
// --check; the HAR of the same traffic validated by the har-validator npm package; bad command
// lines refused with exit code 2. The upstream is the fake one, replaying answers this test
// writes.

#include <cstdlib>

#include "e2e_fixture.hpp"

namespace llm_proxy::test {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Where .ci/install-deps puts the JavaScript packages.
fs::path node_dir() {
    if (const char* d = std::getenv("LLM_PROXY_TEST_NODE_DIR"); d && *d) {
        return d;
    }
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
        return fs::path(x) / "llm_proxy" / "test-node";
    }
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/") / ".cache" / "llm_proxy" / "test-node";
}

std::string sse(const std::vector<json>& chunks, bool done) {
    std::string out;
    for (const auto& c : chunks) {
        out += "data: " + c.dump() + "\n\n";
    }
    if (done) {
        out += "data: [DONE]\n\n";
    }
    return out;
}

std::string anthropic_sse(const std::string& id, const std::vector<std::string>& pieces,
                          int input_tokens, int output_tokens) {
    auto event = [](const std::string& type, const json& data) {
        return "event: " + type + "\ndata: " + data.dump() + "\n\n";
    };
    std::string out = event(
        "message_start", {{"type", "message_start"},
                          {"message",
                           {{"id", id},
                            {"type", "message"},
                            {"role", "assistant"},
                            {"model", "claude-3-5-haiku-20241022"},
                            {"content", json::array()},
                            {"stop_reason", nullptr},
                            {"stop_sequence", nullptr},
                            {"usage", {{"input_tokens", input_tokens}, {"output_tokens", 1}}}}}});
    out += event("content_block_start", {{"type", "content_block_start"},
                                         {"index", 0},
                                         {"content_block", {{"type", "text"}, {"text", ""}}}});
    for (const auto& p : pieces) {
        out += event("content_block_delta", {{"type", "content_block_delta"},
                                             {"index", 0},
                                             {"delta", {{"type", "text_delta"}, {"text", p}}}});
    }
    out += event("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
    out += event("message_delta",
                 {{"type", "message_delta"},
                  {"delta", {{"stop_reason", "end_turn"}, {"stop_sequence", nullptr}}},
                  {"usage", {{"output_tokens", output_tokens}}}});
    out += event("message_stop", {{"type", "message_stop"}});
    return out;
}

// The chunk of a streamed chat completion.
json chunk(const json& delta, const json& finish = nullptr) {
    return {{"id", "chatcmpl-export1"},
            {"object", "chat.completion.chunk"},
            {"created", 1764480000},
            {"model", "gpt-4o-mini-2024-07-18"},
            {"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}};
}

json tool_delta(int index, const std::string& id, const std::string& name,
                const std::string& args) {
    json call = {{"index", index}, {"function", {{"arguments", args}}}};
    if (!id.empty()) {
        call["id"] = id;
        call["type"] = "function";
        call["function"]["name"] = name;
    }
    return {{"tool_calls", {call}}};
}

}  // namespace

class Export : public e2e_test {
  protected:
    void SetUp() override {
        pki_ = make_test_pki(work_ / "pki", {"api.openai.com", "api.anthropic.com", "localhost"});
        write_replays();
        upstream_ = std::make_unique<fake_upstream>(
            pki_, std::vector<std::string>{"--replay-dir", (work_ / "replay").string()});
    }

    void replay_case(const std::string& name, const std::string& type, const std::string& body) {
        work_.write_file("replay/" + name + "/meta.json",
                         json({{"status", 200}, {"content_type", type}}).dump());
        work_.write_file("replay/" + name + "/response.bin", body);
    }

    void write_replays() {
        // Turn 1: two parallel tool calls, streamed, with the usage chunk at the end.
        std::vector<json> chunks = {
            chunk({{"role", "assistant"}, {"content", nullptr}}),
            chunk(tool_delta(0, "call_weather_1", "get_weather", "")),
            chunk(tool_delta(0, "", "", "{\"city\":")),
            chunk(tool_delta(0, "", "", "\"Paris\"}")),
            chunk(tool_delta(1, "call_time_2", "get_time", "")),
            chunk(tool_delta(1, "", "", "{\"city\":\"Paris\"}")),
            chunk(json::object(), "tool_calls"),
        };
        json usage = chunk(json::object());
        usage["choices"] = json::array();
        usage["usage"] = {{"prompt_tokens", 96}, {"completion_tokens", 41}, {"total_tokens", 137}};
        chunks.push_back(usage);
        replay_case("oai-turn1", "text/event-stream", sse(chunks, true));
        // Turn 2: the answer, not streamed.
        json answer = {
            {"id", "chatcmpl-export2"},
            {"object", "chat.completion"},
            {"created", 1764480001},
            {"model", "gpt-4o-mini-2024-07-18"},
            {"choices",
             {{{"index", 0},
               {"message",
                {{"role", "assistant"},
                 {"content", "In Paris it is 18°C and sunny, and the time is 14:05."},
                 {"refusal", nullptr}}},
               {"logprobs", nullptr},
               {"finish_reason", "stop"}}}},
            {"usage", {{"prompt_tokens", 171}, {"completion_tokens", 19}, {"total_tokens", 190}}}};
        replay_case("oai-turn2", "application/json", answer.dump());
        replay_case("anth-turn1", "text/event-stream",
                    anthropic_sse("msg_export1", {"Bonjour", "! How can I help?"}, 25, 9));
        replay_case("anth-turn2", "text/event-stream",
                    anthropic_sse("msg_export2", {"Paris is the capital", " of France."}, 48, 8));
    }

    std::vector<std::string> args(std::vector<std::string> extra) {
        auto port = std::to_string(upstream_->port());
        std::vector<std::string> all = {"--connect-to", "api.anthropic.com:443:127.0.0.1:" + port};
        all.insert(all.end(), extra.begin(), extra.end());
        return all;
    }

    // Runs `script` with node (packages on NODE_PATH, the proxy's CA trusted); its stdout.
    std::string run_node(const std::string& file, const std::string& script,
                         std::vector<std::string> extra = {}) {
        auto modules = node_dir() / "node_modules";
        EXPECT_TRUE(fs::exists(modules / "openai") && fs::exists(modules / "@anthropic-ai/sdk") &&
                    fs::exists(modules / "har-validator"))
            << modules << " lacks the packages: run .ci/install-deps";
        auto path = work_.write_file(file, script);
        spawn_options env;
        env.env = {{"NODE_PATH", modules.string()},
                   {"NODE_EXTRA_CA_CERTS", proxy_ca_cert().string()}};
        std::vector<std::string> argv = {"node", path.string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto r = run_command(argv, std::chrono::seconds(60), "", env);
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        return r.out;
    }

    command_result llm_proxy(std::vector<std::string> argv) {
        argv.insert(argv.begin(), LLM_PROXY_BINARY);
        return run_command(argv, std::chrono::seconds(60));
    }

    // The OpenAI SDK's conversation: the messages it ends with.
    json openai_conversation() {
        auto out = run_node("openai_tools.js", R"JS(
const { OpenAI } = require('openai');
const { HttpsProxyAgent } = require('https-proxy-agent');
const client = new OpenAI({ apiKey: 'sk-test', httpAgent: new HttpsProxyAgent(process.argv[2]),
                            maxRetries: 0 });
const city = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather now', parameters: city } },
  { type: 'function', function: { name: 'get_time', description: 'Local time', parameters: city } },
];
(async () => {
  const messages = [
    { role: 'system', content: 'You are a concise travel assistant.' },
    { role: 'user', content: 'What is the weather and the time in Paris?' },
  ];
  const stream = client.beta.chat.completions.stream(
    { model: 'gpt-4o-mini', messages, tools, stream_options: { include_usage: true } },
    { headers: { 'X-Fake-Replay': 'oai-turn1' } });
  const first = await stream.finalChatCompletion();
  const asked = first.choices[0].message;
  messages.push(asked);
  for (const call of asked.tool_calls) {
    const { city } = JSON.parse(call.function.arguments);
    const result = call.function.name === 'get_weather' ? `18°C, sunny in ${city}` : `14:05 in ${city}`;
    messages.push({ role: 'tool', tool_call_id: call.id, content: result });
  }
  const second = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools },
                                                      { headers: { 'X-Fake-Replay': 'oai-turn2' } });
  messages.push(second.choices[0].message);
  console.log(JSON.stringify(messages));
})().catch((e) => { console.error(String(e)); process.exit(1); });
)JS",
                            {proxy_->url()});
        return json::parse(out);
    }

    // The Anthropic SDK's streamed conversation: the messages it ends with.
    json anthropic_conversation() {
        auto out = run_node("anthropic_chat.js", R"JS(
const Anthropic = require('@anthropic-ai/sdk');
const { HttpsProxyAgent } = require('https-proxy-agent');
const client = new Anthropic({ apiKey: 'sk-ant-test', maxRetries: 0,
                               httpAgent: new HttpsProxyAgent(process.argv[2]) });
(async () => {
  const system = 'Answer in one sentence.';
  const messages = [{ role: 'user', content: 'Hello!' }];
  for (const turn of ['anth-turn1', 'anth-turn2']) {
    const stream = client.messages.stream(
      { model: 'claude-3-5-haiku-latest', max_tokens: 256, system, messages },
      { headers: { 'X-Fake-Replay': turn } });
    const m = await stream.finalMessage();
    messages.push({ role: 'assistant', content: m.content });
    if (turn === 'anth-turn1') {
      messages.push({ role: 'user', content: 'What is the capital of France?' });
    }
  }
  console.log(JSON.stringify(messages));
})().catch((e) => { console.error(String(e)); process.exit(1); });
)JS",
                            {proxy_->url()});
        return json::parse(out);
    }

    std::vector<json> jsonl(const fs::path& file) {
        std::vector<json> out;
        std::istringstream in(read_file(file));
        for (std::string line; std::getline(in, line);) {
            out.push_back(json::parse(line));
        }
        return out;
    }
};

TEST_F(Export, OpenAiSdkToolConversationToOpenAiChat) {
    start_proxy(args({"dir_logger", "-o", log_dir().string()}));
    json sdk = openai_conversation();
    ASSERT_EQ(sdk.size(), 6u);
    ASSERT_EQ(wait_for_records(2).size(), 2u);
    ASSERT_EQ(proxy_->stop(), 0);

    // Every request: two examples, the first ending with the tool calls.
    auto out = work_ / "chat.jsonl";
    auto r =
        llm_proxy({"export", log_dir().string(), "--format", "openai-chat", "-o", out.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("2 records read, 2 examples written"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("tokens per example: min 137 / median 137 / max 190"), std::string::npos)
        << r.err;
    auto examples = jsonl(out);
    ASSERT_EQ(examples.size(), 2u);

    // --longest: the second request extends the first (its answer included): one example,
    // the whole conversation as the SDK holds it.
    auto longest = work_ / "longest.jsonl";
    r = llm_proxy({"export", log_dir().string(), "--format", "openai-chat", "-o", longest.string(),
                   "--longest", "--dedupe"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("a later request of the conversation extends it (--longest)"),
              std::string::npos)
        << r.err;
    auto one = jsonl(longest);
    ASSERT_EQ(one.size(), 1u);
    const json& m = one[0]["messages"];
    ASSERT_EQ(m.size(), sdk.size());
    for (std::size_t i = 0; i < m.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(m[i]["role"], sdk[i]["role"]);
        EXPECT_EQ(m[i].value("content", json()), sdk[i].value("content", json()));
        EXPECT_EQ(m[i].value("tool_call_id", json()), sdk[i].value("tool_call_id", json()));
    }
    ASSERT_EQ(m[2]["tool_calls"].size(), 2u);
    for (std::size_t k = 0; k < 2; ++k) {
        EXPECT_EQ(m[2]["tool_calls"][k]["id"], sdk[2]["tool_calls"][k]["id"]);
        EXPECT_EQ(m[2]["tool_calls"][k]["function"]["name"],
                  sdk[2]["tool_calls"][k]["function"]["name"]);
        EXPECT_EQ(m[2]["tool_calls"][k]["function"]["arguments"],
                  sdk[2]["tool_calls"][k]["function"]["arguments"]);
    }
    EXPECT_EQ(m[5]["content"], "In Paris it is 18°C and sunny, and the time is 14:05.");
    EXPECT_EQ(one[0]["tools"].size(), 2u);
    EXPECT_EQ(one[0]["tools"][0]["function"]["name"], "get_weather");

    // The file passes the format's own check.
    auto check = llm_proxy({"export", "--check", longest.string(), "--format", "openai-chat"});
    EXPECT_EQ(check.exit_code, 0) << check.out;
    EXPECT_NE(check.out.find("1 lines, no problems"), std::string::npos) << check.out;
    check = llm_proxy({"export", "--check", out.string(), "--format", "openai-chat"});
    EXPECT_EQ(check.exit_code, 0) << check.out;
    // ...and a broken copy fails it, with the line.
    // (lines come in directory order: take the whole conversation, the longer one)
    auto broken =
        examples[0]["messages"].size() > examples[1]["messages"].size() ? examples[0] : examples[1];
    ASSERT_EQ(broken["messages"][3]["role"], "tool");
    broken["messages"][3]["tool_call_id"] = "call_nobody_made";
    write_file(work_ / "broken.jsonl", one[0].dump() + "\n" + broken.dump() + "\n");
    check = llm_proxy(
        {"export", "--check", (work_ / "broken.jsonl").string(), "--format", "openai-chat"});
    EXPECT_EQ(check.exit_code, 1);
    EXPECT_NE(check.out.find("broken.jsonl:2: messages[3]: tool message answers call id "
                             "\"call_nobody_made\", which no earlier assistant message made"),
              std::string::npos)
        << check.out;

    // Bedrock's format cannot carry tools: both requests are skipped, and the summary says why.
    r = llm_proxy({"export", log_dir().string(), "--format", "anthropic", "-o",
                   (work_ / "bedrock.jsonl").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("2  tools (the format has no tools)"), std::string::npos) << r.err;
}

TEST_F(Export, AnthropicStreamsToBothChatFormats) {
    start_proxy(args({"dir_logger", "-o", log_dir().string()}));
    json sdk = anthropic_conversation();
    ASSERT_EQ(sdk.size(), 4u);
    ASSERT_EQ(wait_for_records(2).size(), 2u);
    ASSERT_EQ(proxy_->stop(), 0);

    auto bedrock = work_ / "bedrock.jsonl";
    auto r = llm_proxy({"export", log_dir().string(), "--format", "anthropic", "-o",
                        bedrock.string(), "--longest"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto lines = jsonl(bedrock);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0], json::parse(R"({"system":"Answer in one sentence.","messages":[
        {"role":"user","content":"Hello!"},
        {"role":"assistant","content":"Bonjour! How can I help?"},
        {"role":"user","content":"What is the capital of France?"},
        {"role":"assistant","content":"Paris is the capital of France."}]})"));
    auto check = llm_proxy({"export", "--check", bedrock.string(), "--format", "anthropic"});
    EXPECT_EQ(check.exit_code, 0) << check.out;

    auto chat = work_ / "chat.jsonl";
    r = llm_proxy({"export", log_dir().string(), "--format", "openai-chat", "-o", chat.string(),
                   "--longest", "--provider", "anthropic", "--model", "^claude-3-5-haiku"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    lines = jsonl(chat);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0], json::parse(R"({"messages":[
        {"role":"system","content":"Answer in one sentence."},
        {"role":"user","content":"Hello!"},
        {"role":"assistant","content":"Bonjour! How can I help?"},
        {"role":"user","content":"What is the capital of France?"},
        {"role":"assistant","content":"Paris is the capital of France."}]})"));
    check = llm_proxy({"export", "--check", chat.string(), "--format", "openai-chat"});
    EXPECT_EQ(check.exit_code, 0) << check.out;

    // The provider-neutral lines of both calls, streamed, with the exact usage.
    auto neutral = work_ / "calls.jsonl";
    r = llm_proxy({"export", log_dir().string(), "--format", "jsonl", "-o", neutral.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    lines = jsonl(neutral);
    ASSERT_EQ(lines.size(), 2u);
    std::uint64_t input = 0;
    for (const auto& l : lines) {
        EXPECT_EQ(l["provider"], "anthropic");
        EXPECT_EQ(l["stream"], true);
        input += l["usage"]["input_tokens"].get<std::uint64_t>();
    }
    EXPECT_EQ(input, 25u + 48u);
    check = llm_proxy({"export", "--check", neutral.string(), "--format", "jsonl"});
    EXPECT_EQ(check.exit_code, 0) << check.out;
}

TEST_F(Export, HarPassesHarValidator) {
    start_proxy(args({"dir_logger", "-o", log_dir().string()}));
    openai_conversation();
    anthropic_conversation();
    auto client = proxied_client();
    ASSERT_EQ(client.get("https://api.openai.com/v1/models?limit=3").status, 200u);
    ASSERT_EQ(wait_for_records(5).size(), 5u);
    ASSERT_EQ(proxy_->stop(), 0);

    auto har = work_ / "traffic.har";
    auto r = llm_proxy({"export", log_dir().string(), "--format", "har", "-o", har.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("5 records read, 5 HAR entries written"), std::string::npos) << r.err;
    auto check = llm_proxy({"export", "--check", har.string(), "--format", "har"});
    EXPECT_EQ(check.exit_code, 0) << check.out;

    auto out = run_node("validate_har.js", R"JS(
const fs = require('fs');
const validate = require('har-validator');
const har = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
validate.har(har)
  .then(() => {
    const e = har.log.entries;
    console.log(JSON.stringify({ valid: true, entries: e.length,
                                 llm: e.filter((x) => x._llm).length,
                                 timesAdd: e.every((x) => x.time === x.timings.send + x.timings.wait + x.timings.receive),
                                 secrets: e.some((x) => x.request.headers.some((h) => /^authorization$|^x-api-key$/i.test(h.name))) }));
  })
  .catch((err) => { console.log(JSON.stringify({ valid: false, errors: err.errors })); process.exit(1); });
)JS",
                        {har.string()});
    auto result = json::parse(out);
    EXPECT_EQ(result["valid"], true) << out;
    EXPECT_EQ(result["entries"], 5);
    EXPECT_EQ(result["llm"], 4);
    EXPECT_EQ(result["timesAdd"], true);
    EXPECT_EQ(result["secrets"], false) << "API keys are filtered out of records and HAR";
}

TEST_F(Export, BadCommandLinesExitTwo) {
    fs::create_directories(log_dir());
    auto out = (work_ / "o.jsonl").string();
    struct bad_case {
        std::vector<std::string> argv;
        std::string message;
    };
    std::vector<bad_case> cases = {
        {{"export", log_dir().string(), "-o", out}, "--format is required"},
        {{"export", log_dir().string(), "--format", "csv", "-o", out}, "--format"},
        {{"export", log_dir().string(), "--format", "jsonl"}, "-o/--output FILE is required"},
        {{"export", "--format", "jsonl", "-o", out}, "give record directories or files"},
        {{"export", (work_ / "nope").string(), "--format", "jsonl", "-o", out},
         "nope: no such file or directory"},
        {{"export", log_dir().string(), "--format", "har", "-o", out, "--dedupe"},
         "not with --format har"},
        {{"export", log_dir().string(), "--format", "openai-chat", "-o", out, "--split", "1.5"},
         "the training fraction must be between 0 and 1"},
        {{"export", log_dir().string(), "--format", "openai-chat", "-o", "-", "--split", "0.9"},
         "--split writes two files"},
        {{"export", log_dir().string(), "--format", "openai-chat", "-o", out, "--model", "(["},
         "--model '([': not a regular expression"},
        {{"export", log_dir().string(), "--format", "openai-chat", "-o", out, "--status", "ok2"},
         "--status 'ok2'"},
        {{"export", log_dir().string(), "--format", "openai-chat", "-o", out, "--since", "soon"},
         "--since 'soon'"},
        {{"export", log_dir().string(), "--format", "openai-chat", "-o", out, "--provider",
          "mistral"},
         "--provider"},
        {{"export", log_dir().string(), "--format", "openai-chat", "-o",
          (work_ / "no" / "dir" / "o.jsonl").string()},
         "no such directory"},
        {{"export", "--check", (work_ / "missing.jsonl").string(), "--format", "openai-chat"},
         "missing.jsonl: cannot be read"},
        {{"export", "--check", out, "--format", "openai-chat", "-o", out}, "--check FILE"},
    };
    for (const auto& c : cases) {
        auto r = llm_proxy(c.argv);
        EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
        EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    }
    // An empty directory exports nothing, successfully, to standard output.
    auto r = llm_proxy({"export", log_dir().string(), "--format", "openai-chat", "-o", "-"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("0 records read, 0 examples written"), std::string::npos) << r.err;
}

}  // namespace llm_proxy::test

// Understanding LLM traffic, end to end: the real binary relays recorded provider responses
// (the shared llm-streams corpus, replayed by the fake upstream) and every record's "llm"
// object equals what the parser makes of the same bytes; apiAuditor's budget; --inject-usage;
// the verbose line; `report` over the records; `prices update` and `prices show`.

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "e2e_fixture.hpp"
#include "llm_proxy/llm/parser.hpp"
#include "llm_proxy/llm/prices.hpp"
#include "llm_proxy/llm/record_json.hpp"
#include "support/node_sdk.hpp"

namespace llm_proxy::test {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

fs::path shared_dir() {
    if (const char* env = std::getenv("LLM_PROXY_SHARED_DIR"); env && *env) {
        return env;
    }
    return LLM_PROXY_SHARED_DIR;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> corpus_cases() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(shared_dir() / "data" / "llm-streams", ec)) {
        if (fs::exists(e.path() / "meta.json")) {
            out.push_back(e.path().filename().string());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The record whose request carried X-Fake-Replay: name.
const json* record_of(const std::vector<json>& records, const std::string& name) {
    for (const auto& r : records) {
        const auto& h = r["request"]["header"];
        if (h.is_object() && h.contains("X-Fake-Replay") && h["X-Fake-Replay"][0] == name) {
            return &r;
        }
    }
    return nullptr;
}

}  // namespace

class Llm : public e2e_test {
  protected:
    void SetUp() override {
        if (!fs::exists(shared_dir() / "data" / "llm-streams")) {
            GTEST_SKIP() << "the shared data folder is missing: " << shared_dir()
                         << " (set LLM_PROXY_SHARED_DIR)";
        }
        pki_ = make_test_pki(work_ / "pki",
                             {"api.openai.com", "api.anthropic.com",
                              "generativelanguage.googleapis.com", "localhost", "upstream.test"});
        upstream_ = std::make_unique<fake_upstream>(
            pki_, std::vector<std::string>{"--replay-dir",
                                           (shared_dir() / "data" / "llm-streams").string()});
    }

    std::vector<std::string> llm_args(std::vector<std::string> args) {
        auto port = std::to_string(upstream_->port());
        std::vector<std::string> all = {
            "--connect-to", "api.anthropic.com:443:127.0.0.1:" + port,
            "--connect-to", "generativelanguage.googleapis.com:443:127.0.0.1:" + port,
            "--prices",     (shared_dir() / "data" / "genai-prices" / "data.json").string()};
        all.insert(all.end(), args.begin(), args.end());
        return all;
    }

    // POSTs the case's recorded request to its host and path, asking for its recorded answer.
    response replay(http_client& client, const std::string& name, header_list extra = {},
                    std::optional<std::string> body = std::nullopt) {
        auto dir = shared_dir() / "data" / "llm-streams" / name;
        auto meta = json::parse(slurp(dir / "meta.json"));
        header_list h = {{"Content-Type", "application/json"}, {"X-Fake-Replay", name}};
        h.insert(h.end(), extra.begin(), extra.end());
        std::string url = "https://" + meta.value("host", "") + meta.value("path", "");
        return client.post(url, body ? *body : slurp(dir / "request.json"), h);
    }

    // What the parser makes of the case's bytes, read whole, as the record's llm object.
    json expected_llm(const std::string& name) {
        auto dir = shared_dir() / "data" / "llm-streams" / name;
        auto meta = json::parse(slurp(dir / "meta.json"));
        auto e = llm::recognise(meta.value("host", ""), meta.value("path", ""), "POST");
        EXPECT_TRUE(e) << name;
        if (!e) {
            return {};
        }
        auto facts = llm::read_request(*e, slurp(dir / "request.json"));
        llm::response_parser parser(*e, facts);
        parser.feed(slurp(dir / "response.bin"));
        static const auto prices =
            llm::price_table::parse(slurp(shared_dir() / "data" / "genai-prices" / "data.json"));
        auto s =
            llm::summarize(parser.finish(true), &prices, std::chrono::system_clock::now(), false);
        auto j = llm::to_json(s);
        j.erase("first_token_ms");
        return j;
    }
};

TEST_F(Llm, EveryCorpusResponseIsUnderstoodThroughTheProxy) {
    auto cases = corpus_cases();
    ASSERT_GT(cases.size(), 100u);
    start_proxy(llm_args({"dir_logger", "-o", log_dir().string()}));
    auto client = proxied_client(std::chrono::seconds(20));
    for (const auto& name : cases) {
        auto r = replay(client, name);
        auto meta = json::parse(slurp(shared_dir() / "data" / "llm-streams" / name / "meta.json"));
        ASSERT_EQ(r.status, meta.value("status", 200u)) << name;
        EXPECT_EQ(r.body, slurp(shared_dir() / "data" / "llm-streams" / name / "response.bin"))
            << name << ": the client must get the recorded bytes unchanged";
    }
    auto records = wait_for_records(cases.size(), std::chrono::seconds(30));
    ASSERT_EQ(records.size(), cases.size());
    for (const auto& name : cases) {
        SCOPED_TRACE(name);
        const json* rec = record_of(records, name);
        ASSERT_NE(rec, nullptr);
        ASSERT_TRUE(rec->contains("llm")) << rec->dump().substr(0, 300);
        json live = (*rec)["llm"];
        const json out = live.value("output", json::object());
        auto text = [&](const char* key) {
            auto it = out.find(key);
            return it != out.end() && it->is_string() && !it->get<std::string>().empty();
        };
        bool answered =
            text("content") || text("reasoning") || text("refusal") || out.contains("tool_calls");
        if (answered) {
            EXPECT_TRUE(live.contains("first_token_ms")) << "an answer has a time to first token";
        }
        live.erase("first_token_ms");
        EXPECT_EQ(live, expected_llm(name));
        // The provider's own facts, from the corpus.
        auto expected = json::parse(
            slurp(shared_dir() / "data" / "llm-streams" / name / "meta.json"))["expected"];
        EXPECT_EQ(live["provider"], expected["provider"]);
        EXPECT_EQ(live["api"], expected["api"]);
        const json usage = expected.value("usage", json::object());
        for (const auto& [k, v] : usage.items()) {
            EXPECT_EQ(live["usage"].value(k, json()), v) << k;
        }
    }
}

TEST_F(Llm, GzipAndInterruptedStreams) {
    start_proxy(llm_args({"dir_logger", "-o", log_dir().string()}));
    auto client = proxied_client(std::chrono::seconds(20));
    const std::string sse = "anth-msg-stream-tool-use";
    const std::string json_case = "oaipy-chat-json-parse_pydantic_tool";
    for (const auto& name : {sse, json_case}) {
        auto r = replay(client, name, {{"X-Fake-Replay-Gzip", "1"}, {"Accept-Encoding", "gzip"}});
        ASSERT_EQ(r.status, 200u) << name;
    }
    auto records = wait_for_records(2);
    for (const auto& name : {sse, json_case}) {
        SCOPED_TRACE(name);
        const json* rec = record_of(records, name);
        ASSERT_TRUE(rec && rec->contains("llm"));
        json live = (*rec)["llm"];
        live.erase("first_token_ms");
        EXPECT_EQ(live, expected_llm(name)) << "a gzipped body is understood like a plain one";
    }
    // Cut in the middle: what arrived is kept, and the call says it is incomplete.
    auto raw = proxied_client(std::chrono::seconds(20));
    try {
        replay(raw, sse, {{"X-Fake-Replay-Cut", "900"}});
    } catch (const std::exception&) {
        // the client sees the broken-off body as an error
    }
    // The same, compressed: the gzip stream is decoded as it passes, so its first part counts.
    auto raw_gz = proxied_client(std::chrono::seconds(20));
    try {
        replay(raw_gz, sse, {{"X-Fake-Replay-Gzip", "1"}, {"X-Fake-Replay-Cut", "500"}});
    } catch (const std::exception&) {
    }
    records = wait_for_records(4, std::chrono::seconds(15));
    ASSERT_EQ(records.size(), 4u);
    for (std::size_t i : {2u, 3u}) {
        const json& cut = records[i];
        ASSERT_TRUE(cut.contains("llm")) << cut.dump();
        EXPECT_EQ(cut["llm"]["incomplete"], true);
        EXPECT_EQ(cut["llm"]["response_model"], "claude-sonnet-4-20250514");
        EXPECT_EQ(cut["llm"]["usage"]["input_tokens"], 377) << "message_start's usage arrived";
    }
}

TEST_F(Llm, VerboseLineShowsModelTokensAndCost) {
    auto& p = start_proxy(llm_args({"dir_logger", "--verbose", "-o", log_dir().string()}));
    auto client = proxied_client();
    ASSERT_EQ(replay(client, "anth-msg-stream-tool-use").status, 200u);
    auto line = p.wait_for_stderr_line(
        std::regex(R"(model=claude-sonnet-4-20250514 tokens=377/65 cost=\$[0-9.]+ ttft=\d+ms)"),
        std::chrono::seconds(10));
    EXPECT_TRUE(line) << p.stderr_text();
}

TEST_F(Llm, AuditorPrintsCallsAndStopsAtTheBudget) {
    auto& p = start_proxy(llm_args({"apiAuditor", "--budget", "0.0005"}));
    auto client = proxied_client();
    // 377 input and 65 output tokens of claude-sonnet-4 cost $0.002106: over the budget.
    ASSERT_EQ(replay(client, "anth-msg-stream-tool-use").status, 200u);
    ASSERT_TRUE(p.process().wait_for_stdout_line(
        std::regex(R"(\[apiAuditor\] claude-sonnet-4-20250514 )"), std::chrono::seconds(10)))
        << p.stdout_text();
    auto seen_before = upstream_->stats()["requests"].get<std::uint64_t>();
    auto refused = replay(client, "anth-msg-stream-tool-use");
    EXPECT_EQ(refused.status, 429u);
    auto err = json::parse(refused.body);
    EXPECT_EQ(err["error"]["code"], "budget_exceeded");
    EXPECT_EQ(err["error"]["type"], "insufficient_quota");
    // Other traffic still passes; the refused call never reached the upstream.
    EXPECT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
    EXPECT_EQ(upstream_->stats()["requests"].get<std::uint64_t>(), seen_before + 1);
    ASSERT_EQ(p.stop(), 0);
    auto out = p.stdout_text();
    EXPECT_NE(out.find("summary of this run"), std::string::npos) << out;
    EXPECT_NE(out.find("0.002106"), std::string::npos) << out;
}

TEST_F(Llm, AuditAliasAndBadBudget) {
    auto r = run_command({LLM_PROXY_BINARY, "audit", "--budget", "lots"}, std::chrono::seconds(10));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--budget"), std::string::npos) << r.err;
}

TEST_F(Llm, NoLlmKeepsRawRecordsOnly) {
    start_proxy(llm_args({"dir_logger", "--no-llm", "-o", log_dir().string()}));
    auto client = proxied_client();
    const std::string name = "anth-msg-stream-tool-use";
    auto r = replay(client, name);
    ASSERT_EQ(r.status, 200u);
    auto records = wait_for_records(1);
    const json* rec = record_of(records, name);
    ASSERT_TRUE(rec);
    EXPECT_FALSE(rec->contains("llm")) << "--no-llm leaves the record raw";
    EXPECT_EQ((*rec)["response"]["body"], r.body);
    // What needs the LLM observer refuses to start without it.
    for (std::vector<std::string> args :
         {std::vector<std::string>{"apiAuditor", "--no-llm"},
          std::vector<std::string>{"simple", "--no-llm", "--inject-usage"}}) {
        std::vector<std::string> cmd = {LLM_PROXY_BINARY};
        cmd.insert(cmd.end(), args.begin(), args.end());
        cmd.insert(cmd.end(), {"--listen", "127.0.0.1:0", "--ca_dir", (work_ / "ca2").string()});
        auto refused = run_command(cmd, std::chrono::seconds(10));
        EXPECT_EQ(refused.exit_code, 2) << args[0] << ": " << refused.err;
        EXPECT_NE(refused.err.find("--no-llm"), std::string::npos) << refused.err;
    }
}

TEST_F(Llm, InjectUsageGetsUsageWithoutShowingItToTheClient) {
    start_proxy(llm_args({"dir_logger", "--inject-usage", "-o", log_dir().string()}));
    auto client = proxied_client();
    // The upstream is asked for the usage (any host's /v1/chat/completions is read with
    // OpenAI's rules; the fake upstream echoes whatever starts with /echo)...
    auto echo = client.post("https://upstream.test/echo/v1/chat/completions",
                            R"({"model":"gpt-4o","stream":true,"messages":[]})",
                            {{"Content-Type", "application/json"}});
    ASSERT_EQ(echo.status, 200u);
    auto sent = json::parse(json::parse(echo.body)["body"].get<std::string>());
    EXPECT_EQ(sent["stream_options"]["include_usage"], true);
    // ...and the usage-only chunk it then sends is not passed on, while the record has it.
    const std::string name = "oaipy-chat-stream-allows_non_strict_tools_but_no_parsing-so";
    auto body = json::parse(slurp(shared_dir() / "data" / "llm-streams" / name / "request.json"));
    body["stream"] = true;
    body.erase("stream_options");
    auto r = replay(client, name, {}, body.dump());
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body.find("\"choices\":[],\"usage\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos);
    auto records = wait_for_records(2);
    const json* rec = record_of(records, name);
    ASSERT_TRUE(rec && rec->contains("llm"));
    EXPECT_EQ((*rec)["llm"]["usage"]["input_tokens"], 44);
    EXPECT_EQ((*rec)["llm"]["usage"]["output_tokens"], 16);
    EXPECT_EQ((*rec)["llm"]["usage_injected"], true);
}

// The body --inject-usage reads before on_request is bounded by 8 MiB (llm_observer's
// inject_buffer; reliability.md, "Request body read before on_request"): a streamed chat
// completion up to 8 MiB gets "stream_options":{"include_usage":true} inserted after its opening
// brace, every other byte as the client wrote it; a longer one is left as it is
// (usage-and-cost.md, --inject-usage) and still reaches the upstream whole.
TEST_F(Llm, InjectUsageBoundIsEightMiBOfRequestBody) {
    start_proxy(llm_args({"simple", "--inject-usage"}));
    constexpr std::size_t bound = 8u << 20;
    const std::string head =
        R"({"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":")";
    const std::string tail = R"("}]})";
    const std::string inserted = R"("stream_options":{"include_usage":true},)";
    for (std::size_t size : {bound - 1, bound, bound + 1}) {
        SCOPED_TRACE("request body of " + std::to_string(size) + " bytes");
        std::string body = head;
        body.append(size - head.size() - tail.size(), 'x');
        body += tail;
        ASSERT_EQ(body.size(), size);
        ASSERT_TRUE(json::parse(body, nullptr, false).is_object());
        auto client = proxied_client(std::chrono::seconds(60));
        auto echo = client.post("https://upstream.test/echo/v1/chat/completions", body,
                                {{"Content-Type", "application/json"}});
        ASSERT_EQ(echo.status, 200u) << echo.body.substr(0, 500);
        auto j = json::parse(echo.body, nullptr, false);
        ASSERT_TRUE(j.is_object()) << echo.body.substr(0, 500);
        const std::string received = j.value("body", "");
        if (size <= bound) {
            EXPECT_TRUE(received == "{" + inserted + body.substr(1))
                << "the upstream got " << received.size() << " bytes starting with "
                << received.substr(0, 120);
        } else {
            EXPECT_TRUE(received == body) << "the upstream got " << received.size()
                                          << " bytes starting with " << received.substr(0, 120);
        }
    }
}

TEST_F(Llm, ReportSumsTheRecordsAlsoThoseWithoutAnLlmObject) {
    start_proxy(llm_args({"dir_logger", "-o", log_dir().string()}));
    auto client = proxied_client(std::chrono::seconds(20));
    std::vector<std::string> names = {"anth-msg-stream-tool-use", "oainode-chat-stream-works",
                                      "pai-resp-stream-openai-responses-streaming-usage",
                                      "anth-msg-json-092be1de-0"};
    for (const auto& n : names) {
        ASSERT_EQ(replay(client, n).status, 200u) << n;
    }
    ASSERT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
    auto records = wait_for_records(names.size() + 1);
    ASSERT_EQ(records.size(), names.size() + 1);
    ASSERT_EQ(proxy_->stop(), 0);
    std::uint64_t input = 0, output = 0;
    for (const auto& r : records) {
        if (r.contains("llm")) {
            input += r["llm"]["usage"].value("input_tokens", 0u);
            output += r["llm"]["usage"].value("output_tokens", 0u);
        }
    }
    auto prices = (shared_dir() / "data" / "genai-prices" / "data.json").string();
    auto run = [&](std::vector<std::string> extra) {
        std::vector<std::string> argv = {LLM_PROXY_BINARY, "report", log_dir().string(), "--prices",
                                         prices};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run_command(argv, std::chrono::seconds(30));
    };
    auto r = run({"--format", "json", "--by", "provider"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = json::parse(r.out);
    EXPECT_EQ(j["total"]["requests"], names.size() + 1);
    EXPECT_EQ(j["total"]["llm_calls"], names.size());
    EXPECT_EQ(j["total"]["input_tokens"], input);
    EXPECT_EQ(j["total"]["output_tokens"], output);
    EXPECT_EQ(j["groups"].size(), 3u) << "anthropic, openai and the non-LLM request";
    auto total_cost = j["total"]["cost_usd"];
    // Strip the llm objects: report computes them from the bodies and gets the same totals.
    for (const auto& e : fs::directory_iterator(log_dir())) {
        auto rec = json::parse(slurp(e.path()));
        rec.erase("llm");
        std::ofstream(e.path()) << rec.dump(2);
    }
    auto again = run({"--format", "json", "--by", "provider"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    auto j2 = json::parse(again.out);
    EXPECT_EQ(j2["total"]["input_tokens"], input);
    EXPECT_EQ(j2["total"]["output_tokens"], output);
    EXPECT_EQ(j2["total"]["cost_usd"], total_cost);
    auto csv = run({"--format", "csv", "--by", "day", "--since", "2000-01-01"});
    EXPECT_EQ(csv.exit_code, 0);
    EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 3) << csv.out;
    auto none = run({"--format", "json", "--until", "2000-01-01"});
    EXPECT_EQ(json::parse(none.out)["total"]["requests"], 0);
    auto bad = run({"--since", "yesterday"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--since"), std::string::npos);
}

TEST_F(Llm, PricesUpdateValidatesAndShowExplains) {
    // A local HTTP server serving the shared price file and a broken one.
    auto site = work_ / "site";
    fs::create_directories(site);
    fs::copy_file(shared_dir() / "data" / "genai-prices" / "data.json", site / "data.json");
    std::ofstream(site / "broken.json") << R"([{"id": "x"}])";
    child_process server({python3, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0",
                          "--directory", site.string()});
    auto line = server.wait_for_stdout_line(std::regex(R"(port (\d+))"), std::chrono::seconds(10));
    ASSERT_TRUE(line) << server.stderr_text();
    std::string base = "http://127.0.0.1:" + (*line)[1];
    spawn_options env;
    env.env = {{"XDG_CACHE_HOME", (work_ / "cache").string()}};
    auto update = run_command({LLM_PROXY_BINARY, "prices", "update", "--url", base + "/data.json"},
                              std::chrono::seconds(30), "", env);
    ASSERT_EQ(update.exit_code, 0) << update.err;
    auto saved = work_ / "cache" / "llm_proxy" / "prices.json";
    EXPECT_EQ(slurp(saved), slurp(site / "data.json"));
    auto bad = run_command({LLM_PROXY_BINARY, "prices", "update", "--url", base + "/broken.json"},
                           std::chrono::seconds(30), "", env);
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("not a valid genai-prices v2 table"), std::string::npos) << bad.err;
    EXPECT_EQ(slurp(saved), slurp(site / "data.json")) << "a bad download replaces nothing";
    auto missing = run_command({LLM_PROXY_BINARY, "prices", "update", "--url", base + "/nope.json"},
                               std::chrono::seconds(30), "", env);
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("404"), std::string::npos) << missing.err;
    auto show = run_command({LLM_PROXY_BINARY, "prices", "show", "gpt-4o-mini"},
                            std::chrono::seconds(30), "", env);
    ASSERT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("input_mtok: 0.15"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find(saved.string()), std::string::npos) << "the updated file is used";
    auto unknown = run_command({LLM_PROXY_BINARY, "prices", "show", "no-such-model-xyz"},
                               std::chrono::seconds(30), "", env);
    EXPECT_EQ(unknown.exit_code, 1);
}

}  // namespace llm_proxy::test

namespace llm_proxy::test {

class LlmSdk : public Llm {
  protected:
    // Runs `script` with node (the SDKs on NODE_PATH, the proxy's CA trusted); its stdout as JSON.
    json run_node(const std::string& file, const std::string& script) {
        EXPECT_EQ(missing_node_packages({"openai", "@anthropic-ai/sdk", "https-proxy-agent"}), "");
        auto path = work_.write_file(file, script);
        auto r = run_node_script(path, {proxy_->url()},
                                 {{"NODE_EXTRA_CA_CERTS", proxy_ca_cert().string()}});
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        return json::parse(r.out, nullptr, false);
    }
};

TEST_F(LlmSdk, OpenAiFinalChatCompletionEqualsTheRecordsOutput) {
    start_proxy(llm_args({"dir_logger", "-o", log_dir().string()}));
    const std::string name = "oaipy-chat-stream-parse_multiple_pydantic_tools-so";
    auto sdk = run_node("openai_final.js", R"JS(
const { OpenAI } = require('openai');
const { HttpsProxyAgent } = require('https-proxy-agent');
const client = new OpenAI({ apiKey: 'sk-test', httpAgent: new HttpsProxyAgent(process.argv[2]),
                            maxRetries: 0 });
(async () => {
  const stream = client.beta.chat.completions.stream(
    { model: 'gpt-4o-2024-08-06', messages: [{ role: 'user', content: 'weather?' }] },
    { headers: { 'X-Fake-Replay': ')JS" + name +
                                               R"JS(' } });
  const done = await stream.finalChatCompletion();
  console.log(JSON.stringify(done.choices[0].message));
})().catch((e) => { console.error(String(e)); process.exit(1); });
)JS");
    ASSERT_TRUE(sdk.is_object());
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    const auto& out = records[0]["llm"]["output"];
    EXPECT_EQ(out["content"], sdk["content"]);
    ASSERT_TRUE(sdk["tool_calls"].is_array());
    ASSERT_EQ(out["tool_calls"].size(), sdk["tool_calls"].size());
    for (std::size_t i = 0; i < out["tool_calls"].size(); ++i) {
        EXPECT_EQ(out["tool_calls"][i]["id"], sdk["tool_calls"][i]["id"]);
        EXPECT_EQ(out["tool_calls"][i]["function"]["name"],
                  sdk["tool_calls"][i]["function"]["name"]);
        EXPECT_EQ(out["tool_calls"][i]["function"]["arguments"],
                  sdk["tool_calls"][i]["function"]["arguments"]);
    }
}

TEST_F(LlmSdk, AnthropicFinalMessageEqualsTheRecordsOutput) {
    start_proxy(llm_args({"dir_logger", "-o", log_dir().string()}));
    const std::string name = "pai-msg-stream-anthropic-model-thinking-part-stream";
    auto sdk = run_node("anthropic_final.js", R"JS(
const Anthropic = require('@anthropic-ai/sdk');
const { HttpsProxyAgent } = require('https-proxy-agent');
const client = new Anthropic({ apiKey: 'sk-ant-test', httpAgent: new HttpsProxyAgent(process.argv[2]),
                               maxRetries: 0 });
(async () => {
  const stream = client.messages.stream(
    { model: 'claude-sonnet-4-0', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'X-Fake-Replay': ')JS" + name + R"JS(' } });
  const m = await stream.finalMessage();
  console.log(JSON.stringify(m));
})().catch((e) => { console.error(String(e)); process.exit(1); });
)JS");
    ASSERT_TRUE(sdk.is_object());
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    const auto& llm = records[0]["llm"];
    std::string text, thinking;
    json tools = json::array();
    for (const auto& block : sdk["content"]) {
        if (block["type"] == "text") {
            text += block["text"].get<std::string>();
        } else if (block["type"] == "thinking") {
            thinking += block["thinking"].get<std::string>();
        } else if (block["type"] == "tool_use") {
            tools.push_back(block);
        }
    }
    EXPECT_EQ(llm["output"].value("content", json("")), json(text));
    EXPECT_EQ(llm["output"].value("reasoning", json("")), json(thinking));
    EXPECT_EQ(llm["output"].value("tool_calls", json::array()).size(), tools.size());
    EXPECT_EQ(llm["finish_reason"], sdk["stop_reason"]);
    EXPECT_EQ(llm["response_model"], sdk["model"]);
    EXPECT_EQ(llm["usage"]["output_tokens"], sdk["usage"]["output_tokens"]);
    EXPECT_EQ(llm["usage"]["input_tokens"],
              sdk["usage"]["input_tokens"].get<std::uint64_t>() +
                  sdk["usage"].value("cache_read_input_tokens", std::uint64_t{0}) +
                  sdk["usage"].value("cache_creation_input_tokens", std::uint64_t{0}));
}

}  // namespace llm_proxy::test

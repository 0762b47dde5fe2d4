// run_export over record directories: selection, cleaning (--dedupe, --longest, --split), the
// summary, HAR and JSONL output, and records with and without an llm object.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "llm_proxy/export/check.hpp"
#include "llm_proxy/export/export_run.hpp"
#include "llm_proxy/llm/prices.hpp"
#include "llm_proxy/util/text.hpp"
#include "support/temp_dir.hpp"

using namespace llm_proxy;
using namespace llm_proxy::exporter;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

json chat_answer(const std::string& text, int prompt_tokens, int completion_tokens) {
    return {{"id", "chatcmpl-1"},
            {"object", "chat.completion"},
            {"model", "gpt-4o-mini-2024-07-18"},
            {"choices",
             {{{"index", 0},
               {"message", {{"role", "assistant"}, {"content", text}}},
               {"finish_reason", "stop"}}}},
            {"usage",
             {{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens}}}};
}

json record(const std::string& time, const std::string& url, const std::string& request_body,
            std::optional<unsigned> status, const std::string& response_body,
            const std::string& type = "application/json") {
    json r = {{"object_type", "llm_proxy_traffic_log"},
              {"schema", "v2"},
              {"timestamp", time},
              {"connection_stats",
               {{"client_address", "127.0.0.1:5000"}, {"duration_ms", 120}, {"url", url}}},
              {"request",
               {{"method", request_body.empty() ? "GET" : "POST"},
                {"url", url},
                {"proto", "HTTP/1.1"},
                {"header",
                 {{"Content-Type", {"application/json"}},
                  {"Authorization", {"Bearer sk-secret"}},
                  {"X-Trace", {"t1"}}}},
                {"body", request_body}}}};
    if (status) {
        r["response"] = {
            {"status", *status}, {"header", {{"Content-Type", {type}}}}, {"body", response_body}};
    }
    return r;
}

json chat_record(const std::string& time, const std::vector<json>& messages,
                 const std::string& answer, int prompt_tokens = 10, int completion_tokens = 5,
                 unsigned status = 200) {
    json body = {{"model", "gpt-4o-mini"}, {"messages", json(messages)}};
    return record(time, "https://api.openai.com/v1/chat/completions", body.dump(), status,
                  status == 200 ? chat_answer(answer, prompt_tokens, completion_tokens).dump()
                                : R"({"error":{"message":"slow down","type":"rate_limit"}})");
}

json anthropic_record(const std::string& time) {
    json body = {{"model", "claude-sonnet-4-0"},
                 {"max_tokens", 100},
                 {"system", "Be brief."},
                 {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
    json answer = {{"id", "msg_1"},
                   {"type", "message"},
                   {"role", "assistant"},
                   {"model", "claude-sonnet-4-20250514"},
                   {"content", {{{"type", "text"}, {"text", "Hello."}}}},
                   {"stop_reason", "end_turn"},
                   {"usage", {{"input_tokens", 20}, {"output_tokens", 3}}}};
    return record(time, "https://api.anthropic.com/v1/messages", body.dump(), 200, answer.dump());
}

json user(const std::string& text) {
    return {{"role", "user"}, {"content", text}};
}
json assistant(const std::string& text) {
    return {{"role", "assistant"}, {"content", text}};
}

class ExportRun : public testing::Test {
  protected:
    void put(const std::string& name, const json& r) {
        work_.write_file("records/" + name + ".json", r.dump(2));
    }

    export_options options(format f, const std::string& out = "out.jsonl") {
        export_options o;
        o.inputs = {work_ / "records"};
        o.format = f;
        o.output = work_ / out;
        o.selection.llm_only = f != format::har;
        o.selection.status =
            status_filter::parse(f == format::har ? std::string("all") : std::string("ok"));
        o.read.prices = &llm::price_table::builtin();
        return o;
    }

    std::vector<json> lines(const std::string& file) {
        std::ifstream in(work_ / file);
        std::vector<json> out;
        for (std::string line; std::getline(in, line);) {
            out.push_back(json::parse(line));
        }
        return out;
    }

    // A mixed set: three answered chat calls, an Anthropic call, a 429, a models listing,
    // a failed flow and a file that is not a record.
    void mixed_set() {
        put("a1", chat_record("2026-11-01T10:00:00Z", {user("one")}, "1", 10, 5));
        put("a2", chat_record("2026-11-02T10:00:00Z", {user("two")}, "2", 100, 50));
        put("a3", chat_record("2026-11-03T10:00:00Z", {user("three")}, "3", 1000, 500));
        put("b1", anthropic_record("2026-11-02T12:00:00Z"));
        put("c1", chat_record("2026-11-02T13:00:00Z", {user("x")}, "", 0, 0, 429));
        put("d1", record("2026-11-02T14:00:00Z", "https://api.openai.com/v1/models", "", 200,
                         R"({"data":[]})"));
        auto failed = chat_record("2026-11-02T15:00:00Z", {user("y")}, "");
        failed.erase("response");
        failed["error"] = {{"kind", "upstream_reset"}, {"message", "reset"}};
        put("e1", failed);
        work_.write_file("records/notes.json", "not json at all");
    }

    test::temp_dir work_{"llm_proxy_export"};
};

}  // namespace

TEST_F(ExportRun, SelectsAnsweredCallsAndSaysWhyTheOthersWereSkipped) {
    mixed_set();
    auto s = run_export(options(format::openai_chat));
    EXPECT_EQ(s.files, 8u);
    EXPECT_EQ(s.written, 4u);
    EXPECT_EQ(s.skipped, (std::map<std::string, std::uint64_t>{{"file not JSON", 1},
                                                               {"flow failed (upstream_reset)", 1},
                                                               {"not an LLM call", 1},
                                                               {"status 429", 1}}));
    auto out = lines("out.jsonl");
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(check_file(work_ / "out.jsonl", format::openai_chat).problem_count, 0u);
    // tokens: 15, 150, 1500 and the Anthropic call's 23.
    EXPECT_EQ(s.tokens.size(), 4u);
    auto text = s.text();
    EXPECT_NE(text.find("tokens per example: min 15 / median 23 / max 1500"), std::string::npos)
        << text;
    EXPECT_NE(text.find("       1  status 429\n"), std::string::npos) << text;
    EXPECT_NE(text.find("8 records read, 4 examples written"), std::string::npos) << text;
    // Written 0600 (exports hold prompts), no temporary file left behind.
    struct stat st {};
    ASSERT_EQ(::stat((work_ / "out.jsonl").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    for (const auto& e : fs::directory_iterator(work_.path())) {
        EXPECT_FALSE(e.path().filename().string().starts_with(".")) << e.path();
    }
}

TEST_F(ExportRun, SelectionOptions) {
    mixed_set();
    auto count = [&](auto&& change) {
        auto o = options(format::openai_chat);
        change(o.selection);
        return run_export(o).written;
    };
    EXPECT_EQ(count([](selection& s) { s.providers = {llm::provider::anthropic}; }), 1u);
    EXPECT_EQ(count([](selection& s) { s.model = std::regex("^gpt-4o"); }), 3u);
    EXPECT_EQ(count([](selection& s) { s.model = std::regex("20250514$"); }), 1u);
    EXPECT_EQ(count([](selection& s) { s.hosts = {"api.anthropic.com"}; }), 1u);
    EXPECT_EQ(count([](selection& s) { s.hosts = {"api.openai.com:443"}; }), 3u);
    EXPECT_EQ(count([](selection& s) { s.hosts = {"api.openai.com:8443"}; }), 0u);
    EXPECT_EQ(count([](selection& s) { s.since = llm::parse_timestamp("2026-11-02"); }), 3u);
    EXPECT_EQ(count([](selection& s) {
                  s.since = llm::parse_timestamp("2026-11-02");
                  s.until = llm::parse_timestamp("2026-11-03");
              }),
              2u);
    // --status 429 takes the refused call: it has no answer to train on.
    auto o = options(format::openai_chat);
    o.selection.status = status_filter::parse("4xx");
    auto s = run_export(o);
    EXPECT_EQ(s.written, 0u);
    EXPECT_EQ(s.skipped["no answer"], 1u);
    EXPECT_THROW(status_filter::parse("2xx,abc"), std::invalid_argument);
    EXPECT_THROW(status_filter::parse("700"), std::invalid_argument);
}

TEST_F(ExportRun, DedupeAndLongest) {
    // One conversation of three requests, each extending the one before with its answer.
    put("t1", chat_record("2026-11-01T10:00:00Z", {user("a")}, "A"));
    put("t2", chat_record("2026-11-01T10:01:00Z", {user("a"), assistant("A"), user("b")}, "B"));
    put("t3", chat_record("2026-11-01T10:02:00Z",
                          {user("a"), assistant("A"), user("b"), assistant("B"), user("c")}, "C"));
    // A retry of the first request (same prompt, same answer) and an unrelated call.
    put("t1-again", chat_record("2026-11-01T11:00:00Z", {user("a")}, "A"));
    put("u1", chat_record("2026-11-01T12:00:00Z", {user("z")}, "Z"));
    // A request that shares the start but branched off (another answer): not extended.
    put("v1", chat_record("2026-11-01T13:00:00Z", {user("a")}, "A'"));

    auto plain = run_export(options(format::openai_chat));
    EXPECT_EQ(plain.written, 6u);

    auto o = options(format::openai_chat);
    o.dedupe = true;
    auto deduped = run_export(o);
    EXPECT_EQ(deduped.written, 5u);
    EXPECT_EQ(deduped.skipped["duplicate (--dedupe)"], 1u);

    o.longest = true;
    auto longest = run_export(o);
    EXPECT_EQ(longest.written, 3u);
    EXPECT_EQ(longest.skipped["a later request of the conversation extends it (--longest)"], 2u);
    auto out = lines("out.jsonl");
    std::set<std::size_t> sizes;
    for (const auto& l : out) {
        sizes.insert(l["messages"].size());
    }
    EXPECT_EQ(sizes, (std::set<std::size_t>{2, 6}));
    EXPECT_EQ(longest.tokens.size(), 3u) << "the tokens of the examples kept";
    // --longest without --dedupe keeps both copies of a repeated request only when nothing
    // extends them; here t3 extends both.
    o.dedupe = false;
    EXPECT_EQ(run_export(o).written, 3u);
}

TEST_F(ExportRun, SplitIsDeterministicBySeed) {
    for (int i = 0; i < 200; ++i) {
        put("r" + std::to_string(i),
            chat_record("2026-11-01T10:00:00Z", {user("q" + std::to_string(i))}, "a"));
    }
    auto o = options(format::openai_chat, "data.jsonl");
    o.split = 0.8;
    o.seed = 7;
    auto s = run_export(o);
    ASSERT_EQ(s.outputs.size(), 2u);
    EXPECT_EQ(s.outputs[0].first, work_ / "data.train.jsonl");
    EXPECT_EQ(s.outputs[1].first, work_ / "data.validation.jsonl");
    auto train = lines("data.train.jsonl"), validation = lines("data.validation.jsonl");
    EXPECT_EQ(train.size() + validation.size(), 200u);
    EXPECT_GT(train.size(), 140u);
    EXPECT_LT(train.size(), 190u);
    EXPECT_EQ(s.outputs[0].second, train.size());
    // The same seed, the same split; another seed, another one.
    run_export(o);
    EXPECT_EQ(lines("data.train.jsonl"), train);
    o.seed = 8;
    run_export(o);
    EXPECT_NE(lines("data.train.jsonl"), train);
    EXPECT_EQ(split_paths("out").first, fs::path("out.train.jsonl"));
}

TEST_F(ExportRun, HarOfEveryFlow) {
    mixed_set();
    auto s = run_export(options(format::har, "flows.har"));
    EXPECT_EQ(s.written, 7u) << "every record, the failed flow and the 429 included";
    EXPECT_EQ(s.skipped["file not JSON"], 1u);
    auto check = check_file(work_ / "flows.har", format::har);
    EXPECT_EQ(check.problem_count, 0u) << check.problems.front().message;
    EXPECT_EQ(check.items, 7u);
    std::ifstream in(work_ / "flows.har");
    json har = json::parse(in);
    ASSERT_EQ(har["log"]["entries"].size(), 7u);
    std::size_t with_llm = 0;
    for (const auto& e : har["log"]["entries"]) {
        for (const auto& h : e["request"]["headers"]) {
            EXPECT_NE(h["name"], "Authorization") << "a filtered header stays out";
        }
        EXPECT_EQ(e["time"], 120);
        double sum = e["timings"]["send"].get<double>() + e["timings"]["wait"].get<double>() +
                     e["timings"]["receive"].get<double>();
        EXPECT_EQ(e["time"].get<double>(), sum);
        if (e.contains("_llm")) {
            ++with_llm;
            EXPECT_TRUE(e["_llm"].contains("usage"));
        }
        if (e["_record"] == "e1") {
            EXPECT_EQ(e["response"]["status"], 0);
            EXPECT_EQ(e["_error"]["kind"], "upstream_reset");
        }
        if (e["_record"] == "a2") {
            EXPECT_EQ(e["request"]["postData"]["mimeType"], "application/json");
            EXPECT_EQ(
                json::parse(
                    e["response"]["content"]["text"].get<std::string>())["usage"]["total_tokens"],
                150);
            EXPECT_EQ(e["_llm"]["usage"]["input_tokens"], 100);
        }
    }
    EXPECT_EQ(with_llm, 6u) << "every LLM call, the failed and refused ones too";
    // Selection applies to HAR as well.
    auto o = options(format::har, "ok.har");
    o.selection.status = status_filter::parse("ok");
    o.selection.hosts = {"api.openai.com"};
    EXPECT_EQ(run_export(o).written, 4u) << "three chat answers and the models listing";
}

TEST_F(ExportRun, HarBinaryAndCutBodiesAndTimings) {
    // An image download logged in base64, and a chat call whose request was cut at the capture
    // limit, with the live parser's time to first token.
    auto image = record("2026-11-05T10:00:00Z", "https://example.com/cat.png?size=2&x", "", 200,
                        base64_encode(std::string("\x89PNG\r\n\x1a\n\0\xff", 10)), "image/png");
    image["response"]["body_encoding"] = "base64";
    put("img", image);
    auto cut = chat_record("2026-11-05T10:01:00Z", {user("long")}, "ok");
    cut["request"]["body_truncated"] = true;
    cut["request"]["body_size"] = 5000000;
    cut["llm"] = {{"provider", "openai"},
                  {"api", "chat_completions"},
                  {"request_model", "gpt-4o-mini"},
                  {"response_model", "gpt-4o-mini-2024-07-18"},
                  {"stream", true},
                  {"usage", {{"input_tokens", 10}, {"output_tokens", 5}}},
                  {"cost_usd", nullptr},
                  {"output", {{"role", "assistant"}, {"content", "ok"}}},
                  {"finish_reason", "stop"},
                  {"first_token_ms", 45},
                  {"incomplete", false}};
    put("cut", cut);
    auto s = run_export(options(format::har, "t.har"));
    EXPECT_EQ(s.written, 2u);
    EXPECT_EQ(check_file(work_ / "t.har", format::har).problem_count, 0u);
    std::ifstream in(work_ / "t.har");
    json har = json::parse(in);
    for (const auto& e : har["log"]["entries"]) {
        if (e["_record"] == "img") {
            EXPECT_EQ(e["response"]["content"]["encoding"], "base64");
            EXPECT_EQ(e["response"]["content"]["size"], 10);
            EXPECT_EQ(e["response"]["content"]["mimeType"], "image/png");
            EXPECT_EQ(e["request"]["queryString"],
                      json::parse(R"([{"name":"size","value":"2"},{"name":"x","value":""}])"));
            EXPECT_FALSE(e["request"].contains("postData"));
            EXPECT_FALSE(e.contains("_llm"));
            EXPECT_EQ(e["timings"]["wait"], 120);
        } else {
            EXPECT_EQ(e["request"]["_truncated"], true);
            EXPECT_EQ(e["request"]["bodySize"], 5000000);
            EXPECT_EQ(e["timings"]["wait"], 45) << "the time to the first token";
            EXPECT_EQ(e["timings"]["receive"], 75);
            EXPECT_EQ(e["time"], 120);
            EXPECT_EQ(e["_llm"]["first_token_ms"], 45);
            EXPECT_FALSE(e.contains("_llm_computed"));
        }
    }
    // The cut request makes no fine-tuning example.
    auto chat = run_export(options(format::openai_chat));
    EXPECT_EQ(chat.skipped["request body cut at the capture limit"], 1u);
}

TEST_F(ExportRun, JsonlLinesFollowTheSchema) {
    mixed_set();
    auto o = options(format::jsonl, "calls.jsonl");
    o.selection.status = status_filter::parse("all");
    auto s = run_export(o);
    EXPECT_EQ(s.written, 6u);
    auto check = check_file(work_ / "calls.jsonl", format::jsonl);
    EXPECT_EQ(check.problem_count, 0u) << check.problems.front().message;
    for (const auto& l : lines("calls.jsonl")) {
        if (l["record"] == "c1") {
            EXPECT_EQ(l["status"], 429);
            EXPECT_EQ(l["error"], "slow down");
        }
        if (l["record"] == "b1") {
            EXPECT_EQ(l["provider"], "anthropic");
            EXPECT_EQ(l["messages"][0]["role"], "system");
            EXPECT_EQ(l["output"]["content"], "Hello.");
            EXPECT_EQ(l["latency_ms"], 120);
        }
    }
}

TEST_F(ExportRun, RecordsWithAndWithoutTheLlmObjectGiveTheSameExample) {
    auto r = chat_record("2026-11-01T10:00:00Z", {user("hello")}, "hi there");
    put("computed", r);
    auto first = run_export(options(format::openai_chat));
    auto computed = lines("out.jsonl");
    fs::remove(work_ / "records" / "computed.json");
    // The proxy's own llm object, with a different answer text than the body: it is used.
    r["llm"] = {{"provider", "openai"},
                {"api", "chat_completions"},
                {"request_model", "gpt-4o-mini"},
                {"response_model", "gpt-4o-mini-2024-07-18"},
                {"stream", false},
                {"usage", {{"input_tokens", 10}, {"output_tokens", 5}}},
                {"cost_usd", nullptr},
                {"output", {{"role", "assistant"}, {"content", "hi there"}}},
                {"finish_reason", "stop"},
                {"incomplete", false}};
    put("live", r);
    auto live = run_export(options(format::openai_chat));
    EXPECT_EQ(lines("out.jsonl"), computed);
    EXPECT_EQ(first.written, 1u);
    // The usage is read from the llm object as from the body.
    EXPECT_EQ(first.tokens, std::vector<std::uint64_t>{15});
    EXPECT_EQ(live.tokens, std::vector<std::uint64_t>{15});
    EXPECT_EQ(live.without_usage, 0u);
}

TEST_F(ExportRun, MissingInputsAndUnwritableOutputs) {
    auto o = options(format::openai_chat);
    o.inputs = {work_ / "nope"};
    EXPECT_THROW(run_export(o), std::invalid_argument);
    fs::create_directories(work_ / "records");
    o = options(format::openai_chat, "no/such/dir/out.jsonl");
    EXPECT_THROW(run_export(o), std::runtime_error);
}

// Reverse (base-URL) mode and the LLM features: a request through a base URL becomes the same
// flow as one through the forward proxy (same record, same llm object), SSE streams as it
// arrives, and the OpenAI Node SDK works with just `baseURL` pointed at the proxy.
#include "e2e_fixture.hpp"
#include "support/node_sdk.hpp"

namespace llm_proxy::test {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string chat_request =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})";
const std::string stream_request =
    R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]})";

std::int64_t sent_at_us(const sse_event& e) {
    return json::parse(e.data)["sent_at_us"].get<std::int64_t>();
}
std::int64_t received_us(const sse_event& e) {
    return std::chrono::duration_cast<std::chrono::microseconds>(e.received.time_since_epoch())
        .count();
}

}  // namespace

class ReverseLlm : public e2e_test {
  protected:
    http_client direct_client() {
        client_options o;
        o.timeout = std::chrono::seconds(10);
        return http_client(o);
    }
};

TEST_F(ReverseLlm, RecordIsTheSameAsThroughTheForwardPath) {
    start_dir_logger({"--reverse", "https://api.openai.com"});
    const header_list h = {{"Content-Type", "application/json"}, {"X-Way", "forward"}};
    auto proxied = proxied_client();
    ASSERT_EQ(proxied.post("https://api.openai.com/v1/chat/completions", chat_request, h).status,
              200u);
    auto forward = wait_for_records(1);
    ASSERT_EQ(forward.size(), 1u);
    auto direct = direct_client();
    auto r = direct.post(proxy_->url() + "/v1/chat/completions", chat_request,
                         {{"Content-Type", "application/json"}, {"X-Way", "reverse"}});
    ASSERT_EQ(r.status, 200u) << r.body;
    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    const json& fwd = forward[0];
    const json& rev =
        records[0]["request"]["header"]["X-Way"][0] == "reverse" ? records[0] : records[1];
    ASSERT_EQ(rev["request"]["header"]["X-Way"][0], "reverse");
    EXPECT_EQ(rev["request"]["url"], "https://api.openai.com/v1/chat/completions");
    EXPECT_EQ(rev["request"]["url"], fwd["request"]["url"]);
    EXPECT_EQ(rev["request"]["header"]["Host"], fwd["request"]["header"]["Host"]);
    EXPECT_EQ(rev["request"]["body"], fwd["request"]["body"]);
    ASSERT_TRUE(rev.contains("llm")) << rev.dump(2);
    ASSERT_TRUE(fwd.contains("llm"));
    EXPECT_EQ(rev["llm"]["usage"], fwd["llm"]["usage"]);
    EXPECT_EQ(rev["llm"]["usage"]["output_tokens"], 33);
    EXPECT_EQ(rev["llm"]["output"], fwd["llm"]["output"]);
    EXPECT_EQ(rev["llm"]["response_model"], fwd["llm"]["response_model"]);
    json rev_keys = json::array();
    json fwd_keys = json::array();
    for (auto& [k, v] : rev.items()) {
        rev_keys.push_back(k);
    }
    for (auto& [k, v] : fwd.items()) {
        fwd_keys.push_back(k);
    }
    EXPECT_EQ(rev_keys, fwd_keys) << "the same kind of record";
}

TEST_F(ReverseLlm, SseStreamsAsItArrives) {
    start_dir_logger({"--reverse", "/openai=https://api.openai.com/v1"});
    auto client = direct_client();
    auto result = read_sse_stream(client, proxy_->url() + "/openai/chat/completions",
                                  {{"Content-Type", "application/json"},
                                   {"X-Fake-Events", "6"},
                                   {"X-Fake-Interval-Ms", "150"}},
                                  stream_request);
    ASSERT_EQ(result.status, 200u) << result.raw;
    ASSERT_EQ(result.events.size(), 7u);  // 6 chunks + [DONE]
    EXPECT_EQ(result.events.back().data, "[DONE]");
    for (std::size_t i = 0; i + 2 < result.events.size(); ++i) {
        // Each event reaches the client before the upstream wrote the next one: an ordering,
        // not a latency bound.
        EXPECT_LT(received_us(result.events[i]), sent_at_us(result.events[i + 1])) << i;
    }
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["request"]["url"], "https://api.openai.com/v1/chat/completions");
    EXPECT_EQ(records[0]["llm"]["output"]["content"], "tok0 tok1 tok2 tok3 tok4 tok5 ");
}

TEST_F(ReverseLlm, OpenAiNodeSdkWithABaseUrlStreamsAChatCompletion) {
    ASSERT_EQ(missing_node_packages({"openai"}), "");
    start_dir_logger({"--reverse", "https://api.openai.com"});
    std::string script = R"JS(
const { OpenAI } = require('openai');
const client = new OpenAI({ apiKey: 'sk-test', baseURL: process.argv[2] + '/v1', maxRetries: 0 });
(async () => {
  const stream = client.beta.chat.completions.stream(
    { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'X-Fake-Events': '4' } });
  const done = await stream.finalChatCompletion();
  console.log(JSON.stringify(done.choices[0].message));
})().catch((e) => { console.error(String(e)); process.exit(1); });
)JS";
    auto path = work_.write_file("reverse_sdk.js", script);
    auto r = run_node_script(path, {proxy_->url()});  // no proxy agent, no CA
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto message = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(message.is_object()) << r.out;
    EXPECT_EQ(message["content"], "tok0 tok1 tok2 tok3 ");
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["request"]["url"], "https://api.openai.com/v1/chat/completions");
    EXPECT_EQ(records[0]["llm"]["output"]["content"], message["content"]);
}

}  // namespace llm_proxy::test

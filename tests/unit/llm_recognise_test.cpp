#include <gtest/gtest.h>

#include "llm_proxy/llm/parser.hpp"
#include "llm_proxy/llm/recognise.hpp"

using namespace llm_proxy;
using llm::api;
using llm::provider;

namespace {

void expect_call(const std::optional<llm::endpoint>& e, provider p, api a) {
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->provider, p);
    EXPECT_EQ(e->api, a);
}

}  // namespace

TEST(LlmCall, NamesRoundTrip) {
    EXPECT_STREQ(llm::to_string(provider::google), "google");
    EXPECT_STREQ(llm::to_string(api::generate_content), "generate_content");
    EXPECT_EQ(llm::provider_from_string("anthropic"), provider::anthropic);
    EXPECT_EQ(llm::provider_from_string("Anthropic"), std::nullopt);
    EXPECT_EQ(llm::api_from_string("chat_completions"), api::chat_completions);
    EXPECT_EQ(llm::api_from_string("chat"), std::nullopt);
    llm::usage u;
    EXPECT_TRUE(u.empty());
    u.output_audio_tokens = 0;
    EXPECT_FALSE(u.empty());
}

TEST(LlmRecognise, BuiltInHosts) {
    expect_call(llm::recognise("api.openai.com", "/v1/chat/completions", "POST"), provider::openai,
                api::chat_completions);
    expect_call(llm::recognise("api.openai.com:443", "/v1/completions", "POST"), provider::openai,
                api::completions);
    expect_call(llm::recognise("API.OpenAI.com", "/v1/responses?x=1", "POST"), provider::openai,
                api::responses);
    expect_call(llm::recognise("api.openai.com", "/v1/embeddings", "POST"), provider::openai,
                api::embeddings);
    expect_call(llm::recognise("api.anthropic.com", "/v1/messages", "POST"), provider::anthropic,
                api::messages);
    expect_call(
        llm::recognise("api.openai.com", "https://api.openai.com/v1/chat/completions", "POST"),
        provider::openai, api::chat_completions);

    EXPECT_FALSE(llm::recognise("api.openai.com", "/v1/chat/completions", "GET"));
    EXPECT_FALSE(llm::recognise("api.openai.com", "/v1/models", "POST"));
    EXPECT_FALSE(llm::recognise("api.openai.com", "/v1/responses/resp_1/cancel", "POST"));
    EXPECT_FALSE(llm::recognise("api.anthropic.com", "/v1/messages/count_tokens", "POST"));
    EXPECT_FALSE(llm::recognise("api.anthropic.com", "/v1/messages/batches", "POST"));
    EXPECT_FALSE(llm::recognise("api.openai.com", "/v2/chat/completions", "POST"));
}

TEST(LlmRecognise, GeminiModelAndStreamFromThePath) {
    auto e =
        llm::recognise("generativelanguage.googleapis.com",
                       "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "POST");
    expect_call(e, provider::google, api::generate_content);
    EXPECT_EQ(e->path_model, "gemini-2.5-flash");
    EXPECT_TRUE(e->path_stream);

    e = llm::recognise("generativelanguage.googleapis.com",
                       "/v1/models/gemini-2.0-flash%3AgenerateContent", "POST");
    expect_call(e, provider::google, api::generate_content);
    EXPECT_EQ(e->path_model, "gemini-2.0-flash");
    EXPECT_FALSE(e->path_stream);

    auto facts = llm::read_request(*e, R"({"contents":[{"parts":[{"text":"hi"}]}]})");
    EXPECT_EQ(facts.model, "gemini-2.0-flash");
    EXPECT_FALSE(facts.stream);

    EXPECT_FALSE(llm::recognise("generativelanguage.googleapis.com",
                                "/v1beta/models/gemini-2.0-flash:countTokens", "POST"));
    EXPECT_FALSE(llm::recognise("generativelanguage.googleapis.com",
                                "/v2/models/gemini-2.0-flash:generateContent", "POST"));
}

TEST(LlmRecognise, MappedHostsUseTheProviderRulesWithAnyPrefix) {
    llm::host_map hosts;
    ASSERT_EQ(llm::parse_host_mapping("myco.openai.azure.com=openai", hosts), std::nullopt);
    ASSERT_EQ(llm::parse_host_mapping("openrouter.ai=openai", hosts), std::nullopt);
    ASSERT_EQ(llm::parse_host_mapping("localhost:11434=openai", hosts), std::nullopt);
    ASSERT_EQ(llm::parse_host_mapping("gateway.internal=anthropic", hosts), std::nullopt);
    ASSERT_EQ(llm::parse_host_mapping("vertex.example=GOOGLE", hosts), std::nullopt);

    expect_call(llm::recognise("myco.openai.azure.com",
                               "/openai/deployments/gpt4o-prod/chat/completions"
                               "?api-version=2024-10-21",
                               "POST", hosts),
                provider::openai, api::chat_completions);
    expect_call(llm::recognise("openrouter.ai", "/api/v1/chat/completions", "POST", hosts),
                provider::openai, api::chat_completions);
    expect_call(llm::recognise("localhost:11434", "/v1/embeddings", "POST", hosts),
                provider::openai, api::embeddings);
    // The mapping names a port: another port of the same host is not mapped.
    EXPECT_FALSE(llm::recognise("localhost:8000", "/v1/embeddings", "POST", hosts));
    expect_call(llm::recognise("gateway.internal", "/anthropic/v1/messages", "POST", hosts),
                provider::anthropic, api::messages);
    auto e = llm::recognise("vertex.example",
                            "/v1/projects/p/locations/us/publishers/google/models/"
                            "gemini-2.5-pro:streamGenerateContent",
                            "POST", hosts);
    expect_call(e, provider::google, api::generate_content);
    EXPECT_EQ(e->path_model, "gemini-2.5-pro");
    // A mapped host answers only its provider's paths.
    EXPECT_FALSE(llm::recognise("gateway.internal", "/v1/chat/completions", "POST", hosts));
}

TEST(LlmRecognise, HostMappingErrors) {
    llm::host_map hosts;
    EXPECT_TRUE(llm::parse_host_mapping("example.com", hosts).has_value());
    EXPECT_TRUE(llm::parse_host_mapping("example.com=mistral", hosts).has_value());
    EXPECT_TRUE(llm::parse_host_mapping("=openai", hosts).has_value());
    EXPECT_TRUE(llm::parse_host_mapping("example.com:99999=openai", hosts).has_value());
    EXPECT_TRUE(llm::parse_host_mapping("http://example.com=openai", hosts).has_value());
    EXPECT_TRUE(hosts.entries.empty());
    ASSERT_EQ(llm::parse_host_mapping("[::1]:8080=anthropic", hosts), std::nullopt);
    EXPECT_EQ(hosts.find("[::1]:8080"), provider::anthropic);
    EXPECT_EQ(hosts.find("[::1]:8081"), std::nullopt);
}

TEST(LlmRecognise, UnknownHostsByPathSuffix) {
    expect_call(llm::recognise("vllm.local:8000", "/v1/chat/completions", "POST"), provider::openai,
                api::chat_completions);
    expect_call(llm::recognise("llm.example", "/proxy/v1/messages", "POST"), provider::anthropic,
                api::messages);
    EXPECT_FALSE(llm::recognise("llm.example", "/v1/completions", "POST"));
    EXPECT_FALSE(llm::recognise("llm.example", "/v1/responses", "POST"));
    EXPECT_FALSE(llm::recognise("www.example", "/index.html", "POST"));
}

TEST(LlmRequest, Facts) {
    llm::endpoint e;
    auto f = llm::read_request(
        e, R"({"messages":[{"role":"user","content":"hi","model":"inner"}],"model":"gpt-4o",)"
           R"("stream":true,"stream_options":{"include_usage":true},"n":2})");
    EXPECT_EQ(f.model, "gpt-4o");
    EXPECT_TRUE(f.stream);
    EXPECT_TRUE(f.include_usage);

    f = llm::read_request(e, R"({"model":"gpt-4o","stream":false,"x":{"include_usage":true}})");
    EXPECT_EQ(f.model, "gpt-4o");
    EXPECT_FALSE(f.stream);
    EXPECT_FALSE(f.include_usage);

    for (std::string_view bad : {"", "{", "[1,2]", "\"text\"", "{\"model\":12,", "{model:\"a\"}"}) {
        f = llm::read_request(e, bad);
        EXPECT_EQ(f.model, "") << bad;
        EXPECT_FALSE(f.stream) << bad;
    }

    // A body cut short (captured up to a limit): the members before the cut count.
    f = llm::read_request(
        e, R"({ "model" : "gpt-\"4o\"", "stream": true, "stream_options": {"include_usage": true},)"
           R"( "messages": [{"role": "user", "content": "a long {[ conversation \" ]} cut)");
    EXPECT_EQ(f.model, "gpt-\"4o\"");
    EXPECT_TRUE(f.stream);
    EXPECT_TRUE(f.include_usage);
    f = llm::read_request(e,
                          R"({"messages": [{"role": "user", "content": "x"}], "model": "gpt-4o)");
    EXPECT_EQ(f.model, "") << "the model after the cut is not known";
    f = llm::read_request(e, R"({"model": "gpt-4o", "stream": tr)");
    EXPECT_EQ(f.model, "gpt-4o");
    EXPECT_FALSE(f.stream) << "a literal cut short is not read";

    auto c = llm::call_from_request(e, llm::read_request(e, R"({"model":"m","stream":true})"));
    EXPECT_EQ(c.request_model, "m");
    EXPECT_TRUE(c.stream);
    EXPECT_EQ(c.api, api::chat_completions);
}

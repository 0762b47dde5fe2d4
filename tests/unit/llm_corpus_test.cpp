// The llm-streams corpus (../shared/data/llm-streams): response bodies recorded from the real
// APIs by the providers' SDK test suites, with the values the SDKs reassemble from them. Every
// case is fed whole and in pieces of 1, 7 and 4096 bytes; every field its meta.json marks as
// compared must match.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "llm_proxy/llm/parser.hpp"
#include "llm_proxy/llm/recognise.hpp"

using namespace llm_proxy;
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

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
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

llm::call reassemble(const llm::endpoint& e, const llm::request_facts& r, const std::string& body,
                     std::size_t piece) {
    llm::response_parser parser(e, r);
    if (piece == 0) {
        parser.feed(body);
    } else {
        for (std::size_t at = 0; at < body.size(); at += piece) {
            parser.feed(std::string_view(body).substr(at, piece));
        }
    }
    return parser.finish(true);
}

std::optional<std::string> optional_string(const nlohmann::json& j) {
    if (j.is_null()) {
        return std::nullopt;
    }
    return j.get<std::string>();
}

// The usage fields the corpus states; a field absent from `expected` must be absent here too,
// unless the provider's body reports it under one of its own names: the corpus's reference
// reads streams through the SDKs' types, and Anthropic's streamed MessageDeltaUsage type has no
// output_tokens_details, so the reference drops the thinking_tokens that the API did send.
void expect_usage(const llm::usage& u, const nlohmann::json& expected, std::string_view body) {
    const std::pair<const char*, std::vector<std::string_view>> reported_as[] = {
        {"reasoning_tokens",
         {"\"thinking_tokens\"", "\"reasoning_tokens\"", "\"thoughtsTokenCount\""}},
    };
    auto provider_reported = [&](std::string_view name) {
        for (const auto& [field, keys] : reported_as) {
            if (name == field) {
                return std::any_of(keys.begin(), keys.end(), [&](std::string_view k) {
                    return body.find(k) != std::string_view::npos;
                });
            }
        }
        return false;
    };
    const std::pair<const char*, const std::optional<std::uint64_t>*> fields[] = {
        {"input_tokens", &u.input_tokens},           {"output_tokens", &u.output_tokens},
        {"cache_read_tokens", &u.cache_read_tokens}, {"cache_write_tokens", &u.cache_write_tokens},
        {"reasoning_tokens", &u.reasoning_tokens},
    };
    for (const auto& [name, value] : fields) {
        SCOPED_TRACE(name);
        if (expected.contains(name)) {
            ASSERT_TRUE(value->has_value());
            EXPECT_EQ(**value, expected[name].get<std::uint64_t>());
        } else if (!provider_reported(name)) {
            EXPECT_FALSE(value->has_value()) << "= " << **value;
        }
    }
    for (const auto& [key, value] : expected.items()) {
        bool known = std::any_of(std::begin(fields), std::end(fields),
                                 [&key = key](const auto& f) { return key == f.first; });
        EXPECT_TRUE(known) << "the corpus states a usage field this test does not compare: " << key;
    }
}

class LlmCorpus : public testing::TestWithParam<std::string> {};

TEST_P(LlmCorpus, Reassembles) {
    if (GetParam() == missing_case) {
        GTEST_SKIP() << "the llm-streams corpus is not at " << corpus_dir()
                     << " (set LLM_PROXY_SHARED_DIR to the shared folder)";
    }
    const fs::path dir = corpus_dir() / GetParam();
    const auto meta = nlohmann::json::parse(read_file(dir / "meta.json"));
    const auto& expected = meta.at("expected");
    const auto& compare = meta.at("compare");
    const std::string request = read_file(dir / "request.json");
    const std::string body = read_file(dir / "response.bin");

    auto e = llm::recognise(meta.at("host").get<std::string>(), meta.at("path").get<std::string>(),
                            meta.value("method", "POST"));
    ASSERT_TRUE(e.has_value()) << "not recognised as an LLM call";
    const auto facts = llm::read_request(*e, request);

    for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4096}}) {
        SCOPED_TRACE(piece == 0 ? std::string("whole body") : "pieces of " + std::to_string(piece));
        const llm::call c = reassemble(*e, facts, body, piece);
        const llm::answer none;
        const llm::answer& first = c.answers.empty() ? none : c.answers.front();

        if (compare.value("provider", false)) {
            EXPECT_EQ(llm::to_string(c.provider), expected.at("provider").get<std::string>());
        }
        if (compare.value("api", false)) {
            EXPECT_EQ(llm::to_string(c.api), expected.at("api").get<std::string>());
        }
        if (compare.value("request_model", false)) {
            EXPECT_EQ(c.request_model, expected.at("request_model").is_null()
                                           ? ""
                                           : expected.at("request_model").get<std::string>());
        }
        if (compare.value("response_model", false)) {
            EXPECT_EQ(c.response_model, expected.at("response_model").is_null()
                                            ? ""
                                            : expected.at("response_model").get<std::string>());
        }
        if (compare.value("stream", false)) {
            EXPECT_EQ(c.stream, expected.at("stream").get<bool>());
        }
        if (compare.value("usage", false)) {
            expect_usage(c.usage, expected.at("usage"), body);
        }
        if (compare.value("content", false)) {
            EXPECT_EQ(first.content, optional_string(expected.at("content")));
        }
        if (compare.value("finish_reason", false)) {
            EXPECT_EQ(first.finish_reason, optional_string(expected.at("finish_reason")));
        }
        if (compare.value("reasoning", false)) {
            EXPECT_EQ(first.reasoning, optional_string(expected.at("reasoning")));
        }
        if (compare.value("tool_calls", false)) {
            const auto& calls = expected.at("tool_calls");
            ASSERT_EQ(first.tool_calls.size(), calls.size());
            for (std::size_t i = 0; i < calls.size(); ++i) {
                SCOPED_TRACE("tool call " + std::to_string(i));
                EXPECT_EQ(first.tool_calls[i].id, calls[i].at("id").get<std::string>());
                EXPECT_EQ(first.tool_calls[i].name, calls[i].at("name").get<std::string>());
                EXPECT_EQ(first.tool_calls[i].arguments,
                          calls[i].at("arguments").get<std::string>());
            }
        }
        if (meta.contains("info") && meta["info"].contains("n_choices")) {
            EXPECT_EQ(c.answers.size(), meta["info"]["n_choices"].get<std::size_t>());
        }
        EXPECT_FALSE(c.error.has_value()) << *c.error;
        EXPECT_FALSE(first.truncated);
    }
}

INSTANTIATE_TEST_SUITE_P(LlmStreams, LlmCorpus, testing::ValuesIn(corpus_cases()), test_name);

}  // namespace

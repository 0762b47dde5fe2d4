// Prices of 200 real usages (OpenAI chat / responses, Anthropic messages) against the values the
// genai-prices Python package computed for them, from ../shared/data (not in this repository):
// genai-prices/data.json (the price table) and llm-costs/sample.json (the usages).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "llm_proxy/llm/prices.hpp"

using namespace llm_proxy::llm;
using json = nlohmann::json;

namespace {

std::filesystem::path shared_dir() {
    if (const char* env = std::getenv("LLM_PROXY_SHARED_DIR"); env && *env) {
        return env;
    }
    return LLM_PROXY_SHARED_DIR;
}

std::optional<std::string> read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

const std::filesystem::path data_json = shared_dir() / "data/genai-prices/data.json";
const std::filesystem::path sample_json = shared_dir() / "data/llm-costs/sample.json";

// "2025-11-06T12:00:00Z"
std::chrono::system_clock::time_point parse_utc(const std::string& s) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    char z = 0;
    EXPECT_EQ(std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d%c", &y, &mo, &d, &h, &mi, &sec, &z), 7)
        << s;
    EXPECT_EQ(z, 'Z') << s;
    std::chrono::sys_days day{std::chrono::year{y} / mo / d};
    return day + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{sec};
}

std::optional<provider> provider_from_id(const std::string& id) {
    for (provider p : {provider::openai, provider::anthropic, provider::google}) {
        if (id == to_string(p)) {
            return p;
        }
    }
    return std::nullopt;
}

std::optional<std::uint64_t> count(const json& obj, std::initializer_list<const char*> path) {
    const json* v = &obj;
    for (const char* key : path) {
        if (!v->is_object()) {
            return std::nullopt;
        }
        auto it = v->find(key);
        if (it == v->end()) {
            return std::nullopt;
        }
        v = &*it;
    }
    if (!v->is_number_unsigned()) {
        return std::nullopt;
    }
    return v->get<std::uint64_t>();
}

// The usage object as the response parsers fill llm::usage from it.
usage to_usage(const std::string& api, const json& u) {
    usage r;
    if (api == "chat_completions") {
        r.input_tokens = count(u, {"prompt_tokens"});
        r.output_tokens = count(u, {"completion_tokens"});
        r.cache_read_tokens = count(u, {"prompt_tokens_details", "cached_tokens"});
        r.cache_write_tokens = count(u, {"prompt_tokens_details", "cache_write_tokens"});
        r.input_audio_tokens = count(u, {"prompt_tokens_details", "audio_tokens"});
        r.reasoning_tokens = count(u, {"completion_tokens_details", "reasoning_tokens"});
        r.output_audio_tokens = count(u, {"completion_tokens_details", "audio_tokens"});
    } else if (api == "responses") {
        r.input_tokens = count(u, {"input_tokens"});
        r.output_tokens = count(u, {"output_tokens"});
        r.cache_read_tokens = count(u, {"input_tokens_details", "cached_tokens"});
        r.cache_write_tokens = count(u, {"input_tokens_details", "cache_write_tokens"});
        r.reasoning_tokens = count(u, {"output_tokens_details", "reasoning_tokens"});
    } else if (api == "messages") {
        auto in = count(u, {"input_tokens"});
        auto created = count(u, {"cache_creation_input_tokens"});
        auto read = count(u, {"cache_read_input_tokens"});
        if (in || created || read) {
            r.input_tokens = in.value_or(0) + created.value_or(0) + read.value_or(0);
        }
        r.output_tokens = count(u, {"output_tokens"});
        r.cache_read_tokens = read;
        r.cache_write_tokens = created;
        r.cache_write_1h_tokens = count(u, {"cache_creation", "ephemeral_1h_input_tokens"});
        r.reasoning_tokens = count(u, {"output_tokens_details", "thinking_tokens"});
    } else {
        ADD_FAILURE() << "unknown api " << api;
    }
    return r;
}

struct sample_case {
    std::string name;
    json body;
};

std::vector<sample_case> load_cases() {
    std::vector<sample_case> out;
    auto text = read_text(sample_json);
    if (!text) {
        return out;
    }
    json doc = json::parse(*text);
    for (auto& c : doc.at("cases")) {
        std::string name = c.at("name").get<std::string>();
        c["price_timestamp"] = doc.at("price_timestamp");
        out.push_back({name, c});
    }
    return out;
}

const price_table* shared_table() {
    static const std::optional<price_table> table = []() -> std::optional<price_table> {
        auto text = read_text(data_json);
        if (!text) {
            return std::nullopt;
        }
        return price_table::parse(*text);
    }();
    return table ? &*table : nullptr;
}

void expect_price(const price_table& table, const json& c) {
    auto p = provider_from_id(c.at("provider").get<std::string>());
    ASSERT_TRUE(p);
    usage u = to_usage(c.at("api").get<std::string>(), c.at("usage"));
    auto at = parse_utc(c.at("price_timestamp").get<std::string>());
    auto r = table.price(*p, c.at("model").get<std::string>(), u, at);
    ASSERT_TRUE(r.has_value()) << c.at("model");
    auto expect = [&](const char* key) {
        auto v = money::parse(c.at("expected").at(key).get<std::string>());
        EXPECT_TRUE(v.has_value());
        return v.value_or(money{});
    };
    EXPECT_EQ(r->input, expect("input_price")) << r->input.to_string() << " model " << r->model_id;
    EXPECT_EQ(r->output, expect("output_price")) << r->output.to_string();
    EXPECT_EQ(r->total, expect("total")) << r->total.to_string();
}

// Every case of the sample, each failure named by its case. One test rather than one per case:
// a parameterized suite would read and parse the sample in every process the test binary is
// started for (each test of the suite runs in its own), half a second under the sanitizers.
TEST(PriceSample, EveryCaseMatchesGenaiPricesExactly) {
    const price_table* table = shared_table();
    if (!table) {
        GTEST_SKIP() << "no price table at " << data_json
                     << " (a checkout of `shared` next to the repository, or LLM_PROXY_SHARED_DIR)";
    }
    auto cases = load_cases();
    ASSERT_FALSE(cases.empty()) << "no usage sample at " << sample_json;
    for (const auto& c : cases) {
        SCOPED_TRACE("case " + c.name);
        expect_price(*table, c.body);
    }
}

// The sample must be there and complete when the shared data is: a missing or empty sample is a
// skip that names the file, never a silent pass.
TEST(PriceSample, HasAllCases) {
    if (!std::filesystem::exists(sample_json)) {
        GTEST_SKIP() << "no usage sample at " << sample_json
                     << " (a checkout of `shared` next to the repository, or LLM_PROXY_SHARED_DIR)";
    }
    EXPECT_EQ(load_cases().size(), 200u);
}

TEST(PriceSample, SharedTableLoads) {
    if (!std::filesystem::exists(data_json)) {
        GTEST_SKIP() << "no price table at " << data_json;
    }
    const price_table* t = shared_table();
    ASSERT_NE(t, nullptr);
    EXPECT_GT(t->providers().size(), 30u);
}

// The built-in table prices like the table it was derived from.
TEST(PriceSample, BuiltinAgreesWithSharedTable) {
    const price_table* shared = shared_table();
    if (!shared) {
        GTEST_SKIP() << "no price table at " << data_json;
    }
    auto at = parse_utc("2026-08-01T12:00:00Z");
    usage u;
    u.input_tokens = 123456;
    u.cache_read_tokens = 20000;
    u.cache_write_tokens = 3000;
    u.output_tokens = 4567;
    u.reasoning_tokens = 1000;
    struct probe {
        provider p;
        const char* model;
    };
    for (auto [p, model] :
         {probe{provider::openai, "gpt-4o-mini"}, probe{provider::openai, "gpt-4o-mini-2024-07-18"},
          probe{provider::anthropic, "claude-sonnet-4-20250514"},
          probe{provider::anthropic, "claude-sonnet-4-5"},
          probe{provider::google, "gemini-2.5-flash"}, probe{provider::google, "gemini-2.5-pro"}}) {
        auto a = price_table::builtin().price(p, model, u, at);
        auto b = shared->price(p, model, u, at);
        ASSERT_TRUE(a && b) << model;
        EXPECT_EQ(a->input, b->input) << model;
        EXPECT_EQ(a->output, b->output) << model;
        EXPECT_EQ(a->total, b->total) << model;
        EXPECT_EQ(a->model_id, b->model_id) << model;
    }
}

}  // namespace

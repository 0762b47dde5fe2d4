#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <string>

#include "llm_proxy/llm/prices.hpp"

using namespace llm_proxy::llm;
using std::chrono::system_clock;

namespace {

money m(const char* text) {
    auto v = money::parse(text);
    EXPECT_TRUE(v.has_value()) << text;
    return v.value_or(money{});
}

system_clock::time_point utc(int y, unsigned mo, unsigned d, int h = 12, int mi = 0) {
    return std::chrono::sys_days{std::chrono::year{y} / mo / d} + std::chrono::hours{h} +
           std::chrono::minutes{mi};
}

usage tokens(std::uint64_t in, std::uint64_t out) {
    usage u;
    u.input_tokens = in;
    u.output_tokens = out;
    return u;
}

// A small table in the genai-prices v2 format with one construct per model.
const char* const test_table = R"json([
 {
  "id": "openai", "name": "OpenAI", "api_pattern": "https://api\\.openai\\.com",
  "model_match": {"or": [{"starts_with": "gpt-"}, {"regex": "^o[134]"}]},
  "provider_match": {"contains": "openai"},
  "models": [
   {"id": "eq", "name": "Equals", "match": {"equals": "model-eq"},
    "prices": {"input_mtok": 2.5, "cache_read_mtok": 1.25, "output_mtok": 10}},
   {"id": "sw", "match": {"starts_with": "model-sw"}, "prices": {"input_mtok": 1, "output_mtok": 2}},
   {"id": "ew", "match": {"ends_with": "-ew"}, "prices": {"input_mtok": 1, "output_mtok": 2}},
   {"id": "ct", "match": {"contains": "middle"}, "prices": {"input_mtok": 1, "output_mtok": 2}},
   {"id": "re", "match": {"regex": "^rx-\\d{4}-\\d{2}$"}, "prices": {"input_mtok": 1, "output_mtok": 2}},
   {"id": "or", "match": {"or": [{"equals": "or-a"}, {"starts_with": "or-b"}]},
    "prices": {"input_mtok": 1, "output_mtok": 2}},
   {"id": "and", "match": {"and": [{"starts_with": "and-"}, {"ends_with": "-x"}]},
    "prices": {"input_mtok": 1, "output_mtok": 2}},
   {"id": "first", "match": {"starts_with": "dup"}, "prices": {"input_mtok": 1, "output_mtok": 1}},
   {"id": "second", "match": {"equals": "dup-exact"}, "prices": {"input_mtok": 9, "output_mtok": 9}},
   {"id": "tiered", "match": {"equals": "tiered"},
    "prices": {"input_mtok": {"base": 3, "tiers": [{"start": 200000, "price": 6}]},
               "cache_read_mtok": {"base": 0.3, "tiers": [{"start": 200000, "price": 0.6}]},
               "output_mtok": {"base": 15, "tiers": [{"start": 200000, "price": 22.5}]}}},
   {"id": "two-tiers", "match": {"equals": "two-tiers"},
    "prices": {"input_mtok": {"base": 1, "tiers": [{"start": 1000, "price": 2}, {"start": 2000, "price": 4}]}}},
   {"id": "dated", "match": {"equals": "dated"},
    "prices": [{"prices": {"input_mtok": 10, "output_mtok": 40}},
               {"constraint": {"start_date": "2025-06-10"}, "prices": {"input_mtok": 2, "output_mtok": 8}},
               {"constraint": {"start_date": "2026-01-01"}, "prices": {"input_mtok": 1, "output_mtok": 4}}]},
   {"id": "future-only", "match": {"equals": "future-only"},
    "prices": [{"constraint": {"start_date": "2030-01-01"}, "prices": {"input_mtok": 7}},
               {"constraint": {"start_date": "2031-01-01"}, "prices": {"input_mtok": 8}}]},
   {"id": "peak", "match": {"equals": "peak"},
    "prices": [{"prices": {"input_mtok": 0.135, "output_mtok": 0.55}},
               {"constraint": {"start_time": "00:30:00Z", "end_time": "16:30:00Z"},
                "prices": {"input_mtok": 0.27, "output_mtok": 1.1}}]},
   {"id": "night", "match": {"equals": "night"},
    "prices": [{"prices": {"input_mtok": 1}},
               {"constraint": {"start_time": "22:00:00+00:00", "end_time": "02:00:00Z"},
                "prices": {"input_mtok": 2}}]},
   {"id": "audio", "match": {"equals": "audio"},
    "prices": {"input_mtok": 2.5, "cache_read_mtok": 1.25, "output_mtok": 10, "input_audio_mtok": 40,
               "output_audio_mtok": 80}},
   {"id": "no-audio-price", "match": {"equals": "no-audio-price"},
    "prices": {"input_mtok": 2.5, "output_mtok": 10}},
   {"id": "cache", "match": {"equals": "cache"},
    "prices": {"input_mtok": 3, "cache_write_mtok": 3.75, "cache_read_mtok": 0.3, "output_mtok": 15,
               "cache_write_1h_mtok": 6, "web_searches_kcount": 10}},
   {"id": "reasoning", "match": {"equals": "reasoning"},
    "prices": {"input_mtok": 2, "output_mtok": 8, "output_reasoning_mtok": 3}},
   {"id": "per-request", "match": {"equals": "per-request"},
    "prices": {"input_mtok": 1, "output_mtok": 1, "requests_kcount": 12}},
   {"id": "float-artefact", "match": {"equals": "float-artefact"},
    "prices": {"input_mtok": 0.18000000000000002, "output_mtok": 0.1}},
   {"id": "free", "match": {"equals": "free"}, "prices": {}}
  ]
 },
 {
  "id": "google", "name": "Google", "api_pattern": "https://(.*\\.)?googleapis\\.com",
  "model_match": {"contains": "gemini"},
  "provider_match": {"or": [{"contains": "google"}, {"contains": "vertex"}]},
  "fallback_model_providers": ["anthropic"],
  "models": [{"id": "gemini-x", "match": {"starts_with": "gemini-x"}, "prices": {"input_mtok": 1}}]
 },
 {
  "id": "anthropic", "name": "Anthropic", "api_pattern": "https://api\\.anthropic\\.com",
  "model_match": {"contains": "claude"},
  "models": [{"id": "claude-y", "match": {"starts_with": "claude-y"}, "prices": {"input_mtok": 3}}]
 }
])json";

const price_table& table() {
    static const price_table t = price_table::parse(test_table);
    return t;
}

price_result price_of(const char* model, const usage& u,
                      system_clock::time_point at = utc(2025, 11, 6)) {
    auto r = table().price(provider::openai, model, u, at);
    EXPECT_TRUE(r.has_value()) << model;
    return r.value_or(price_result{});
}

std::string model_for(const char* model) {
    const provider_info* p = table().find_provider(provider::openai);
    auto f = table().find_model(*p, model);
    return f ? f->model->id : "";
}

std::string parse_error(const std::string& text) {
    try {
        price_table::parse(text);
    } catch (const price_data_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(PriceMatch, EachClauseKind) {
    EXPECT_EQ(model_for("model-eq"), "eq");
    EXPECT_EQ(model_for("model-eq-2024"), "");
    EXPECT_EQ(model_for("model-sw-2024-01-01"), "sw");
    EXPECT_EQ(model_for("x-model-sw"), "");
    EXPECT_EQ(model_for("some-ew"), "ew");
    EXPECT_EQ(model_for("some-ew-"), "");
    EXPECT_EQ(model_for("in-the-middle-of"), "ct");
    EXPECT_EQ(model_for("rx-2024-01"), "re");
    EXPECT_EQ(model_for("rx-2024-01-extra"), "");
    EXPECT_EQ(model_for("or-a"), "or");
    EXPECT_EQ(model_for("or-b-anything"), "or");
    EXPECT_EQ(model_for("or-c"), "");
    EXPECT_EQ(model_for("and-1-x"), "and");
    EXPECT_EQ(model_for("and-1-y"), "");
    // ASCII case is ignored, as genai-prices lower-cases both sides; regexes see the name
    // lower-cased.
    EXPECT_EQ(model_for("MODEL-EQ"), "eq");
    EXPECT_EQ(model_for("Model-SW-1"), "sw");
    EXPECT_EQ(model_for("RX-2024-01"), "re");
}

TEST(PriceMatch, RegexIsSearchedNotAnchored) {
    auto c = match_clause::from_json_text(R"({"regex": "(?:mi|code)stral"})");
    EXPECT_TRUE(c.matches("open-mistral-7b"));
    EXPECT_TRUE(c.matches("codestral-latest"));
    EXPECT_FALSE(c.matches("mixtral"));
    EXPECT_FALSE(c.matches("MISTRAL"));  // a regex is case-sensitive
    auto eq = match_clause::from_json_text(R"({"equals": "GLM-4"})");
    EXPECT_TRUE(eq.matches("glm-4"));
    EXPECT_TRUE(eq.matches("Glm-4"));
}

TEST(PriceMatch, FirstModelInDataOrderWins) {
    EXPECT_EQ(model_for("dup-exact"), "first");
}

TEST(PriceMatch, ReportsTheRuleThatMatched) {
    const provider_info* p = table().find_provider(provider::openai);
    auto f = table().find_model(*p, "or-b-1");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->rule, R"(starts_with "or-b")");
    EXPECT_EQ(f->provider, p);
    f = table().find_model(*p, "and-z-x");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->rule, R"(and [starts_with "and-", ends_with "-x"])");
    auto r = price_of("model-eq", tokens(1, 1));
    EXPECT_EQ(r.model_id, "eq");
    EXPECT_EQ(r.model_name, "Equals");
    EXPECT_EQ(r.provider_id, "openai");
    EXPECT_EQ(r.match_rule, R"(equals "model-eq")");
}

TEST(PriceMatch, RepeatedLookupsGiveTheSameAnswerInAnyCase) {
    const provider_info* p = table().find_provider(provider::openai);
    for (int i = 0; i < 3; ++i) {
        for (std::string_view name : {"or-b-1", "OR-B-1", "Or-B-1"}) {
            auto f = table().find_model(*p, name);
            ASSERT_TRUE(f) << name;
            EXPECT_EQ(f->rule, R"(starts_with "or-b")");
            EXPECT_EQ(f->provider, p);
        }
        EXPECT_FALSE(table().find_model(*p, "no-such-model"));
    }
}

TEST(PriceMatch, ACopiedTableAnswersWithItsOwnModels) {
    price_table original = table();
    const provider_info* p = original.find_provider(provider::openai);
    ASSERT_TRUE(original.find_model(*p, "model-eq"));  // now remembered by the original
    price_table copy = original;
    const provider_info* cp = copy.find_provider(provider::openai);
    auto f = copy.find_model(*cp, "model-eq");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->provider, cp);
    EXPECT_GE(f->model, cp->models.data());
    EXPECT_LT(f->model, cp->models.data() + cp->models.size());
    original = price_table{};  // the copy's answers do not point into the original
    EXPECT_EQ(copy.find_model(*cp, "model-eq")->model->id, "eq");
}

// The lookup cache holds 4,096 answers, then is emptied and fills again. With 4,095, 4,096
// and 4,097 distinct names looked up, every answer (matched or not, in any case) stays the
// one an uncached lookup gives: the same model, rule and provider of this table.
TEST(PriceMatch, LookupsStayCorrectAroundTheCacheBound) {
    for (int distinct : {4095, 4096, 4097}) {
        SCOPED_TRACE(distinct);
        const price_table t = price_table::parse(test_table);  // its own, empty cache
        const provider_info* p = t.find_provider(provider::openai);
        ASSERT_NE(p, nullptr);
        // Every third name matches "sw", every third "ew", the rest nothing.
        auto name = [](int i) {
            switch (i % 3) {
                case 0:
                    return "model-sw-" + std::to_string(i);
                case 1:
                    return "made-up-" + std::to_string(i) + "-ew";
                default:
                    return "no-such-" + std::to_string(i);
            }
        };
        auto expected = [](int i) -> std::string {
            switch (i % 3) {
                case 0:
                    return "sw";
                case 1:
                    return "ew";
                default:
                    return "";
            }
        };
        auto check = [&](int i, const std::string& n) {
            auto f = t.find_model(*p, n);
            if (expected(i).empty()) {
                EXPECT_FALSE(f) << n;
                return;
            }
            ASSERT_TRUE(f) << n;
            EXPECT_EQ(f->model->id, expected(i)) << n;
            EXPECT_EQ(f->provider, p) << n;
            EXPECT_GE(f->model, p->models.data()) << n;
            EXPECT_LT(f->model, p->models.data() + p->models.size()) << n;
            EXPECT_EQ(f->rule,
                      expected(i) == "sw" ? R"(starts_with "model-sw")" : R"(ends_with "-ew")")
                << n;
        };
        for (int i = 0; i < distinct; ++i) {
            check(i, name(i));
        }
        // Again, cached or not, and upper-cased (the same cache key).
        for (int i = 0; i < distinct; ++i) {
            check(i, name(i));
            std::string upper = name(i);
            for (auto& ch : upper) {
                ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            }
            check(i, upper);
        }
        auto eq = t.find_model(*p, "model-eq");
        ASSERT_TRUE(eq);
        EXPECT_EQ(eq->model->id, "eq");
        EXPECT_FALSE(t.find_model(*p, "no-such-model"));
    }
}

TEST(PriceMatch, ClauseToString) {
    auto c = match_clause::from_json_text(
        R"({"or": [{"equals": "a\"b"}, {"contains": "c"}, {"and": [{"regex": "^d"}, {"ends_with": "e"}]}]})");
    EXPECT_EQ(c.to_string(),
              R"(or [equals "a\"b", contains "c", and [regex "^d", ends_with "e"]])");
    EXPECT_EQ(c.type(), match_clause::kind::any_of);
    EXPECT_EQ(c.children().size(), 3u);
}

TEST(PriceProvider, FoundByIdUrlAndModel) {
    const auto& t = table();
    EXPECT_EQ(t.find_provider(provider::google)->id, "google");
    EXPECT_EQ(t.find_provider(" OpenAI ")->id, "openai");            // normalised id
    EXPECT_EQ(t.find_provider("azure-openai-proxy")->id, "openai");  // provider_match
    EXPECT_EQ(t.find_provider("google-vertex")->id, "google");
    EXPECT_EQ(t.find_provider("nobody"), nullptr);
    EXPECT_EQ(t.find_provider_by_url("https://api.openai.com")->id, "openai");
    EXPECT_EQ(t.find_provider_by_url("https://api.openai.com/v1")->id, "openai");
    EXPECT_EQ(t.find_provider_by_url("https://generativelanguage.googleapis.com")->id, "google");
    EXPECT_EQ(t.find_provider_by_url("https://api.anthropic.com")->id, "anthropic");
    EXPECT_EQ(t.find_provider_by_url("http://proxy/https://api.openai.com"), nullptr);
    EXPECT_EQ(t.find_provider_by_model("gpt-4o")->id, "openai");
    EXPECT_EQ(t.find_provider_by_model("o3-mini")->id, "openai");
    EXPECT_EQ(t.find_provider_by_model("gemini-2.5-pro")->id, "google");
    EXPECT_EQ(t.find_provider_by_model("claude-3")->id, "anthropic");
    EXPECT_EQ(t.find_provider_by_model("llama"), nullptr);
}

TEST(PriceProvider, FallbackProviderModels) {
    const auto& t = table();
    const provider_info* google = t.find_provider(provider::google);
    auto f = t.find_model(*google, "claude-y-1");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->provider->id, "anthropic");
    auto r = t.price(provider::google, "claude-y-1", tokens(1'000'000, 0), utc(2025, 1, 1));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->total, m("3"));
    EXPECT_EQ(r->provider_id, "anthropic");
    // No fallback the other way.
    EXPECT_FALSE(t.price(provider::anthropic, "gemini-x", tokens(1, 1), utc(2025, 1, 1)));
}

TEST(PriceCalc, UnknownModelHasNoPrice) {
    EXPECT_FALSE(table().price(provider::openai, "no-such-model", tokens(10, 10), utc(2025, 1, 1)));
    EXPECT_FALSE(table().price(provider::openai, "", tokens(10, 10), utc(2025, 1, 1)));
}

TEST(PriceCalc, ModelWithoutPricesCostsNothing) {
    auto r = price_of("free", tokens(1000, 1000));
    EXPECT_TRUE(r.total.is_zero());
}

TEST(PriceCalc, InputAndOutput) {
    auto r = price_of("model-eq", tokens(1349, 10));
    EXPECT_EQ(r.input, m("0.0033725"));
    EXPECT_EQ(r.output, m("0.0001"));
    EXPECT_EQ(r.total, m("0.0034725"));
    EXPECT_TRUE(r.requests.is_zero());
}

TEST(PriceCalc, EmptyUsageCostsNothing) {
    auto r = price_of("model-eq", usage{});
    EXPECT_TRUE(r.total.is_zero());
}

TEST(PriceCalc, CacheReadsAreTakenOutOfTheInput) {
    usage u = tokens(1349, 10);
    u.cache_read_tokens = 1024;
    auto r = price_of("model-eq", u);
    // 325 × 2.5 + 1024 × 1.25, per million
    EXPECT_EQ(r.input, m("0.0020925"));
}

TEST(PriceCalc, CacheWritesAndOneHourWrites) {
    usage u = tokens(11470, 44);
    u.cache_read_tokens = 9511;
    u.cache_write_tokens = 1956;
    auto r = price_of("cache", u);
    // 3 × 3 + 9511 × 0.3 + 1956 × 3.75
    EXPECT_EQ(r.input, m("0.0101973"));
    EXPECT_EQ(r.output, m("0.00066"));
    u.cache_write_1h_tokens = 1000;
    r = price_of("cache", u);
    // 3 × 3 + 9511 × 0.3 + 956 × 3.75 + 1000 × 6
    EXPECT_EQ(r.input, m("0.0124473"));
}

TEST(PriceCalc, KindsWithoutTheirOwnPriceCostTheParentPrice) {
    // No cache_read_mtok, no cache_write_mtok, no audio prices: all at input_mtok / output_mtok.
    usage u = tokens(1000, 100);
    u.cache_read_tokens = 300;
    u.cache_write_tokens = 200;
    u.input_audio_tokens = 100;
    u.output_audio_tokens = 50;
    u.reasoning_tokens = 20;
    auto r = price_of("no-audio-price", u);
    EXPECT_EQ(r.input, m("0.0025"));
    EXPECT_EQ(r.output, m("0.001"));
    // A 1 h write without a 1 h price costs a cache write.
    u = tokens(1000, 0);
    u.cache_write_tokens = 500;
    u.cache_write_1h_tokens = 500;
    auto with_1h = price_of("model-eq", u);
    u.cache_write_1h_tokens.reset();
    EXPECT_EQ(with_1h.input, price_of("model-eq", u).input);
}

TEST(PriceCalc, AudioTokensAtAudioPrices) {
    usage u = tokens(81, 72);
    u.input_audio_tokens = 69;
    u.output_audio_tokens = 50;
    auto r = price_of("audio", u);
    // 12 × 2.5 + 69 × 40; 22 × 10 + 50 × 80
    EXPECT_EQ(r.input, m("0.00279"));
    EXPECT_EQ(r.output, m("0.00422"));
}

TEST(PriceCalc, ReasoningIsOutputUnlessPricedApart) {
    usage u = tokens(0, 1000);
    u.reasoning_tokens = 400;
    EXPECT_EQ(price_of("reasoning", u).output, m("0.006"));  // 600 × 8 + 400 × 3
    EXPECT_EQ(price_of("model-eq", u).output, m("0.01"));    // all 1000 × 10
}

TEST(PriceCalc, PerRequestPrice) {
    auto r = price_of("per-request", tokens(1000, 1000));
    EXPECT_EQ(r.requests, m("0.012"));
    EXPECT_EQ(r.total, m("0.014"));
}

TEST(PriceCalc, FloatArtefactsStayExact) {
    auto r = price_of("float-artefact", tokens(7, 0));
    EXPECT_EQ(r.input.to_string(), "0.00000126000000000000014");
}

TEST(PriceCalc, InconsistentUsageHasNoPrice) {
    usage u = tokens(100, 10);
    u.cache_read_tokens = 80;
    u.cache_write_tokens = 30;
    EXPECT_FALSE(table().price(provider::openai, "model-eq", u, utc(2025, 1, 1)));
    u = tokens(100, 10);
    u.cache_write_tokens = 10;
    u.cache_write_1h_tokens = 20;
    EXPECT_FALSE(table().price(provider::openai, "cache", u, utc(2025, 1, 1)));
    u = tokens(100, 10);
    u.input_audio_tokens = 200;
    EXPECT_FALSE(table().price(provider::openai, "audio", u, utc(2025, 1, 1)));
    u = tokens(100, 10);
    u.output_audio_tokens = 20;
    EXPECT_FALSE(table().price(provider::openai, "audio", u, utc(2025, 1, 1)));
}

TEST(PriceTiers, TheTierAppliesToAllTokensOnceInputExceedsItsStart) {
    usage u = tokens(200000, 1000);
    auto r = price_of("tiered", u);
    EXPECT_EQ(r.input, m("0.6"));  // 200000 × 3: not above the start
    EXPECT_EQ(r.output, m("0.015"));
    u.input_tokens = 200001;
    r = price_of("tiered", u);
    EXPECT_EQ(r.input, m("1.200006"));  // all 200001 × 6
    EXPECT_EQ(r.output, m("0.0225"));   // output follows the input's tier
}

TEST(PriceTiers, CachedTokensCountTowardsTheThreshold) {
    usage u = tokens(250000, 0);
    u.cache_read_tokens = 100000;
    auto r = price_of("tiered", u);
    EXPECT_EQ(r.input, m("0.96"));  // 150000 × 6 + 100000 × 0.6
}

TEST(PriceTiers, HighestTierExceeded) {
    EXPECT_EQ(price_of("two-tiers", tokens(1000, 0)).input, m("0.001"));
    EXPECT_EQ(price_of("two-tiers", tokens(1500, 0)).input, m("0.003"));
    EXPECT_EQ(price_of("two-tiers", tokens(2500, 0)).input, m("0.01"));
    unit_price p;
    p.base = m("1");
    p.tiers = {{300, m("3")}, {100, m("2")}};  // out of order
    EXPECT_EQ(p.at(200), m("2"));
    EXPECT_EQ(p.at(301), m("3"));
}

TEST(PriceDates, TheLatestStartedPriceApplies) {
    usage u = tokens(1'000'000, 1'000'000);
    EXPECT_EQ(price_of("dated", u, utc(2025, 6, 9, 23, 59)).total, m("50"));
    EXPECT_EQ(price_of("dated", u, utc(2025, 6, 10, 0, 0)).total, m("10"));
    EXPECT_EQ(price_of("dated", u, utc(2025, 12, 31)).total, m("10"));
    EXPECT_EQ(price_of("dated", u, utc(2026, 1, 1)).total, m("5"));
}

TEST(PriceDates, NoActivePriceMeansTheFirst) {
    EXPECT_EQ(price_of("future-only", tokens(1'000'000, 0), utc(2025, 1, 1)).total, m("7"));
    EXPECT_EQ(price_of("future-only", tokens(1'000'000, 0), utc(2031, 1, 1)).total, m("8"));
}

TEST(PriceDates, TimeOfDayInUtc) {
    usage u = tokens(1'000'000, 0);
    EXPECT_EQ(price_of("peak", u, utc(2025, 1, 1, 0, 29)).input, m("0.135"));
    EXPECT_EQ(price_of("peak", u, utc(2025, 1, 1, 0, 30)).input, m("0.27"));
    EXPECT_EQ(price_of("peak", u, utc(2025, 1, 1, 16, 29)).input, m("0.27"));
    EXPECT_EQ(price_of("peak", u, utc(2025, 1, 1, 16, 30)).input, m("0.135"));
    // As in genai-prices, an interval across midnight (start after end) never applies.
    EXPECT_EQ(price_of("night", u, utc(2025, 1, 1, 23, 0)).input, m("1"));
    EXPECT_EQ(price_of("night", u, utc(2025, 1, 1, 1, 0)).input, m("1"));
}

TEST(PriceDates, OffsetTimesAreConvertedToUtc) {
    auto t = price_table::parse(R"([{"id": "p", "name": "P", "api_pattern": "x", "models": [
        {"id": "m", "match": {"equals": "m"}, "prices": [{"prices": {"input_mtok": 1}},
         {"constraint": {"start_time": "09:00:00+02:00", "end_time": "10:00:00+02:00"},
          "prices": {"input_mtok": 2}}]}]}])");
    auto r = t.price(*t.find_provider("p"), "m", tokens(1'000'000, 0), utc(2025, 1, 1, 7, 30));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->input, m("2"));
}

TEST(PriceTableLoad, MalformedFilesAreRefusedWithAClearMessage) {
    struct bad {
        std::string text;
        std::string message_part;
    };
    const std::string model_ok =
        R"({"id": "m", "match": {"equals": "m"}, "prices": {"input_mtok": 1}})";
    auto provider_with = [](const std::string& model) {
        return R"([{"id": "p", "name": "P", "api_pattern": "x", "models": [)" + model + "]}]";
    };
    const bad cases[] = {
        {"", "not JSON"},
        {"<html>Not Found</html>", "not JSON"},
        {"[{\"id\": \"p\",", "not JSON"},
        {R"({"providers": []})", "expected a list of providers"},
        {"[]", "no providers"},
        {"[1]", "providers[0]: expected a provider object"},
        {R"([{"name": "P", "api_pattern": "x", "models": []}])", "providers[0]: missing \"id\""},
        {R"([{"id": "p", "name": "P", "models": []}])",
         "providers[0] (p): missing \"api_pattern\""},
        {R"([{"id": "p", "name": "P", "api_pattern": "(", "models": []}])",
         "api_pattern: invalid regex"},
        {R"([{"id": "p", "name": "P", "api_pattern": "x", "models": {}}])",
         "models: expected a list"},
        {R"([{"id": "p", "name": "P", "api_pattern": "x", "models": []},
             {"id": "p", "name": "P", "api_pattern": "x", "models": []}])",
         "duplicate provider id"},
        {R"([{"id": "p", "name": "P", "api_pattern": "x", "fallback_model_providers": ["q"], "models": []}])",
         "unknown provider \"q\""},
        {provider_with(R"({"id": "m", "prices": {}})"), "models[0] (m): missing \"match\""},
        {provider_with(R"({"id": "m", "match": {"equals": "m"}})"), "missing \"prices\""},
        {provider_with(R"({"id": "m", "match": {"like": "m"}, "prices": {}})"),
         "unknown match clause \"like\""},
        {provider_with(R"({"id": "m", "match": {"equals": "m", "contains": "n"}, "prices": {}})"),
         "match: expected one of"},
        {provider_with(R"({"id": "m", "match": {"equals": 3}, "prices": {}})"),
         "match.equals: expected a string"},
        {provider_with(R"({"id": "m", "match": {"or": []}, "prices": {}})"),
         "match.or: expected a non-empty list"},
        {provider_with(R"({"id": "m", "match": {"regex": "[a-"}, "prices": {}})"), "invalid regex"},
        {provider_with(R"({"id": "m", "match": {"equals": "m"}, "prices": {"input_mtok": "1"}})"),
         "prices.input_mtok: expected a number or {\"base\", \"tiers\"}"},
        {provider_with(R"({"id": "m", "match": {"equals": "m"}, "prices": {"input_mtok": -1}})"),
         "negative price"},
        {provider_with(R"({"id": "m", "match": {"equals": "m"}, "prices": {"input_mtok": 1e-20}})"),
         "more than 18 decimals"},
        {provider_with(
             R"({"id": "m", "match": {"equals": "m"}, "prices": {"input_mtok": {"base": 1}}})"),
         "missing \"tiers\""},
        {provider_with(
             R"({"id": "m", "match": {"equals": "m"}, "prices": {"input_mtok": {"base": 1, "tiers": [{"start": -5, "price": 2}]}}})"),
         "tiers[0].start: expected a non-negative integer"},
        {provider_with(R"({"id": "m", "match": {"equals": "m"}, "prices": []})"),
         "non-empty list of conditional prices"},
        {provider_with(
             R"({"id": "m", "match": {"equals": "m"}, "prices": [{"constraint": {"start_date": "2025-13-01"}, "prices": {}}]})"),
         "prices[0].constraint.start_date: expected a date"},
        {provider_with(
             R"({"id": "m", "match": {"equals": "m"}, "prices": [{"constraint": {"start_time": "25:00:00Z", "end_time": "01:00:00Z"}, "prices": {}}]})"),
         "start_time: expected a time"},
        {provider_with(
             R"({"id": "m", "match": {"equals": "m"}, "prices": [{"constraint": {"start_time": "01:00:00Z"}, "prices": {}}]})"),
         "start_time and end_time go together"},
        {provider_with(
             R"({"id": "m", "match": {"equals": "m"}, "prices": [{"constraint": {"weekday": 1}, "prices": {}}]})"),
         "unknown constraint \"weekday\""},
        {provider_with(
             model_ok +
             R"(, {"id": "n", "match": {"equals": "n"}, "prices": {}, "prices_checked": "soon"})"),
         "models[1] (n).prices_checked: expected a date"},
    };
    for (const auto& c : cases) {
        std::string err = parse_error(c.text);
        EXPECT_NE(err.find(c.message_part), std::string::npos)
            << "input: " << c.text << "\nerror: " << err << "\nexpected: " << c.message_part;
    }
    EXPECT_EQ(parse_error(provider_with(model_ok)), "");
}

TEST(PriceTableLoad, UnknownPriceFieldsAndExtraKeysAreKept) {
    auto t = price_table::parse(R"([{"id": "p", "name": "P", "api_pattern": "x", "extractors": [],
        "models": [{"id": "m", "match": {"equals": "m"}, "context_window": 1000,
                    "prices": {"input_mtok": 1, "input_video_mtok": 4}, "prices_checked": "2026-08-21"}]}])");
    const auto& model = t.providers().at(0).models.at(0);
    EXPECT_EQ(model.prices_checked, "2026-08-21");
    const auto& prices = model.prices_at(utc(2025, 1, 1));
    ASSERT_NE(prices.find("input_video_mtok"), nullptr);
    EXPECT_EQ(prices.find("input_video_mtok")->base, m("4"));
    EXPECT_EQ(prices.find("output_mtok"), nullptr);
}

TEST(PriceBuiltin, LoadsAndHasTheThreeProviders) {
    const auto& t = price_table::builtin();
    ASSERT_EQ(t.providers().size(), 3u);
    for (auto p : {provider::openai, provider::anthropic, provider::google}) {
        const provider_info* info = t.find_provider(p);
        ASSERT_NE(info, nullptr);
        EXPECT_GT(info->models.size(), 10u);
        for (const auto& model : info->models) {
            EXPECT_FALSE(model.prices_checked.empty()) << model.id;
        }
    }
    EXPECT_EQ(t.find_provider_by_url("https://api.anthropic.com")->id, "anthropic");
}

TEST(PriceBuiltin, PricesCommonModels) {
    const auto& t = price_table::builtin();
    auto at = utc(2026, 8, 1);
    usage u = tokens(10000, 2000);
    u.cache_read_tokens = 4000;

    auto r = t.price(provider::openai, "gpt-4o-mini-2024-07-18", u, at);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->model_id, "gpt-4o-mini");
    EXPECT_EQ(r->input, m("0.0012"));   // 6000 × 0.15 + 4000 × 0.075
    EXPECT_EQ(r->output, m("0.0012"));  // 2000 × 0.6

    r = t.price(provider::anthropic, "claude-sonnet-4-20250514", u, at);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->model_id, "claude-sonnet-4-0");
    EXPECT_EQ(r->input, m("0.0192"));  // 6000 × 3 + 4000 × 0.3
    EXPECT_EQ(r->output, m("0.03"));   // 2000 × 15

    r = t.price(provider::google, "gemini-2.5-flash", u, at);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->model_id, "gemini-2.5-flash");
    EXPECT_EQ(r->input, m("0.00192"));  // 6000 × 0.3 + 4000 × 0.03
    EXPECT_EQ(r->output, m("0.005"));   // 2000 × 2.5

    for (const char* model : {"gpt-4o", "gpt-4.1-mini", "o3", "o4-mini", "gpt-5", "gpt-5-nano",
                              "text-embedding-3-small"}) {
        EXPECT_TRUE(t.price(provider::openai, model, u, at)) << model;
    }
    for (const char* model : {"claude-3-5-haiku-20241022", "claude-opus-4-1-20250805",
                              "claude-haiku-4-5", "claude-sonnet-4-5-20250929"}) {
        EXPECT_TRUE(t.price(provider::anthropic, model, u, at)) << model;
    }
    for (const char* model : {"gemini-1.5-pro", "gemini-2.0-flash", "gemini-2.5-pro"}) {
        EXPECT_TRUE(t.price(provider::google, model, u, at)) << model;
    }
}

TEST(PriceCalc, ACallByResponseModelElseRequestModel) {
    call c;
    c.provider = provider::openai;
    c.request_model = "model-sw";
    c.response_model = "model-eq";
    c.usage = tokens(1'000'000, 0);
    auto r = table().price(c, utc(2025, 1, 1));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->model_id, "eq");
    c.response_model = "unknown-snapshot";
    r = table().price(c, utc(2025, 1, 1));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->model_id, "sw");
    c.response_model.clear();
    c.request_model.clear();
    EXPECT_FALSE(table().price(c, utc(2025, 1, 1)));
}

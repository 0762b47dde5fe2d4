#pragma once
// Prices of LLM API calls from a price table in pydantic's genai-prices "v2" data format
// (https://github.com/pydantic/genai-prices, prices/new_data/v2/data.json, MIT): a list of
// providers, each with an api_pattern, match rules and models; each model with match clauses and
// prices per million tokens (plain, tiered by input size, or changing by date / time of day).
//
// price_table::price(...) computes the cost of one call from the usage the provider reported,
// with the semantics of genai-prices' calc_price: see docs/usage-and-cost.md, "Prices".

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llm_proxy/llm/call.hpp"
#include "llm_proxy/llm/money.hpp"

namespace llm_proxy::llm {

// A price table that could not be loaded: the message names the place ("providers[3]
// (openai).models[12] (gpt-4o).prices.input_mtok: ...").
class price_data_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A match clause of the data: equals, starts_with, ends_with, contains (these four ignore ASCII
// case, as genai-prices compares lower-cased strings), regex (searched, as Python's re.search;
// anchors are written in the pattern; case-sensitive), or, and.
class match_clause {
  public:
    enum class kind { equals, starts_with, ends_with, contains, regex, any_of, all_of };

    kind type() const { return kind_; }
    const std::string& value() const { return value_; }  // "" for any_of / all_of
    const std::vector<match_clause>& children() const { return children_; }

    bool matches(std::string_view text) const;
    // Like matches(); on a match, `rule` is the clause that decided it: the matching leaf of an
    // `or`, the whole clause of an `and` (as to_string()).
    bool matches(std::string_view text, std::string& rule) const;
    // `starts_with "gpt-4o"`, `or [equals "a", regex "^b"]`...
    std::string to_string() const;

    // A leaf clause (equals ... regex); throws price_data_error for an invalid regex.
    static match_clause leaf(kind k, std::string value);
    // An `or` (any_of) or `and` (all_of) of clauses.
    static match_clause group(kind k, std::vector<match_clause> children);
    // A clause in its JSON form ({"starts_with": "gpt-4o"}); throws price_data_error (with
    // `where` in the message) when `json_text` is not a clause.
    static match_clause from_json_text(std::string_view json_text,
                                       std::string_view where = "match");

    struct regex_holder;  // a compiled regex (opaque)

  private:
    kind kind_ = kind::equals;
    std::string value_;
    std::string lower_value_;  // value_ lower-cased (ASCII), for the case-insensitive kinds
    std::vector<match_clause> children_;
    std::shared_ptr<const regex_holder> regex_;
};

// One price per unit (per million tokens for *_mtok, per thousand for *_kcount), possibly
// tiered: once the call's input tokens exceed a tier's start, that tier's price applies to all
// units of the kind (the "cliff" model), for input and output alike.
struct tier {
    std::uint64_t start = 0;
    money price;
};
struct unit_price {
    money base;
    std::vector<tier> tiers;  // in data order; the last one whose start is exceeded wins

    money at(std::uint64_t total_input_tokens) const;
};

// The prices of one model in one period: field name ("input_mtok", "cache_read_mtok"...) →
// price, in data order. Unknown field names are kept (shown by `prices show`, not used).
struct model_prices {
    std::vector<std::pair<std::string, unit_price>> fields;

    const unit_price* find(std::string_view field) const;
};

// When a conditional price applies: from a UTC date on, and/or daily between two UTC times
// (start included, end excluded; as in genai-prices, an interval whose start is after its end,
// across midnight, never applies).
struct price_constraint {
    std::optional<std::chrono::sys_days> start_date;
    std::optional<std::chrono::seconds> start_time;  // since 00:00 UTC
    std::optional<std::chrono::seconds> end_time;

    bool active_at(std::chrono::system_clock::time_point t) const;
};

struct conditional_prices {
    std::optional<price_constraint> constraint;  // nullopt: always
    model_prices prices;
};

struct model_info {
    std::string id;
    std::string name;  // "" when the data has none
    match_clause match;
    // One entry without constraint for a model whose prices do not change. Otherwise tried last
    // to first, the first active one is used; when none is active, the first one.
    std::vector<conditional_prices> prices;
    bool deprecated = false;
    std::string price_comments;
    std::string prices_checked;  // "YYYY-MM-DD" when the data says when the prices were checked

    const model_prices& prices_at(std::chrono::system_clock::time_point t) const;
};

struct provider_info {
    std::string id;
    std::string name;
    std::string api_pattern;                     // regex matched at the start of a base URL
    std::optional<match_clause> model_match;     // models this provider is the home of
    std::optional<match_clause> provider_match;  // other spellings of the provider id
    std::vector<std::string> fallback_model_providers;
    std::vector<model_info> models;

  private:
    friend class price_table;
    std::shared_ptr<const match_clause::regex_holder> api_regex_;
};

// The model found for a model name.
struct found_model {
    const provider_info* provider = nullptr;  // the provider whose table has the model (a
                                              // fallback provider's for borrowed models)
    const model_info* model = nullptr;
    std::string rule;  // the clause that matched: `equals "gpt-4o-mini"`
};

// The price of one call. total = input + output + requests.
struct price_result {
    money input;     // uncached input, cache reads, cache writes, input audio
    money output;    // output (reasoning included), output audio
    money requests;  // per-request price (requests_kcount / 1000)
    money total;
    std::string provider_id;  // the provider whose table priced it
    std::string model_id;
    std::string model_name;
    std::string match_rule;
};

class price_table {
  public:
    price_table() = default;

    // Loads and validates genai-prices v2 JSON text. Throws price_data_error naming the first
    // problem (not JSON, not a list of providers, a missing or mistyped field, a bad match
    // clause or regex, a bad price, date or time, a price with more than 18 decimals).
    static price_table parse(std::string_view json_text);
    // The table built into llm_proxy (OpenAI, Anthropic and Google models), parsed once.
    static const price_table& builtin();
    // The JSON text of the built-in table.
    static std::string_view builtin_json();

    const std::vector<provider_info>& providers() const { return providers_; }

    // Provider by our enum (its id: "openai", "anthropic", "google").
    const provider_info* find_provider(provider p) const;
    // Provider by id as genai-prices finds it: lower-cased and trimmed, an exact id first, then
    // the first provider whose provider_match matches.
    const provider_info* find_provider(std::string_view provider_id) const;
    // The first provider whose api_pattern matches the start of `base_url`
    // ("https://api.openai.com").
    const provider_info* find_provider_by_url(std::string_view base_url) const;
    // The first provider whose model_match matches the model name.
    const provider_info* find_provider_by_model(std::string_view model_ref) const;

    // The first model of the provider (in data order) whose match clause matches `model_ref`
    // lower-cased (ASCII), as genai-prices does; else the same in each of its
    // fallback_model_providers in turn (one step: not their own fallbacks).
    std::optional<found_model> find_model(const provider_info& p, std::string_view model_ref) const;

    // The price of a call at time `at`: nullopt when the provider or model is unknown, or the
    // usage is inconsistent (cache reads + writes above the input tokens, audio above the
    // total), or an amount is out of range.
    std::optional<price_result> price(provider p, std::string_view model_ref, const usage& u,
                                      std::chrono::system_clock::time_point at) const;
    std::optional<price_result> price(const provider_info& p, std::string_view model_ref,
                                      const usage& u,
                                      std::chrono::system_clock::time_point at) const;
    // The price of a call: its provider and usage, the model the response named, else (or
    // when that one is not in the table) the model the request named.
    std::optional<price_result> price(const call& c,
                                      std::chrono::system_clock::time_point at) const;
    // Prices a found model (e.g. after find_model).
    static std::optional<price_result> price(const found_model& m, const usage& u,
                                             std::chrono::system_clock::time_point at);
    // The arithmetic alone, on one period's prices.
    static std::optional<price_result> price(const model_prices& prices, const usage& u);

  private:
    // find_model's answers by provider and lower-cased model name, shared by the threads. A
    // copy of the table starts with an empty cache (the answers point into the providers).
    class lookup_cache {
      public:
        lookup_cache() = default;
        lookup_cache(const lookup_cache&) {}
        lookup_cache& operator=(const lookup_cache&) {
            std::unique_lock lock(mutex_);
            map_.clear();
            return *this;
        }
        std::optional<std::optional<found_model>> find(const std::string& key) const;
        void put(std::string key, std::optional<found_model> value);

      private:
        static constexpr std::size_t max_entries = 4096;
        mutable std::shared_mutex mutex_;
        std::unordered_map<std::string, std::optional<found_model>> map_;
    };

    std::optional<found_model> find_uncached(const provider_info& p, std::string_view ref) const;

    std::vector<provider_info> providers_;
    mutable lookup_cache lookups_;
};

}  // namespace llm_proxy::llm

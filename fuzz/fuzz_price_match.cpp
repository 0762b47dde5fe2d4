// Price matching: model names from the input are matched against the built-in price table for
// each provider (equals / starts_with / ends_with / contains / regex clauses, fallback
// providers) and priced with usage counts from the input at a time from the input; match
// clauses in JSON form from the input are parsed and matched; and, for a part of the inputs, a
// whole price table (genai-prices v2 JSON) from the input is loaded and queried. Bad data must
// throw price_data_error; prices that exist add up.
#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "llm_proxy/llm/money.hpp"
#include "llm_proxy/llm/prices.hpp"

using llm_proxy::fuzz::check;
namespace llm = llm_proxy::llm;

namespace {

llm::usage usage_from(FuzzedDataProvider& in) {
    llm::usage u;
    for (const auto& [name, field] : llm::usage_fields) {
        if (in.ConsumeBool()) {
            u.*field = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::uint64_t>(0, 2'000'000)
                                        : in.ConsumeIntegral<std::uint64_t>();
        }
    }
    return u;
}

void check_price(const std::optional<llm::price_result>& p) {
    if (p) {
        check(p->total == p->input + p->output + p->requests, "total is not the sum");
    }
}

void query(const llm::price_table& table, FuzzedDataProvider& in) {
    const std::string model = in.ConsumeRandomLengthString(64);
    const llm::usage u = usage_from(in);
    const auto at = std::chrono::system_clock::time_point(
        std::chrono::seconds(in.ConsumeIntegralInRange<std::int64_t>(0, 4'102'444'800)));
    for (auto p : {llm::provider::openai, llm::provider::anthropic, llm::provider::google}) {
        check_price(table.price(p, model, u, at));
    }
    for (const auto& provider : table.providers()) {
        if (auto found = table.find_model(provider, model)) {
            check(found->model != nullptr && found->provider != nullptr, "found nothing");
            check(!found->rule.empty(), "a match without the rule that matched");
            check_price(llm::price_table::price(*found, u, at));
        }
    }
    (void)table.find_provider(model);
    (void)table.find_provider_by_model(model);
    (void)table.find_provider_by_url(model);
}

}  // namespace

// Price tables are trusted configuration (genai-prices, or the user's own file): a pattern of
// its own that backtracks without end (e.g. "^o*****...x") or repeats a million times is the
// table's fault, and std::regex has no bound on either. So clauses and tables from the input
// carry no regex clause nor api_pattern; the built-in table's patterns are matched against fuzzed
// model names.
bool has_regex_clause(std::string_view json) {
    return json.find("regex") != std::string_view::npos ||
           json.find("api_pattern") != std::string_view::npos ||
           json.find("\\u") != std::string_view::npos;  // "\u0072egex" spells it too
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const int mode = in.ConsumeIntegralInRange(0, 3);
    try {
        if (mode <= 1) {
            query(llm::price_table::builtin(), in);
        } else if (mode == 2) {
            // A match clause in JSON form, then texts matched against it.
            const std::string clause_json = in.ConsumeRandomLengthString(256);
            if (has_regex_clause(clause_json)) {
                return 0;
            }
            const auto clause = llm::match_clause::from_json_text(clause_json);
            (void)clause.to_string();
            while (in.remaining_bytes() > 0) {
                std::string text = in.ConsumeRandomLengthString(64);
                std::string rule;
                const bool m = clause.matches(text, rule);
                check(m == clause.matches(text), "matches() with and without the rule differ");
                check(!m || !rule.empty(), "a match without the rule that matched");
            }
        } else {
            const std::string table_json = in.ConsumeRandomLengthString(4096);
            if (has_regex_clause(table_json)) {
                return 0;
            }
            const auto table = llm::price_table::parse(table_json);
            query(table, in);
        }
    } catch (const llm::price_data_error&) {
    }
    return 0;
}

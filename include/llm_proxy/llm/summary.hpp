#pragma once
// What a record's "llm" object says about one call: the reassembled call, its price and the
// time to its first token. Built when the flow ends (live) or from a record's bodies (offline).

#include <chrono>
#include <optional>
#include <string>

#include "llm_proxy/llm/call.hpp"
#include "llm_proxy/llm/money.hpp"

namespace llm_proxy::llm {

class price_table;

struct cost {
    money input;   // uncached input, cache reads and writes, input audio
    money output;  // output (reasoning included), output audio, per-request prices
    money total;
};

struct summary {
    llm::call call;
    std::optional<llm::cost> cost_usd;  // nullopt: no price is known for the model
    std::optional<money> saved_usd;     // answered from the cache: what the call would cost
    std::string priced_as;              // the price table's model id ("" when not priced)
    std::optional<double> first_token_ms;
    bool usage_injected = false;  // --inject-usage asked the upstream for the usage
};

// Prices `c` at `at` with `prices` (nullptr: not priced). A cache hit costs 0 and says what
// it saved.
summary summarize(llm::call c, const price_table* prices, std::chrono::system_clock::time_point at,
                  bool cache_hit);

// The model a call is priced as: the response's model when the provider named one, else the
// request's.
const std::string& billed_model(const call& c);

}  // namespace llm_proxy::llm

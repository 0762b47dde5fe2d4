#pragma once
// Running totals of the LLM calls of one proxy run, per model (apiAuditor, --budget).
// Thread-safe: the proxy's workers add calls concurrently.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "llm_proxy/llm/summary.hpp"

namespace llm_proxy::llm {

struct totals {
    std::uint64_t calls = 0;
    std::uint64_t input_tokens = 0;
    std::uint64_t cache_read_tokens = 0;
    std::uint64_t output_tokens = 0;
    std::uint64_t reasoning_tokens = 0;
    std::uint64_t unpriced_calls = 0;  // calls whose model has no known price
    money cost;
    money saved;  // by cache hits

    void add(const summary& s);
};

class ledger {
  public:
    // Adds a finished call; returns the run's totals of its model after it. Past max_models
    // distinct models (clients choose model names), new ones are counted under other_models.
    totals add(const summary& s);
    static constexpr std::size_t max_models = 1000;
    static constexpr const char* other_models = "(other models)";
    money spent() const;
    std::map<std::string, totals> by_model() const;
    totals overall() const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, totals> by_model_;
    totals overall_;
};

}  // namespace llm_proxy::llm

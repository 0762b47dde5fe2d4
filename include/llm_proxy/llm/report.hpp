#pragma once
// `llm_proxy report`: totals of record rows grouped by model, provider, host, day or status.

#include <map>
#include <string>
#include <vector>

#include "llm_proxy/llm/ledger.hpp"
#include "llm_proxy/llm/money.hpp"
#include "llm_proxy/llm/record_reader.hpp"

namespace llm_proxy::llm {

enum class group_by { model, provider, host, day, status };

struct group_totals {
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;  // failed flows and 4xx/5xx answers
    totals llm;                // of the LLM calls among them
    std::vector<double> latency_ms;
    std::vector<double> first_token_ms;

    void add(const record_row& row);
};

// The nearest-rank percentile (p in 0..100) of `values` (sorted in place); nullopt if empty.
std::optional<double> percentile(std::vector<double>& values, double p);

class report {
  public:
    explicit report(group_by by) : by_(by) {}
    void add(const record_row& row);
    // Groups in key order, then the total.
    const std::map<std::string, group_totals>& groups() const { return groups_; }
    const group_totals& total() const { return total_; }

    std::string table();
    std::string json();
    std::string csv();

  private:
    std::string key_of(const record_row& row) const;
    group_by by_;
    std::map<std::string, group_totals> groups_;
    group_totals total_;
};

}  // namespace llm_proxy::llm

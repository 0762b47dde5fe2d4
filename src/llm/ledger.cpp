#include "llm_proxy/llm/ledger.hpp"

namespace llm_proxy::llm {

void totals::add(const summary& s) {
    ++calls;
    const auto& u = s.call.usage;
    input_tokens += u.input_tokens.value_or(0);
    cache_read_tokens += u.cache_read_tokens.value_or(0);
    output_tokens += u.output_tokens.value_or(0);
    reasoning_tokens += u.reasoning_tokens.value_or(0);
    if (s.cost_usd) {
        cost += s.cost_usd->total;
    } else {
        ++unpriced_calls;
    }
    if (s.saved_usd) {
        saved += *s.saved_usd;
    }
}

totals ledger::add(const summary& s) {
    std::string model = billed_model(s.call);
    if (model.empty()) {
        model = "(unknown model)";
    }
    std::lock_guard lock(mutex_);
    overall_.add(s);
    auto it = by_model_.find(model);
    if (it == by_model_.end()) {
        it = by_model_.try_emplace(by_model_.size() < max_models ? model : other_models).first;
    }
    auto& t = it->second;
    t.add(s);
    return t;
}

money ledger::spent() const {
    std::lock_guard lock(mutex_);
    return overall_.cost;
}

std::map<std::string, totals> ledger::by_model() const {
    std::lock_guard lock(mutex_);
    return by_model_;
}

totals ledger::overall() const {
    std::lock_guard lock(mutex_);
    return overall_;
}

}  // namespace llm_proxy::llm

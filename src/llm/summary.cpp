#include "llm_proxy/llm/summary.hpp"

#include "llm_proxy/llm/prices.hpp"

namespace llm_proxy::llm {

const std::string& billed_model(const call& c) {
    return c.response_model.empty() ? c.request_model : c.response_model;
}

summary summarize(llm::call c, const price_table* prices, std::chrono::system_clock::time_point at,
                  bool cache_hit) {
    summary s;
    s.call = std::move(c);
    if (prices == nullptr || s.call.usage.empty()) {
        return s;
    }
    auto priced = prices->price(s.call.provider, billed_model(s.call), s.call.usage, at);
    if (!priced && !s.call.request_model.empty() && s.call.request_model != billed_model(s.call)) {
        priced = prices->price(s.call.provider, s.call.request_model, s.call.usage, at);
    }
    if (!priced) {
        return s;
    }
    s.priced_as = priced->model_id;
    llm::cost full{priced->input, priced->output + priced->requests, priced->total};
    if (cache_hit) {
        s.cost_usd = llm::cost{};
        s.saved_usd = full.total;
    } else {
        s.cost_usd = full;
    }
    return s;
}

}  // namespace llm_proxy::llm

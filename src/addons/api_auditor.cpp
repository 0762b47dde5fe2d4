#include "llm_proxy/addons/api_auditor.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "llm_proxy/llm/summary.hpp"

namespace llm_proxy::addons {

namespace {

std::string dollars(const llm::money& m) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "$%.6f", m.to_double());
    return buf;
}

std::string tokens_text(const llm::usage& u) {
    std::string out = "in " + (u.input_tokens ? std::to_string(*u.input_tokens) : "?");
    if (u.cache_read_tokens && *u.cache_read_tokens > 0) {
        out += " (" + std::to_string(*u.cache_read_tokens) + " cached)";
    }
    out += " out " + (u.output_tokens ? std::to_string(*u.output_tokens) : "?");
    if (u.reasoning_tokens && *u.reasoning_tokens > 0) {
        out += " (" + std::to_string(*u.reasoning_tokens) + " reasoning)";
    }
    return out;
}

}  // namespace

api_auditor::api_auditor(std::shared_ptr<const llm_observer> observer,
                         std::optional<llm::money> budget, std::ostream& out)
    : observer_(std::move(observer)), budget_(budget), out_(out) {}

boost::asio::awaitable<void> api_auditor::on_request(flow& f) {
    if (!budget_ || observer_ == nullptr || observer_->endpoint_of(f) == nullptr) {
        co_return;
    }
    auto spent = ledger_.spent();
    if (spent < *budget_) {
        co_return;
    }
    std::string message = "llm_proxy: the budget of $" + budget_->to_string() +
                          " for this run is used up (spent $" + spent.to_string() + ")";
    nlohmann::json body = {{"error",
                            {{"message", message},
                             {"type", "insufficient_quota"},
                             {"param", nullptr},
                             {"code", "budget_exceeded"}}}};
    f.tags["budget"] = "exceeded";
    f.reply(429, {{"Content-Type", "application/json"}}, body.dump());
}

void api_auditor::on_flow_done(const std::shared_ptr<const flow>& f) {
    if (!f->llm) {
        return;
    }
    const auto& s = *f->llm;
    auto model_totals = ledger_.add(s);
    auto overall = ledger_.overall();
    std::string model = llm::billed_model(s.call);
    std::ostringstream line;
    line << "[apiAuditor] " << (model.empty() ? "(unknown model)" : model) << " "
         << tokens_text(s.call.usage) << " cost "
         << (s.cost_usd ? dollars(s.cost_usd->total) : std::string("unknown"));
    if (s.saved_usd) {
        line << " (cache hit, saved " << dollars(*s.saved_usd) << ")";
    }
    if (s.call.incomplete) {
        line << " incomplete";
    }
    line << " | " << model << ": " << model_totals.calls << " calls " << dollars(model_totals.cost)
         << " | run: " << overall.calls << " calls " << dollars(overall.cost);
    if (budget_) {
        line << " of " << dollars(*budget_);
    }
    line << "\n";
    std::lock_guard lock(out_mutex_);
    out_ << line.str() << std::flush;
}

std::string api_auditor::table() const {
    std::ostringstream t;
    char buf[512];
    std::snprintf(buf, sizeof buf, "%-32s %7s %12s %12s %12s %12s %14s %14s\n", "model", "calls",
                  "input", "cached", "output", "reasoning", "cost USD", "saved USD");
    t << buf;
    auto row = [&](const std::string& name, const llm::totals& x) {
        std::snprintf(buf, sizeof buf, "%-32s %7llu %12llu %12llu %12llu %12llu %14.6f %14.6f%s\n",
                      name.c_str(), static_cast<unsigned long long>(x.calls),
                      static_cast<unsigned long long>(x.input_tokens),
                      static_cast<unsigned long long>(x.cache_read_tokens),
                      static_cast<unsigned long long>(x.output_tokens),
                      static_cast<unsigned long long>(x.reasoning_tokens), x.cost.to_double(),
                      x.saved.to_double(),
                      x.unpriced_calls > 0
                          ? (" (" + std::to_string(x.unpriced_calls) + " without a price)").c_str()
                          : "");
        t << buf;
    };
    for (const auto& [model, x] : ledger_.by_model()) {
        row(model, x);
    }
    row("total", ledger_.overall());
    return t.str();
}

void api_auditor::close() {
    std::lock_guard lock(out_mutex_);
    out_ << "\n[apiAuditor] summary of this run\n" << table() << std::flush;
}

}  // namespace llm_proxy::addons

#pragma once
// apiAuditor: prints each LLM call (model, tokens, cost) with the run's running totals for its
// model, a summary table at exit, and enforces --budget: once the run's spend reaches it,
// further LLM requests are answered 429 with an OpenAI-style error and not sent upstream.

#include <iosfwd>
#include <memory>
#include <mutex>
#include <optional>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/addons/llm_observer.hpp"
#include "llm_proxy/llm/ledger.hpp"

namespace llm_proxy::addons {

class api_auditor : public addon {
  public:
    // `observer` tells LLM calls from other flows; `out` gets the lines and the table.
    api_auditor(std::shared_ptr<const llm_observer> observer, std::optional<llm::money> budget,
                std::ostream& out);
    std::string_view name() const override { return "apiAuditor"; }

    boost::asio::awaitable<void> on_request(flow& f) override;
    void on_flow_done(const std::shared_ptr<const flow>& f) override;
    void close() override;

    const llm::ledger& ledger() const { return ledger_; }
    // The summary table of the run so far.
    std::string table() const;

  private:
    std::shared_ptr<const llm_observer> observer_;
    std::optional<llm::money> budget_;
    std::ostream& out_;
    std::mutex out_mutex_;
    llm::ledger ledger_;
};

}  // namespace llm_proxy::addons

#pragma once
#include <memory>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/metrics/registry.hpp"

namespace llm_proxy::addons {

// Counts every finished flow into a metrics registry (--metrics-listen), on the worker's own
// shard: no lock shared between workers.
class metrics_recorder : public addon {
  public:
    explicit metrics_recorder(std::shared_ptr<metrics::registry> registry)
        : registry_(std::move(registry)) {}
    std::string_view name() const override { return "metrics"; }
    void on_flow_done(const std::shared_ptr<const flow>& f) override { registry_->observe(*f); }

  private:
    std::shared_ptr<metrics::registry> registry_;
};

}  // namespace llm_proxy::addons

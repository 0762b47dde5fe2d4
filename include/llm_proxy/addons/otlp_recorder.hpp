#pragma once
#include <memory>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/otlp/exporter.hpp"

namespace llm_proxy::addons {

// Hands every finished flow to the OTLP exporter (--otlp-endpoint): one span each, captured
// when the flow ends (with message content, the flow itself is queued) and rendered and sent in
// batches on the exporter's thread. With --otlp-content it keeps the request body (up to 4 MiB)
// so the span can carry the prompt.
class otlp_recorder : public addon {
  public:
    explicit otlp_recorder(std::shared_ptr<otlp::exporter> exporter)
        : exporter_(std::move(exporter)), content_(exporter_->options().spans.content) {}
    std::string_view name() const override { return "otlp"; }
    std::size_t request_capture_limit(const flow&) const override {
        return content_ ? std::size_t{4} << 20 : 0;
    }
    void on_flow_done(const std::shared_ptr<const flow>& f) override { exporter_->push(f); }
    void close() override { exporter_->close(); }

  private:
    std::shared_ptr<otlp::exporter> exporter_;
    bool content_;
};

}  // namespace llm_proxy::addons

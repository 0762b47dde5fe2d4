#pragma once
#include "llm_proxy/addon.hpp"

namespace llm_proxy::addons {

// --verbose: one line per flow on stderr (client, method, URL, status, bytes, duration).
class terminal_logger : public addon {
  public:
    std::string_view name() const override { return "terminal_logger"; }
    void on_response_end(flow& f) override;
    void on_error(flow& f) override;
};

}  // namespace llm_proxy::addons

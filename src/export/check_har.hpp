#pragma once
// The HAR 1.2 checker. Internal to src/export (check.hpp is the interface).

#include <string_view>

#include "llm_proxy/export/check.hpp"

namespace llm_proxy::exporter::detail {

void check_har(std::string_view text, check_result& r);

}  // namespace llm_proxy::exporter::detail

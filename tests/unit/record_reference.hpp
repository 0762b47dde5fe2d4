#pragma once
// The traffic log record as a JSON tree, built field by field with nlohmann::json the way the
// proxy once built it: an independent statement of the format (docs/log-format.md) that
// render_record's text must match byte for byte once dumped.

#include <nlohmann/json.hpp>
#include <string>

#include "llm_proxy/flow.hpp"
#include "llm_proxy/record/flow_record.hpp"

namespace llm_proxy::record::test {

nlohmann::json reference_record(const flow& f, const record_options& options,
                                const std::string& proxy_id);

// reference_record dumped as the record writer lays records out: dump(2) and a newline.
std::string reference_text(const flow& f, const record_options& options,
                           const std::string& proxy_id);

}  // namespace llm_proxy::record::test

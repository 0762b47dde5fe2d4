#pragma once
// The record's "llm" object (docs/log-format.md), written straight into the record's text:
// the same bytes as llm::to_json(s) dumped by nlohmann (keys in order, numbers as nlohmann
// prints them), without building the tree. Strings that are not valid UTF-8 get U+FFFD per
// bad byte, as every other string of the record.

#include "json_writer.hpp"
#include "llm_proxy/llm/summary.hpp"

namespace llm_proxy::record::detail {

// Writes the object at nesting `level` (after a key).
void write_llm(json_writer& w, const llm::summary& s, int level);

}  // namespace llm_proxy::record::detail

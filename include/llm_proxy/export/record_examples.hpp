#pragma once
// A record's LLM call as an export line: its request read as a conversation (conversation.hpp),
// its reassembled answer appended, written by the format's writer (formats.hpp).

#include <string>

#include "llm_proxy/export/formats.hpp"
#include "llm_proxy/export/record_source.hpp"

namespace llm_proxy::exporter {

// The fine-tuning example (openai-chat or anthropic) of a record whose call `f.llm` is known.
// Not ok, with the reason, when the request body was cut at the capture limit or is not text,
// the API has no conversation, the call has several answers or none, or the writer cannot map
// something.
example example_of(const flow_view& f, format fmt);

// The provider-neutral line of a record whose call `f.llm` is known.
std::string jsonl_line_of(const flow_view& f);

}  // namespace llm_proxy::exporter

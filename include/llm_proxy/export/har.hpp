#pragma once
// Flows as HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/), written entry by entry
// so a HAR of any number of flows takes the memory of one:
//
//   {"log":{"version":"1.2","creator":{"name":"llm_proxy","version":"..."},"entries":[
//   {entry}
//   ,{entry}
//   ]}}
//
// Each entry: the request (method, URL, query string, headers, body as postData), the
// response (status, headers, body as content, base64 when it is not text) and timings. A
// record keeps the flow's duration and, for LLM calls, the time to the first token: `wait`
// is the time to the first token (else the whole duration), `receive` the rest, `send` 0, the
// phases before the request (blocked, dns, connect, ssl) -1 (unknown), and `time` their sum.
// Headers on the default filter list (credentials, cookies) stay out even when the record
// has them. Custom fields: `_llm` (the call: model, usage, cost, answer), `_error` (a failed
// flow), `_record` (the record's flow id), `_truncated` (a body cut at the capture limit).

#include <string>

#include "llm_proxy/export/record_source.hpp"

namespace llm_proxy::exporter {

// The opening of a HAR file, up to the entries array.
std::string har_header();
// The entry of one flow, as one line of JSON text (no newline).
std::string har_entry(const flow_view& f);
// The closing after the last entry.
std::string har_footer();

}  // namespace llm_proxy::exporter

#pragma once
// HTTP helpers of the engine: hop-by-hop header handling (RFC 9110 section 7.6.1), error bodies.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/fields.hpp>
#include <string>
#include <string_view>

#include "llm_proxy/flow.hpp"

namespace llm_proxy::proxy {

// Copies end-to-end fields from `fields` into a header_list: drops hop-by-hop fields, those
// named in Connection, and the framing fields (Content-Length, Transfer-Encoding) the engine
// sets itself.
header_list end_to_end_headers(const boost::beast::http::fields& fields);

// Appends `headers` to `fields` as they are.
void append_headers(boost::beast::http::fields& fields, const header_list& headers);

// Removes every field named `name` (case-insensitive).
void erase_header(header_list& headers, std::string_view name);

// An OpenAI-style error body: {"error":{"message":..,"type":"llm_proxy_error","code":..}}.
std::string error_json(std::string_view code, std::string_view message);

// True for methods/statuses whose responses never carry a body.
bool response_has_no_body(std::string_view method, unsigned status);

// An idle connection's read buffer drops the room it took for a large body (it keeps a few
// KiB for the next head), so a thousand idle connections cost little memory.
void shrink_idle_buffer(boost::beast::flat_buffer& buffer);

}  // namespace llm_proxy::proxy

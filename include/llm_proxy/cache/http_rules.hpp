#pragma once
// The HTTP rules the cache follows: request Cache-Control, content negotiation, SSE framing.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/flow.hpp"

namespace llm_proxy::cache {

struct request_directives {
    bool no_cache = false;  // skip the lookup, store the fresh answer
    bool no_store = false;  // neither read nor write
};

// From Cache-Control (all its fields) and, when Cache-Control is absent, Pragma: no-cache.
request_directives parse_request_directives(const header_list& headers);

// True when a response's Cache-Control says no-store.
bool response_forbids_storing(const header_list& headers);

// True when the Accept-Encoding value accepts `coding` (q > 0, by name or by "*"). A missing
// header (nullptr) accepts nothing but identity.
bool accepts_encoding(const std::string_view* accept_encoding, std::string_view coding);

// The codings of a Content-Encoding value, lower case, in the order they were applied,
// identity left out: "gzip, BR" -> {"gzip", "br"}. Empty elements and spaces around commas are
// skipped; a malformed list is read up to where it stops being a list of tokens.
std::vector<std::string> content_codings(std::string_view content_encoding);

// Offsets just past each complete SSE event ("\n\n", "\r\n\r\n" or "\r\r" terminated) in
// `body`; the last offset is body.size() when the body ends with an event boundary.
std::vector<std::size_t> sse_event_ends(std::string_view body);

// True for GET, HEAD and POST.
bool cacheable_method(std::string_view method);

}  // namespace llm_proxy::cache

#pragma once
// HTTP helpers of the engine: hop-by-hop header handling (RFC 9110 section 7.6.1), error bodies.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/fields.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "http_framing.hpp"
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

// Appends `client_ip` to the last X-Forwarded-For field ("a, b"), or adds the field.
void append_forwarded_for(header_list& headers, std::string_view client_ip);

// An OpenAI-style error body: {"error":{"message":..,"type":"llm_proxy_error","code":..}}.
std::string error_json(std::string_view code, std::string_view message);

// The "host:port" or "[v6]:port" target of a CONNECT request: a host (IPv6 without its
// brackets) and a port from 1 to 65535. False for anything else, userinfo included.
bool parse_connect_target(std::string_view target, std::string& host, std::uint16_t& port);

// Fills scheme/host/port/target of an absolute-form request target ("http://host/path").
// Returns an error text, "" when it is one.
std::string parse_absolute_target(std::string_view target, request_head& head);

// True for methods/statuses whose responses never carry a body.
bool response_has_no_body(std::string_view method, unsigned status);

// RFC 9110 section 5.6.2 token (a field name, a method).
bool is_token(std::string_view s);
// Characters a field value may hold: no CR, LF, NUL or other control characters but HTAB.
bool is_field_value(std::string_view s);

// Request heads as they arrive (RFC 9112 sections 2 and 5): where a head ends and whether its
// bytes can be read one way only. The engine checks a head with these before Beast parses it,
// since Beast accepts what a proxy must not pass on (obs-fold).
struct head_scan {
    enum class status { need_more, complete, bad };
    status state = status::need_more;
    std::size_t length = 0;  // complete: the head's bytes, its empty line included
    std::string problem;     // bad: why
};
// Scans `bytes` from `from` (bytes before it were scanned by an earlier call and found
// incomplete): a LF not preceded by CR is bad at once, the first empty line completes the
// head. Empty lines before the request line are skipped (section 2.2).
head_scan scan_request_head(std::string_view bytes, std::size_t from);
// Checks a complete head line by line: a request line without control characters, field
// lines `token ":" value` with no whitespace before the colon, no obs-fold (a line starting
// with SP or HTAB), no CR, LF, NUL or other control character but HTAB in a value. Returns
// the problem, or "".
std::string request_head_problem(std::string_view head);

// The transfer codings of Transfer-Encoding field values, in order, lower-cased, their
// parameters dropped. An empty element (", ,") is skipped.
std::vector<std::string> transfer_codings(const boost::beast::http::fields& fields);

// How a message head announces its body: the framing field it needs.
struct head_framing {
    framing kind = framing::none;
    std::uint64_t length = 0;  // for framing::length
};

// "METHOD target HTTP/1.1", the headers, the framing field and the empty line. Fields whose
// name or value could not be sent as they are (CR, LF, NUL...) are left out.
std::string request_head_text(std::string_view method, std::string_view target,
                              const header_list& headers, head_framing body);

// "HTTP/1.x status reason", the headers, the framing field, Connection when the version's
// default does not say it, and the empty line.
std::string response_head_text(unsigned version, unsigned status, std::string_view reason,
                               const header_list& headers, head_framing body, bool keep_alive);

// An idle connection's read buffer drops the room it took for a large body (it keeps a few
// KiB for the next head), so a thousand idle connections cost little memory.
void shrink_idle_buffer(boost::beast::flat_buffer& buffer);

}  // namespace llm_proxy::proxy

#pragma once
// Why a flow failed: the `error.kind` of a record and the `code` of the proxy's JSON errors.

#include <string_view>

namespace llm_proxy {

enum class flow_error {
    none,                   // the flow succeeded
    bad_request,            // 400: malformed request head or body framing
    client_aborted,         // the client broke off its own request body
    client_disconnected,    // the client went away before or during the response
    dns,                    // 502: the upstream name does not resolve
    dns_timeout,            // 504
    connect,                // 502: TCP connect failed
    connect_timeout,        // 504
    tls,                    // 502: upstream TLS handshake failed
    tls_verification,       // 502: upstream certificate or name not verified
    tls_timeout,            // 504
    upstream_reset,         // 502: the upstream closed or reset
    upstream_timeout,       // 504: no upstream progress in --upstream-timeout
    bad_upstream_response,  // 502: invalid response head or body framing
    addon_error,            // 500: an addon's hook or body transform threw
    upstream_proxy,         // 502: the --upstream-proxy parent failed or refused
    // Requests refused before they were relayed (records carry `rejected`):
    proxy_auth_required,              // 407: --proxy-auth credentials missing or wrong
    request_timeout,                  // 408: the request head did not arrive in time
    request_header_fields_too_large,  // 431: the request head exceeds --max-header-bytes
    not_implemented,                  // 501: a transfer coding other than chunked
    not_found,                        // 404: no --reverse rule matches the path
};

// The name used in records and error bodies ("upstream_reset"); "" for none.
std::string_view to_string(flow_error e);

}  // namespace llm_proxy

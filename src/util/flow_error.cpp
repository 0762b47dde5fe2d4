#include "llm_proxy/flow_error.hpp"

namespace llm_proxy {

std::string_view to_string(flow_error e) {
    switch (e) {
        case flow_error::none:
            return "";
        case flow_error::bad_request:
            return "bad_request";
        case flow_error::client_aborted:
            return "client_aborted";
        case flow_error::client_disconnected:
            return "client_disconnected";
        case flow_error::dns:
            return "dns";
        case flow_error::dns_timeout:
            return "dns_timeout";
        case flow_error::connect:
            return "connect";
        case flow_error::connect_timeout:
            return "connect_timeout";
        case flow_error::tls:
            return "tls";
        case flow_error::tls_verification:
            return "tls_verification";
        case flow_error::tls_timeout:
            return "tls_timeout";
        case flow_error::upstream_reset:
            return "upstream_reset";
        case flow_error::upstream_timeout:
            return "upstream_timeout";
        case flow_error::bad_upstream_response:
            return "bad_upstream_response";
        case flow_error::addon_error:
            return "addon_error";
        case flow_error::upstream_proxy:
            return "upstream_proxy";
        case flow_error::proxy_auth_required:
            return "proxy_auth_required";
        case flow_error::request_timeout:
            return "request_timeout";
        case flow_error::request_header_fields_too_large:
            return "request_header_fields_too_large";
        case flow_error::not_implemented:
            return "not_implemented";
        case flow_error::not_found:
            return "not_found";
    }
    return "unknown";
}

}  // namespace llm_proxy

#pragma once
// What a span is written from: the fields of a finished flow it needs, as views. Either views
// into the flow itself (span_fields_of), or into a capture: the same fields packed into a few
// hundred bytes (pack_span_fields / unpack_span_fields), which a worker appends to the
// exporter's queue so that the flow is freed at once and the span is written later, with the
// rest of its batch, on the exporter's thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/flow.hpp"
#include "llm_proxy/llm/call.hpp"

namespace llm_proxy::otlp {

struct span_fields {
    std::string_view traceparent;  // the request's headers ("" when none)
    std::string_view tracestate;
    std::string_view method;
    std::string_view scheme;
    std::string_view host;
    std::string_view target;
    std::string_view flow_id;
    std::string_view cache;  // the flow's "cache" tag ("" when none)
    std::string_view error;  // the proxy's message
    std::string_view tunnel_end;
    std::int64_t start_ns = 0;
    std::int64_t duration_ns = 0;
    std::uint64_t request_bytes = 0;
    std::uint64_t response_bytes = 0;
    std::uint64_t tunnel_from_client = 0;
    std::uint64_t tunnel_from_upstream = 0;
    std::uint32_t status = 0;  // of the response, or of the proxy's rejection; 0: none
    // error.type: the proxy's error kind, else this status (a rejection, or a 4xx/5xx
    // answer; 0: none).
    flow_error error_kind = flow_error::none;
    std::uint32_t error_status = 0;
    std::uint16_t port = 0;
    bool http10 = false;
    bool tunnel = false;

    // The LLM call, when the flow was one.
    bool llm = false;
    llm::api api{};
    llm::provider provider{};
    std::string_view request_model;
    std::string_view response_model;
    std::string_view response_id;
    bool stream = false;
    bool incomplete = false;
    std::optional<std::uint64_t> usage[5];  // input, output, cache read, cache write, reasoning
    std::optional<double> cost_usd;
    std::optional<double> saved_usd;
    std::optional<double> first_token_ms;
    // The answers' finish reasons: from the flow's answers, or packed (each a 4-byte length
    // and its bytes).
    const std::vector<llm::answer>* answers = nullptr;
    std::string_view packed_finish_reasons;

    // Calls `f(std::string_view)` for each finish reason, in the answers' order.
    template <class F>
    void each_finish_reason(F f) const;
};

// Views into `f` (which must outlive them).
span_fields span_fields_of(const flow& f);
// Appends the fields, packed, to `out`.
void pack_span_fields(std::string& out, const span_fields& s);
// Views into `packed` (one pack_span_fields output, whole).
span_fields unpack_span_fields(std::string_view packed);

template <class F>
void span_fields::each_finish_reason(F f) const {
    if (answers != nullptr) {
        for (const auto& a : *answers) {
            if (a.finish_reason) {
                f(std::string_view(*a.finish_reason));
            }
        }
        return;
    }
    std::string_view rest = packed_finish_reasons;
    while (rest.size() >= 4) {
        std::uint32_t n = 0;
        for (int i = 0; i < 4; ++i) {
            n |= static_cast<std::uint32_t>(static_cast<unsigned char>(rest[i])) << (8 * i);
        }
        if (n > rest.size() - 4) {
            break;  // not a whole capture
        }
        f(rest.substr(4, n));
        rest.remove_prefix(4 + n);
    }
}

}  // namespace llm_proxy::otlp

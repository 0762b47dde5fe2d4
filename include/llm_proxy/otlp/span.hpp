#pragma once
// One finished flow as an OpenTelemetry span, in the OTLP/HTTP JSON encoding (docs:
// docs/observability.md, "OpenTelemetry spans"). LLM calls follow the GenAI semantic
// conventions (span name "{gen_ai.operation.name} {gen_ai.request.model}", gen_ai.*
// attributes); every other flow is a plain HTTP client span.

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llm_proxy/flow.hpp"
#include "llm_proxy/llm/call.hpp"

namespace llm_proxy::otlp {

// A W3C trace context: the `traceparent` a client sent, so that the span joins its trace.
struct trace_context {
    std::string trace_id;   // 32 lowercase hex digits, not all zero
    std::string parent_id;  // 16 lowercase hex digits, not all zero
    std::uint8_t flags = 0;
    std::string trace_state;  // the `tracestate` header as received ("" when none)
};
// Parses a traceparent header value (version 00, or a later version read as 00 demands);
// nullopt when it is not a valid one.
std::optional<trace_context> parse_traceparent(std::string_view value);

// Random ids: 16 bytes (trace) and 8 bytes (span) as lowercase hex, never all zero.
std::string random_trace_id();
std::string random_span_id();

struct span_options {
    // Adds gen_ai.input.messages, gen_ai.system_instructions and gen_ai.output.messages (the
    // prompts and answers). Off by default: they hold what users typed.
    bool content = false;
    // The longest attribute string sent; longer values are cut (UTF-8 kept whole).
    std::size_t max_attribute_length = 64 * 1024;
};

// The span of one finished flow (an element of scopeSpans[].spans), and the same as JSON
// text (bytes that are not UTF-8 become U+FFFD).
nlohmann::json make_span(const flow& f, const span_options& options);
std::string span_text(const flow& f, const span_options& options);
// The same text appended to `out`.
void append_span(std::string& out, const flow& f, const span_options& options);
// The same span in the protobuf encoding (opentelemetry/proto/trace/v1), appended to `out` as
// a `spans` field of ScopeSpans (tag, length, Span message): a batch is its spans joined.
void append_span_protobuf(std::string& out, const flow& f, const span_options& options);
// The span's JSON text (render_span) or protobuf entry (render_span_protobuf) in a buffer of
// the calling thread, valid until that thread renders its next span: no allocation per span.
std::string_view render_span(const flow& f, const span_options& options);
std::string_view render_span_protobuf(const flow& f, const span_options& options);
// What a span needs of a flow, packed into a few hundred bytes appended to `out`, so that the
// flow can be freed at once and its span rendered later (without message content):
// render_captured_span gives the same span as render_span(_protobuf) (ids aside: they are
// drawn when it is rendered), in the same per-thread buffer.
void capture_span(std::string& out, const flow& f);
std::string_view render_captured_span(std::string_view capture, const span_options& options,
                                      bool protobuf);

// The operation name of the GenAI conventions for an API ("chat", "text_completion",
// "embeddings", "generate_content").
const char* operation_name(llm::api a);
// The gen_ai.provider.name value ("openai", "anthropic", "gcp.gemini").
const char* provider_name(llm::provider p);

// The resource every span of this process carries: service.name and the attributes of
// OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2", values percent-decoded).
struct resource {
    std::vector<std::pair<std::string, std::string>> attributes;
};
resource make_resource(std::string_view service_name, std::string_view resource_attributes);

// The body of one POST to /v1/traces: an ExportTraceServiceRequest holding `spans` (JSON
// texts of make_span) under one resource and the instrumentation scope "llm_proxy".
std::string export_request(const resource& r, const std::vector<std::string>& spans);
// The same with the spans' texts already joined by commas.
std::string export_request_joined(const resource& r, std::string_view joined_spans);
// The protobuf ExportTraceServiceRequest holding `span_entries` (append_span_protobuf's
// output, joined), under the same resource and scope.
std::string export_request_protobuf(const resource& r, std::string_view span_entries);
// Either body written into `out` (replacing what it held, keeping its capacity): the exporter
// reuses one buffer for every batch.
void write_export_request(std::string& out, const resource& r, std::string_view spans,
                          bool protobuf);

}  // namespace llm_proxy::otlp

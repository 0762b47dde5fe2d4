#pragma once
// Reads an OTLP ExportTraceServiceRequest in the protobuf encoding and gives it in the OTLP
// JSON encoding (lowerCamelCase names, ids as lowercase hex, 64-bit integers as strings,
// enums as numbers), so that a protobuf batch can be checked and compared like a JSON one.
// Written from the protos (opentelemetry/proto/{collector/trace,trace,common,resource}/v1)
// apart from the proxy's encoder, and strict: an unknown field, a wrong wire type, a length
// past the end or a string that is not UTF-8 is an error.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace llm_proxy::test {

// The request as OTLP JSON, or nullopt with `error` saying what is wrong.
std::optional<nlohmann::json> otlp_protobuf_to_json(std::string_view body, std::string& error);

}  // namespace llm_proxy::test

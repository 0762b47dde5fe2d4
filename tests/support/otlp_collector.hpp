#pragma once
// A test OpenTelemetry collector: OTLP/HTTP on 127.0.0.1, in this process. It keeps every
// POST it receives, answers with a status the test chooses, can go down (stop listening) and
// come back on the same port, and checks each body against the OTLP JSON encoding of the
// trace protos (opentelemetry/proto/{trace,common,resource}/v1).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace llm_proxy::test {

// Problems of an ExportTraceServiceRequest in the OTLP JSON encoding: unknown fields, wrong
// types, ids that are not lowercase hex of the right length, timestamps that are not decimal
// nanoseconds, an end before the start, an AnyValue without exactly one value... Empty when
// it is valid.
std::vector<std::string> otlp_trace_problems(const nlohmann::json& request);

class otlp_collector {
  public:
    otlp_collector();  // listens on an ephemeral port
    ~otlp_collector();
    otlp_collector(const otlp_collector&) = delete;
    otlp_collector& operator=(const otlp_collector&) = delete;

    std::uint16_t port() const { return port_; }
    // "http://127.0.0.1:<port>" (the base endpoint; spans go to /v1/traces).
    std::string endpoint() const;

    // The status of the next answers (200 by default).
    void answer_with(unsigned status);
    // Stops listening and drops open connections (the collector is down) / listens again on
    // the same port.
    void go_down();
    void come_back();
    // Closes the open connections but keeps listening (a collector ending idle keep-alive
    // connections).
    void close_connections();
    // Answers with "Connection: close" and closes each connection after one request.
    void close_after_answer(bool yes);
    // Connections accepted so far.
    std::size_t connections() const;

    struct request {
        std::string method;
        std::string target;
        std::map<std::string, std::string> headers;  // names lower-case
        std::string body;                            // gzip already undone; OTLP JSON
        std::string protobuf;        // a protobuf body as received (then `body` is its JSON)
        std::string protobuf_error;  // why it did not decode ("" when it did)
        unsigned answered = 0;       // the status it got
        std::size_t connection = 0;  // which accepted connection (from 1)
    };
    std::vector<request> requests() const;
    // The spans of every request answered 2xx, in arrival order.
    std::vector<nlohmann::json> spans() const;
    // The full bodies of the requests answered 2xx, parsed.
    std::vector<nlohmann::json> accepted_bodies() const;
    // Waits until `n` spans were accepted; false on timeout.
    bool wait_for_spans(std::size_t n,
                        std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
    // Waits until `n` requests arrived (whatever they got).
    bool wait_for_requests(std::size_t n,
                           std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

    struct impl;

  private:
    std::shared_ptr<impl> impl_;
    std::uint16_t port_ = 0;
};

// The value of attribute `key` of a span (its AnyValue object), or null.
nlohmann::json span_attribute(const nlohmann::json& span, const std::string& key);
// The same as a string: stringValue, intValue (a string in OTLP JSON), or the dump of others.
std::string span_attribute_text(const nlohmann::json& span, const std::string& key);

}  // namespace llm_proxy::test

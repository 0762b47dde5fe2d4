#pragma once
// Sends one span per finished flow to an OpenTelemetry collector over OTLP/HTTP (JSON), on its
// own thread: workers only render the span's text (or, with message content, keep the flow
// for the exporter's thread to render) and append it to a bounded queue. Spans go in batches
// (up to max_batch, or after batch_delay); a batch the collector does not take (down, 429,
// 5xx) goes to the spool (spool.hpp) and is sent again, oldest first, with exponential
// backoff. Nothing waits on the collector; what is dropped (a full queue or spool, a batch
// the collector rejects as malformed) is counted and logged.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "llm_proxy/flow.hpp"
#include "llm_proxy/otlp/span.hpp"

namespace llm_proxy::otlp {

struct exporter_options {
    std::string url;  // the traces URL, e.g. http://127.0.0.1:4318/v1/traces
    std::vector<std::pair<std::string, std::string>> headers;
    bool gzip = false;
    bool protobuf = false;  // http/protobuf (application/x-protobuf) instead of http/json
    std::chrono::milliseconds timeout{10000};
    otlp::resource resource;
    span_options spans;
    std::filesystem::path spool_dir;  // empty: keep unsent batches in memory
    std::uint64_t spool_bytes = 64ull << 20;
    std::size_t max_batch = 512;
    std::chrono::milliseconds batch_delay{1000};
    std::size_t max_queue = 8192;
    // With message content the flows themselves wait for the exporter thread: at most this
    // many bytes of them (flow_footprint) in the queue; past it a flow's span is captured
    // without its content (counted in spans_without_content). The first flow of a round is
    // always taken whole.
    std::uint64_t max_content_bytes = 64ull << 20;
    std::chrono::milliseconds min_backoff{1000};
    std::chrono::milliseconds max_backoff{30000};
    std::optional<std::filesystem::path> extra_ca;  // --upstream-ca, for an https collector
    std::chrono::milliseconds shutdown_timeout{5000};
};

struct exporter_stats {
    std::uint64_t exported_spans = 0;  // the collector took them
    std::uint64_t dropped_spans = 0;   // queue or spool full, rejected, or lost at shutdown
    std::uint64_t failed_exports = 0;  // POSTs that failed (each retried or dropped)
    std::uint64_t queued_spans = 0;    // waiting for the exporter thread
    std::uint64_t spooled_spans = 0;   // waiting in the spool
    std::uint64_t spooled_bytes = 0;
    // Spans sent without their message content: too many bytes of flows with content waited
    // for the exporter thread (max_content_bytes).
    std::uint64_t spans_without_content = 0;
};

// Spans waiting for the exporter thread: what the workers captured of their flows
// (capture_span), one after another in a buffer that is handed back and forth (no allocation,
// and no free on another thread, per span), rendered by the exporter thread a batch at a time;
// and, with message content, the flows themselves.
struct span_queue {
    std::string captures;           // capture_span's output for each span, one after another
    std::vector<std::size_t> ends;  // where each span of `captures` ends
    std::vector<std::shared_ptr<const flow>> flows;
    std::size_t size() const { return ends.size() + flows.size(); }
    void clear() {
        captures.clear();
        ends.clear();
        flows.clear();
    }
    void swap(span_queue& other) {
        captures.swap(other.captures);
        ends.swap(other.ends);
        flows.swap(other.flows);
    }
};

class exporter {
  public:
    // Throws std::invalid_argument when the URL is not http(s).
    explicit exporter(exporter_options options);
    ~exporter();
    exporter(const exporter&) = delete;
    exporter& operator=(const exporter&) = delete;

    // From any thread: queues the finished flow's span (never blocks on the collector).
    void push(std::shared_ptr<const flow> f);
    // Sends what is queued (the spool is kept for the next run when it is on disk), then stops
    // the thread. Waits at most shutdown_timeout for the collector.
    void close();

    exporter_stats stats() const;
    const exporter_options& options() const { return options_; }

    struct state;

  private:
    exporter_options options_;
    std::shared_ptr<state> state_;
    std::thread thread_;
};

// The traces URL for a base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, --otlp-endpoint):
// "/v1/traces" appended to its path, unless the path already ends with it.
std::string traces_url(std::string_view endpoint);
// Whether `url` is an http:// or https:// URL with a host (what the exporter can send to).
bool is_http_url(const std::string& url);
// "k=v,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS; values percent-decoded). Throws
// std::invalid_argument naming the bad item.
std::vector<std::pair<std::string, std::string>> parse_headers(std::string_view text);

}  // namespace llm_proxy::otlp

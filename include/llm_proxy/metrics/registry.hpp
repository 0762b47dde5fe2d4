#pragma once
// The proxy's Prometheus metrics: what finished flows add up to, and gauges read at scrape time.
//
// Counting is sharded by thread: each thread that observes flows (a worker) gets a shard of its
// own, with a mutex only that thread and the scrape ever take, so the request path never waits
// for another worker. The scrape sums the shards. Label values that come from traffic (hosts,
// models) are bounded sets shared by all threads: the first `limit` distinct values get a
// series of their own, later ones are counted under "other"; finding a value takes no lock.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/flow.hpp"

namespace llm_proxy::metrics {

// A bounded set of label values: ids 0..limit-1 for the first distinct values, `other_id()`
// for the rest. Thread-safe; id() takes a lock only to add a value (at most `limit` times).
class label_values {
  public:
    explicit label_values(std::size_t limit);
    label_values(const label_values&) = delete;
    label_values& operator=(const label_values&) = delete;

    std::uint32_t id(std::string_view value);
    std::uint32_t other_id() const { return static_cast<std::uint32_t>(limit_); }
    // The value of `id`; "other" for other_id().
    std::string_view name(std::uint32_t id) const;
    std::size_t size() const { return published_.load(std::memory_order_acquire); }
    std::size_t limit() const { return limit_; }

  private:
    struct slot {
        std::size_t hash = 0;
        std::string value;
    };
    std::size_t limit_;
    std::unique_ptr<slot[]> slots_;
    std::atomic<std::size_t> published_{0};  // slots [0, published_) are written and final
    std::mutex add_mutex_;
};

// Upper bounds (seconds) of the latency histograms' buckets.
inline constexpr std::array<double, 16> latency_buckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300};

struct registry_options {
    std::size_t max_hosts = 50;
    std::size_t max_models = 50;
};

class registry {
  public:
    explicit registry(registry_options options = {});
    ~registry();
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    // Counts one finished flow (the hook on_flow_done), on the calling thread's shard. Blind
    // tunnels (flow.tunnel) are not requests and are left out.
    void observe(const flow& f);

    // A value read at each scrape (a gauge, or a counter kept elsewhere, e.g. by the record
    // writer). `type` is "gauge" or "counter". Register before the first scrape.
    void add_callback(std::string name, std::string type, std::string help,
                      std::function<double()> read);

    // The whole exposition, text format 0.0.4.
    std::string render() const;

    // Shards created so far (one per thread that observed a flow).
    std::size_t shard_count() const;

    struct shard;

  private:
    shard& local_shard();

    struct callback {
        std::string name;
        std::string type;
        std::string help;
        std::function<double()> read;
    };

    registry_options options_;
    std::uint64_t id_;  // unique per registry: the key of each thread's shard cache
    mutable label_values hosts_;
    mutable label_values models_;
    mutable std::mutex shards_mutex_;  // the list only; never taken on the request path once
                                       // a thread has its shard
    std::vector<std::unique_ptr<shard>> shards_;
    std::vector<callback> callbacks_;
};

// The method label: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT or other.
std::string_view method_class(std::string_view method);

}  // namespace llm_proxy::metrics

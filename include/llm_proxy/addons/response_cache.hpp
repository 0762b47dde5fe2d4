#pragma once
// The response cache: answers a repeated identical request from a store instead of the
// upstream. See docs/cache.md for the rules.

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/cache/entry.hpp"
#include "llm_proxy/cache/inflight.hpp"
#include "llm_proxy/cache/store.hpp"

namespace llm_proxy::addons {

struct response_cache_options {
    // Request headers whose values become part of the key (hashed).
    std::vector<std::string> key_headers;
    // Response headers never written to the store (secrets such as Set-Cookie).
    std::vector<std::string> filter_response_headers;
    // Largest request body (decoded for the key) and response body considered; longer
    // ones pass through uncached.
    std::size_t max_body = 64 * 1024 * 1024;
    // How long identical requests wait for a leader's answer before going upstream themselves.
    std::chrono::milliseconds max_coalesce_wait{std::chrono::minutes(15)};
};

class response_cache : public addon {
  public:
    static constexpr std::string_view header_name = "X-Llm_proxy-Cache";

    response_cache(std::shared_ptr<cache::store> store, response_cache_options options);
    std::string_view name() const override { return "cache"; }
    // The body is part of the key: read first for cacheable requests.
    std::size_t request_buffer_limit(const flow& f) const override;
    // Captured for storing, only when this flow's answer may be stored.
    std::size_t response_capture_limit(const flow& f) const override;
    boost::asio::awaitable<void> on_request(flow& f) override;
    boost::asio::awaitable<void> on_response_headers(flow& f) override;
    void on_response_end(flow& f) override;
    void on_error(flow& f) override;
    void close() override;

    // Pieces of work done on the cache's own thread so far (hashing, decoding, encoding of
    // large bodies), and the id of that thread: tests check that large bodies never keep an
    // event loop busy.
    std::uint64_t off_loop_work() const { return off_loop_work_.load(); }
    std::thread::id work_thread() const { return work_thread_.load(); }

  private:
    struct flow_state;
    flow_slot<flow_state> state_;
    void skip(flow& f, std::string reason);
    boost::asio::awaitable<void> answer_from(flow& f, std::shared_ptr<const cache::entry> e,
                                             bool coalesced);
    // Decodes `raw` into e.body, stores e under `key` and hands it to the waiters; else (and
    // nothing stored) why not: the body cannot be decoded, or decodes past --cache-max-body.
    std::optional<std::string_view> store_entry(cache::entry e, std::string_view raw,
                                                const std::string& key,
                                                std::unique_ptr<cache::lead> leader);

    std::shared_ptr<cache::store> store_;
    response_cache_options options_;
    std::shared_ptr<cache::inflight_table> inflight_;
    // Hashing, decoding and encoding of large bodies, off the event loops.
    boost::asio::thread_pool work_{1};
    std::atomic<std::uint64_t> off_loop_work_{0};
    // Captured bodies waiting for work_ (one is always admitted when none waits).
    std::atomic<std::size_t> queued_store_bytes_{0};
    static constexpr std::size_t max_queued_store_bytes = 256u << 20;
    std::atomic<std::thread::id> work_thread_{};
    // Counts a piece of off-loop work; called on the work thread.
    void note_off_loop_work();
};

}  // namespace llm_proxy::addons

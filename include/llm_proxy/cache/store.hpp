#pragma once
// Where cached responses live. A store maps a key (64 hex digits, the SHA-256 of the request)
// to an opaque value (a serialized cache entry, see entry.hpp) and enforces the limits.
// Stores never block the caller's event loop: lookups complete through a callback, writes
// are queued.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace llm_proxy::cache {

struct store_limits {
    std::chrono::milliseconds ttl{0};  // 0: entries never expire
    std::uint64_t max_entries = 0;     // 0: no limit
    std::uint64_t max_bytes = 0;       // 0: no limit (counts value sizes)
};

struct get_result {
    enum class status { hit, miss, unavailable };
    status state = status::miss;
    std::string value;  // the stored value when state == hit
    std::string error;  // why, when state == unavailable
};

struct store_stats {
    std::uint64_t entries = 0;
    std::uint64_t bytes = 0;
};

class store {
  public:
    virtual ~store() = default;
    virtual std::string_view engine() const = 0;

    // Looks `key` up. `done` is called exactly once, on any thread (possibly before async_get
    // returns). An entry older than the TTL counts as a miss. A hit refreshes the entry's
    // place in the least-recently-used order. A store that cannot answer (e.g. its server
    // went away) reports `unavailable` instead of failing.
    virtual void async_get(const std::string& key, std::function<void(get_result)> done) = 0;

    // Stores (or replaces) `value` under `key`, created at `created` (Unix time, ms), then
    // evicts least-recently-used entries until the limits hold. Returns at once; the write
    // happens in the background. Failures are logged, never thrown.
    virtual void put(const std::string& key, std::string value, std::int64_t created_ms) = 0;

    // Drops every entry.
    virtual void clear() = 0;

    // Entry count and bytes as the store knows them (approximate for shared stores).
    virtual store_stats stats() = 0;

    // Finishes queued writes and releases resources. Called once at shutdown; no call
    // follows it.
    virtual void close() = 0;
};

// Unix time in milliseconds.
std::int64_t unix_ms_now();

}  // namespace llm_proxy::cache

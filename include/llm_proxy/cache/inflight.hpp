#pragma once
// Coalescing of concurrent identical misses: the first flow for a key leads (looks the key up
// and, on a miss, goes upstream); flows for the same key that arrive meanwhile wait for the
// leader's outcome instead of sending their own upstream request.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "llm_proxy/cache/entry.hpp"

namespace llm_proxy::cache {

class inflight_table;

// Held by the leading flow. publish() hands the outcome to the waiters (nullptr: nothing to
// share, each waiter goes upstream itself). Destroying an unpublished lead publishes nullptr,
// so waiters are released whatever happens to the leader.
class lead {
  public:
    lead(std::shared_ptr<inflight_table> table, std::string key);
    ~lead();
    lead(const lead&) = delete;
    lead& operator=(const lead&) = delete;

    void publish(std::shared_ptr<const entry> result);

  private:
    std::shared_ptr<inflight_table> table_;
    std::string key_;
    bool published_ = false;
};

struct join_result {
    std::unique_ptr<lead> leader;         // set: this flow leads
    std::shared_ptr<const entry> answer;  // waited: the leader's entry (may be nullptr)
};

class inflight_table : public std::enable_shared_from_this<inflight_table> {
  public:
    // Waiters give up after this long and go upstream themselves.
    explicit inflight_table(std::chrono::milliseconds max_wait) : max_wait_(max_wait) {}

    // Becomes the leader for `key`, or waits for the current leader's outcome. Must run on
    // an io_context-backed coroutine; the wait never blocks the thread.
    boost::asio::awaitable<join_result> join(const std::string& key);

    // Stops coalescing and forgets every waiter (shutdown: event loops are gone).
    void close();

    // Number of keys with a leader (for tests).
    std::size_t size();

  private:
    friend class lead;
    struct slot;
    struct group;
    void publish(const std::string& key, std::shared_ptr<const entry> result);

    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<group>> groups_;
    bool closed_ = false;
    std::chrono::milliseconds max_wait_;
};

}  // namespace llm_proxy::cache

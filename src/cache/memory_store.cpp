#include "llm_proxy/cache/memory_store.hpp"

#include <list>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace llm_proxy::cache {

namespace {

class memory_store final : public store {
  public:
    explicit memory_store(store_limits limits) : limits_(limits) {}

    std::string_view engine() const override { return "memory"; }

    void async_get(const std::string& key, std::function<void(get_result)> done) override {
        get_result result = lookup(key);
        // Called without the lock held, so `done` may use the store again.
        done(std::move(result));
    }

    void put(const std::string& key, std::string value, std::int64_t created_ms) override {
        std::lock_guard lock(mutex_);
        // A replaced entry goes even when the new value is too big to keep: a get never
        // returns a value older than the last put.
        if (auto it = index_.find(key); it != index_.end()) {
            erase(it->second);
        }
        if (limits_.max_bytes != 0 && value.size() > limits_.max_bytes) {
            return;
        }
        bytes_ += value.size();
        lru_.push_front(entry{key, std::move(value), created_ms});
        index_.emplace(key, lru_.begin());
        evict();
    }

    void clear() override {
        std::lock_guard lock(mutex_);
        index_.clear();
        lru_.clear();
        bytes_ = 0;
    }

    store_stats stats() override {
        std::lock_guard lock(mutex_);
        return store_stats{index_.size(), bytes_};
    }

    void close() override { clear(); }

  private:
    struct entry {
        std::string key;
        std::string value;
        std::int64_t created_ms;
    };
    using lru_list = std::list<entry>;

    get_result lookup(const std::string& key) {
        std::lock_guard lock(mutex_);
        auto it = index_.find(key);
        if (it == index_.end()) {
            return get_result{};
        }
        auto node = it->second;
        if (limits_.ttl.count() > 0 && unix_ms_now() - node->created_ms > limits_.ttl.count()) {
            erase(node);
            return get_result{};
        }
        lru_.splice(lru_.begin(), lru_, node);  // now the most recently used
        return get_result{get_result::status::hit, node->value, {}};
    }

    // Requires mutex_.
    void erase(lru_list::iterator node) {
        bytes_ -= node->value.size();
        index_.erase(node->key);
        lru_.erase(node);
    }

    // Drops least-recently-used entries until the limits hold. Requires mutex_.
    void evict() {
        while (!lru_.empty() &&
               ((limits_.max_entries != 0 && index_.size() > limits_.max_entries) ||
                (limits_.max_bytes != 0 && bytes_ > limits_.max_bytes))) {
            erase(std::prev(lru_.end()));
        }
    }

    const store_limits limits_;
    std::mutex mutex_;
    lru_list lru_;  // most recently used first
    std::unordered_map<std::string, lru_list::iterator> index_;
    std::uint64_t bytes_ = 0;  // sum of the values' sizes
};

}  // namespace

std::unique_ptr<store> make_memory_store(store_limits limits) {
    return std::make_unique<memory_store>(limits);
}

}  // namespace llm_proxy::cache

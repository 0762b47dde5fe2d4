#include "llm_proxy/cache/inflight.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

namespace llm_proxy::cache {

namespace asio = boost::asio;

// One waiting flow. Owned by the waiter's coroutine; the group only holds a weak reference,
// so a waiter that is torn down (shutdown) simply disappears from the group. The timer is
// cancelled from the waiter's own thread (a post), as Asio timers are not thread-safe.
struct inflight_table::slot {
    explicit slot(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    std::mutex mutex;
    bool done = false;
    std::shared_ptr<const entry> result;
};

struct inflight_table::group {
    std::vector<std::weak_ptr<slot>> waiters;
};

lead::lead(std::shared_ptr<inflight_table> table, std::string key)
    : table_(std::move(table)), key_(std::move(key)) {}

lead::~lead() {
    if (!published_) {
        table_->publish(key_, nullptr);
    }
}

void lead::publish(std::shared_ptr<const entry> result) {
    if (!published_) {
        published_ = true;
        table_->publish(key_, std::move(result));
    }
}

asio::awaitable<join_result> inflight_table::join(const std::string& key) {
    auto ex = co_await asio::this_coro::executor;
    std::shared_ptr<slot> me;
    {
        std::lock_guard lock(mutex_);
        if (closed_) {
            co_return join_result{};
        }
        auto [it, inserted] = groups_.try_emplace(key);
        if (inserted) {
            it->second = std::make_shared<group>();
            join_result r;
            r.leader = std::make_unique<lead>(shared_from_this(), key);
            co_return r;
        }
        me = std::make_shared<slot>(ex);
        it->second->waiters.push_back(me);
    }
    me->timer.expires_after(max_wait_);
    co_await me->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    std::lock_guard lock(me->mutex);
    me->done = true;  // a publish after a timeout finds nothing to hand over
    co_return join_result{nullptr, me->result};
}

void inflight_table::publish(const std::string& key, std::shared_ptr<const entry> result) {
    std::shared_ptr<group> g;
    {
        std::lock_guard lock(mutex_);
        auto it = groups_.find(key);
        if (it == groups_.end()) {
            return;
        }
        g = std::move(it->second);
        groups_.erase(it);
    }
    for (auto& weak : g->waiters) {
        auto s = weak.lock();
        if (!s) {
            continue;
        }
        {
            std::lock_guard lock(s->mutex);
            if (s->done) {
                continue;
            }
            s->result = result;
        }
        asio::post(s->timer.get_executor(), [weak] {
            if (auto s = weak.lock()) {
                s->timer.cancel();
            }
        });
    }
}

void inflight_table::close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    groups_.clear();
}

std::size_t inflight_table::size() {
    std::lock_guard lock(mutex_);
    return groups_.size();
}

}  // namespace llm_proxy::cache

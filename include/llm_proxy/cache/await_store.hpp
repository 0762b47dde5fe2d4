#pragma once
// store::async_get as an awaitable that resumes on the calling coroutine's executor.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>

#include "llm_proxy/cache/store.hpp"

namespace llm_proxy::cache {

inline boost::asio::awaitable<get_result> get(store& s, const std::string& key) {
    namespace asio = boost::asio;
    return asio::async_initiate<decltype(asio::use_awaitable), void(get_result)>(
        [&s, &key](auto handler) {
            // std::function needs a copyable callable; the handler is move-only.
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            s.async_get(key, [h](get_result r) mutable {
                auto ex = asio::get_associated_executor(*h);
                asio::post(ex, [h, r = std::move(r)]() mutable { std::move (*h)(std::move(r)); });
            });
        },
        asio::use_awaitable);
}

}  // namespace llm_proxy::cache

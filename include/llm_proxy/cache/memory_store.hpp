#pragma once
// An in-process cache store: a hash map plus a least-recently-used list behind one mutex.
// async_get completes before it returns. Nothing survives the process.

#include <memory>

#include "llm_proxy/cache/store.hpp"

namespace llm_proxy::cache {

std::unique_ptr<store> make_memory_store(store_limits limits);

}  // namespace llm_proxy::cache

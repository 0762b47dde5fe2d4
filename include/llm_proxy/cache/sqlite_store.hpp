#pragma once
// A cache store in one SQLite database, <dir>/cache.sqlite3 (WAL mode), that several proxy
// processes may share. All database work runs on a thread owned by the store; async_get calls
// `done` from that thread. Limits are enforced from what is in the database, so they hold
// across processes.

#include <filesystem>
#include <memory>

#include "llm_proxy/cache/store.hpp"

namespace llm_proxy::cache {

// Creates `dir` (and missing parents, mode 0700) and the database (mode 0600) if needed.
// Throws std::runtime_error naming the path and the reason when the directory cannot be
// created or the database cannot be opened (not writable, not a database, ...).
//
// `done` callbacks run on the store's thread, after the batch's transaction has ended. They
// may call any method of the store except close(), and must not destroy it.
std::unique_ptr<store> open_sqlite_store(const std::filesystem::path& dir, store_limits limits);

}  // namespace llm_proxy::cache

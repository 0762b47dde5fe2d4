#pragma once
// The Lua scripts of the Redis store. Each runs atomically in Redis, so the index, the sizes
// and the byte total stay consistent however many proxies share them.
//
// KEYS[1] = lru index (sorted set), KEYS[2] = sizes hash, KEYS[3] = byte total, and for get and
// put KEYS[4] = the entry.
//   get    ARGV = key. Returns the value (refreshing its LRU score) or nil; a value that is
//          gone (expired, deleted elsewhere) is dropped from the index.
//   put    ARGV = key, value, px (0: no expiry), max_entries, max_bytes, ttl ms (0: none), entry
//          key prefix. Stores the value, drops index members that have certainly expired and
//          evicts least recently used entries until the limits hold. Returns how many entries
//          it removed.
//   clear  ARGV = entry key prefix, batch size. Removes up to a batch of indexed entries; once
//          the index is empty, deletes the sizes hash and the total too. Returns how many
//          members remain.

#include <string>

namespace llm_proxy::cache {

struct lua_script {
    const char* name;
    std::string source;
    std::string sha;  // from SCRIPT LOAD on the current connection; empty: use EVAL
};

struct redis_scripts {
    redis_scripts();

    lua_script get;
    lua_script put;
    lua_script clear;
};

}  // namespace llm_proxy::cache

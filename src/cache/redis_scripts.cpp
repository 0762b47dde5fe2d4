// The Lua scripts of the Redis store.

#include "redis_scripts.hpp"

#include <string_view>

namespace llm_proxy::cache {

namespace {

// Lua shared by the scripts. KEYS[1] = lru index, KEYS[2] = sizes hash, KEYS[3] = byte total
// (KEYS[4] = the entry, for get and put). Nil replies arrive in Lua as `false`.
constexpr std::string_view kLuaCommon = R"lua(
local lru, sizes, bytes = KEYS[1], KEYS[2], KEYS[3]

-- Removes member m from the index and the byte accounting.
local function unindex(m)
  redis.call('ZREM', lru, m)
  local size = redis.call('HGET', sizes, m)
  if size then
    redis.call('HDEL', sizes, m)
    redis.call('DECRBY', bytes, size)
  end
end

-- A last-use score for m: server time in ms (with microseconds), raised above the current
-- maximum if needed so that the LRU order is strict even for uses within one microsecond or
-- across clock steps.
local function use_score(m)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local top = redis.call('ZREVRANGE', lru, 0, 0, 'WITHSCORES')
  if top[2] then
    local last = tonumber(top[2])
    if now <= last then
      if top[1] == m then now = last else now = last + 0.001 end
    end
  end
  return now
end

-- Lua would format large numbers with 14 significant digits only.
local function fmt(score)
  return string.format('%.3f', score)
end
)lua";

// ARGV[1] = key. Returns the value (refreshing its LRU score) or nil; a value that is gone
// (expired, or deleted elsewhere) is dropped from the index.
constexpr std::string_view kLuaGet = R"lua(
local m = ARGV[1]
local value = redis.call('GET', KEYS[4])
-- The bookkeeping writes may be refused (OOM under maxmemory-policy noeviction, a read-only
-- replica); the answer stands regardless.
if not value then
  pcall(unindex, m)
  return false
end
pcall(function()
  if redis.call('ZADD', lru, fmt(use_score(m)), m) == 1 then
    -- Present but not indexed (e.g. written while a clear was running): account for it.
    if redis.call('HSETNX', sizes, m, string.len(value)) == 1 then
      redis.call('INCRBY', bytes, string.len(value))
    end
  end
end)
return value
)lua";

// ARGV = key, value, px (0: no expiry), max_entries, max_bytes, ttl ms (0: none), entry key
// prefix. Stores the value, then drops index members that have certainly expired and evicts
// least recently used entries until the limits hold. Returns how many entries it removed.
constexpr std::string_view kLuaPut = R"lua(
local m, value = ARGV[1], ARGV[2]
local px, max_entries = tonumber(ARGV[3]), tonumber(ARGV[4])
local max_bytes, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local entry_prefix = ARGV[7]

local function drop(victim)
  unindex(victim)
  redis.call('DEL', entry_prefix .. victim)
end

local now = use_score(m)
if px > 0 then
  redis.call('SET', KEYS[4], value, 'PX', px)
else
  redis.call('SET', KEYS[4], value)
end
local size = string.len(value)
local old = tonumber(redis.call('HGET', sizes, m) or '0')
redis.call('HSET', sizes, m, size)
redis.call('INCRBY', bytes, size - old)
redis.call('ZADD', lru, fmt(now), m)

local removed = 0
if ttl > 0 then
  -- A member last used before now - ttl was written before that too: its value has expired.
  local stale = redis.call('ZRANGEBYSCORE', lru, '-inf', '(' .. fmt(now - ttl), 'LIMIT', 0, 100)
  for _, s in ipairs(stale) do
    drop(s)
    removed = removed + 1
  end
end
while (max_entries > 0 and redis.call('ZCARD', lru) > max_entries) or
      (max_bytes > 0 and tonumber(redis.call('GET', bytes) or '0') > max_bytes) do
  local oldest = redis.call('ZRANGE', lru, 0, 1)
  local victim = oldest[1]
  if victim == m then victim = oldest[2] end
  if not victim then break end
  drop(victim)
  removed = removed + 1
end
return removed
)lua";

// ARGV = entry key prefix, batch size. Removes up to a batch of indexed entries; once the index
// is empty, deletes the sizes hash and the total too. Returns how many members remain.
constexpr std::string_view kLuaClear = R"lua(
local batch = redis.call('ZRANGE', lru, 0, tonumber(ARGV[2]) - 1)
for _, m in ipairs(batch) do
  unindex(m)
  redis.call('DEL', ARGV[1] .. m)
end
local remaining = redis.call('ZCARD', lru)
if remaining == 0 then
  redis.call('DEL', sizes, bytes)
end
return remaining
)lua";

}  // namespace

redis_scripts::redis_scripts()
    : get{"get", std::string(kLuaCommon) + std::string(kLuaGet), {}},
      put{"put", std::string(kLuaCommon) + std::string(kLuaPut), {}},
      clear{"clear", std::string(kLuaCommon) + std::string(kLuaClear), {}} {}

}  // namespace llm_proxy::cache

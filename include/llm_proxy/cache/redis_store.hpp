#pragma once
// A cache store in Redis that several proxy processes may share.
//
// Data model, under a key prefix P (default "llm_proxy:cache:"):
//   P e:<key>   the value (a plain string), written with PX <remaining ttl> when a TTL is set
//   P lru       sorted set: member <key>, score = last use (server time, Unix ms)
//   P sizes     hash: <key> -> value size in bytes
//   P bytes     integer: the sum of `sizes`
// Every get and put is one Lua script, so index, sizes and total stay consistent however many
// proxies use the same Redis. The limits are enforced on each put over the shared index, so
// proxies sharing a prefix should be configured with the same limits.
//
// All Redis work runs on a thread owned by the store, over one pipelined connection (hiredis
// async API driven by the store's own boost::asio::io_context). async_get and put only post to
// that thread; `done` callbacks run on it. Callbacks may call async_get and put, but not
// stats(), clear() or close(), and must not destroy the store.
//
// The store never fails a client: when Redis does not answer a command within the command
// timeout, or the connection drops, pending gets complete with `unavailable`, one warning is
// logged, and the store reconnects in the background with backoff. Meanwhile gets answer
// `unavailable` at once and puts are dropped; an info line is logged when Redis is back.
//
// stats() waits for Redis (at most command_timeout plus a margin) and returns zeros when it is
// unavailable. clear() waits for Redis and throws std::runtime_error when it is unavailable or
// a command fails.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "llm_proxy/cache/store.hpp"

namespace llm_proxy::cache {

// A parsed Redis URL:
//   redis://[[user]:password@]host[:port][/db]      (port 6379, db 0 by default;
//                                                    IPv6 literals in brackets)
//   unix:///path/to/socket[?db=N[&user=U][&password=P]]
// User, password and path may be percent-encoded.
struct redis_url {
    std::string host;         // empty for a unix socket; IPv6 without brackets
    std::uint16_t port = 0;   // TCP only
    std::string socket_path;  // unix socket only
    std::string user;         // empty: none (AUTH <password> when a password is given)
    std::string password;     // empty: no AUTH
    bool has_password = false;
    int db = 0;

    bool is_unix() const { return !socket_path.empty(); }
    // The URL in normal form without the password, for messages:
    // "redis://127.0.0.1:6379/0", "redis://alice@[::1]:6380/2", "unix:///run/redis.sock?db=1".
    std::string display() const;
};

// Throws std::invalid_argument with a message naming the problem.
redis_url parse_redis_url(const std::string& url);

struct redis_store_options {
    std::string key_prefix = "llm_proxy:cache:";
    // Bound on connecting + AUTH/SELECT/PING, at construction and for each reconnect attempt.
    std::chrono::milliseconds connect_timeout{2000};
    // A command without a reply after this long means Redis is unreachable: the connection is
    // dropped and everything pending on it completes as `unavailable`.
    std::chrono::milliseconds command_timeout{1000};
    // Delay before reconnect attempt n (n >= 2; the first follows a lost connection at once):
    // reconnect_min * 2^(n-2), capped at reconnect_max.
    std::chrono::milliseconds reconnect_min{500};
    std::chrono::milliseconds reconnect_max{5000};
};

// Connects (AUTH, SELECT, PING) before returning. Throws std::invalid_argument for a bad URL
// and std::runtime_error("redis <url>: cannot connect: <reason>") when Redis cannot be reached
// within options.connect_timeout.
std::unique_ptr<store> connect_redis_store(const std::string& url, store_limits limits,
                                           redis_store_options options);
std::unique_ptr<store> connect_redis_store(const std::string& url, store_limits limits,
                                           std::string key_prefix = "llm_proxy:cache:");

}  // namespace llm_proxy::cache

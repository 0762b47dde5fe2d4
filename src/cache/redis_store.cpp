#include "llm_proxy/cache/redis_store.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <charconv>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace llm_proxy::cache {

// ---------------------------------------------------------------------------------------------
// URLs

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Decodes %XX escapes; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) {
            return std::nullopt;
        }
        const int hi = hex_digit(s[i + 1]);
        const int lo = hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

// Escapes what would end the userinfo part of a URL.
std::string percent_encode_userinfo(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (c == '%' || c == '@' || c == ':' || c == '/' || c == '?' || c == '#' || c <= 0x20 ||
            c >= 0x7f) {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    return out;
}

// A decimal number in [min, max]; nullopt otherwise (including signs, spaces, empty).
std::optional<std::uint64_t> parse_number(std::string_view s, std::uint64_t min,
                                          std::uint64_t max) {
    std::uint64_t value = 0;
    if (s.empty() ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || value < min || value > max) {
        return std::nullopt;
    }
    return value;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           });
}

// The URL with the password (if any) replaced by "***", for error messages.
std::string redact_url(const std::string& url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) {
        return url;
    }
    const auto start = scheme_end + 3;
    const auto authority_end = url.find_first_of("/?#", start);
    const auto at = url.rfind('@', authority_end == std::string::npos ? url.size() : authority_end);
    if (at == std::string::npos || at < start) {
        return url;
    }
    const auto colon = url.find(':', start);
    if (colon == std::string::npos || colon > at) {
        return url;
    }
    return url.substr(0, colon + 1) + "***" + url.substr(at);
}

constexpr int kMaxDb = std::numeric_limits<int>::max();

}  // namespace

std::string redis_url::display() const {
    if (is_unix()) {
        return "unix://" + socket_path + (db != 0 ? "?db=" + std::to_string(db) : "");
    }
    std::string out = "redis://";
    if (!user.empty()) {
        out += percent_encode_userinfo(user) + "@";
    }
    out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
    out += ":" + std::to_string(port) + "/" + std::to_string(db);
    return out;
}

redis_url parse_redis_url(const std::string& url) {
    auto fail = [&](const std::string& why) {
        return std::invalid_argument("invalid redis URL '" + redact_url(url) + "': " + why);
    };
    redis_url out;

    if (starts_with_icase(url, "unix://")) {
        // unix:///path/to/socket[?db=N&user=U&password=P]
        std::string_view rest = std::string_view(url).substr(7);
        const auto query_start = rest.find('?');
        const std::string_view path = rest.substr(0, query_start);
        if (path.empty() || path.front() != '/' || path.size() < 2) {
            throw fail("expected unix:///absolute/path/to/socket");
        }
        auto decoded = percent_decode(path);
        if (!decoded) {
            throw fail("bad %-escape in the socket path");
        }
        out.socket_path = std::move(*decoded);
        if (query_start == std::string_view::npos) {
            return out;
        }
        std::string_view query = rest.substr(query_start + 1);
        while (!query.empty()) {
            const auto amp = query.find('&');
            const std::string_view param = query.substr(0, amp);
            query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
            const auto eq = param.find('=');
            if (eq == std::string_view::npos) {
                throw fail("query parameter '" + std::string(param) + "' has no value");
            }
            const std::string_view name = param.substr(0, eq);
            auto value = percent_decode(param.substr(eq + 1));
            if (!value) {
                throw fail("bad %-escape in the query");
            }
            if (name == "db") {
                auto db = parse_number(*value, 0, kMaxDb);
                if (!db) {
                    throw fail("database must be a non-negative number, not '" + *value + "'");
                }
                out.db = static_cast<int>(*db);
            } else if (name == "user") {
                out.user = std::move(*value);
            } else if (name == "password") {
                if (value->empty()) {
                    throw fail("empty password");
                }
                out.password = std::move(*value);
                out.has_password = true;
            } else {
                throw fail("unknown query parameter '" + std::string(name) +
                           "' (expected db, user or password)");
            }
        }
        if (!out.user.empty() && !out.has_password) {
            throw fail("a user needs a password");
        }
        return out;
    }

    if (starts_with_icase(url, "rediss://")) {
        throw fail("TLS (rediss://) is not supported");
    }
    if (!starts_with_icase(url, "redis://")) {
        throw fail("expected redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]");
    }
    std::string_view rest = std::string_view(url).substr(8);
    if (rest.find_first_of("?#") != std::string_view::npos) {
        throw fail("query parameters and fragments are not supported in redis:// URLs");
    }
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    const std::string_view path =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

    // [[user]:password@]
    const auto at = authority.rfind('@');
    if (at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        const auto colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            throw fail("credentials must be [user]:password@");
        }
        auto user = percent_decode(userinfo.substr(0, colon));
        auto password = percent_decode(userinfo.substr(colon + 1));
        if (!user || !password) {
            throw fail("bad %-escape in the credentials");
        }
        if (password->empty()) {
            throw fail("empty password");
        }
        out.user = std::move(*user);
        out.password = std::move(*password);
        out.has_password = true;
    }

    // host[:port], IPv6 in brackets
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            throw fail("missing ']' after the IPv6 address");
        }
        auto host = percent_decode(authority.substr(1, close - 1));
        if (!host || host->empty()) {
            throw fail("bad IPv6 address");
        }
        out.host = std::move(*host);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                throw fail("unexpected text after the IPv6 address");
            }
            port_text = after.substr(1);
            if (port_text.empty()) {
                throw fail("empty port");
            }
        }
    } else {
        const auto colon = authority.find(':');
        if (colon != std::string_view::npos && authority.find(':', colon + 1) != authority.npos) {
            throw fail("IPv6 addresses must be in brackets, e.g. redis://[::1]:6379");
        }
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) {
                throw fail("empty port");
            }
        }
    }
    if (out.host.empty()) {
        throw fail("missing host");
    }
    out.port = 6379;
    if (!port_text.empty()) {
        auto port = parse_number(port_text, 1, 65535);
        if (!port) {
            throw fail("port must be a number from 1 to 65535, not '" + std::string(port_text) +
                       "'");
        }
        out.port = static_cast<std::uint16_t>(*port);
    }

    // [/db]
    if (!path.empty()) {
        auto db = parse_number(path, 0, kMaxDb);
        if (!db) {
            throw fail("database must be a non-negative number, not '" + std::string(path) + "'");
        }
        out.db = static_cast<int>(*db);
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// The store

namespace {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

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

struct lua_script {
    const char* name;
    std::string source;
    std::string sha;  // from SCRIPT LOAD on the current connection; empty: use EVAL
};

// Called with the reply (which may be an error reply), or with nullptr and the reason when
// the command got no reply (connection lost, timed out, store closing).
using reply_handler = std::function<void(const redisReply* reply, const std::string& error)>;

std::string reply_text(const redisReply* r) {
    return r->str ? std::string(r->str, r->len) : std::string();
}

bool is_error(const redisReply* r) {
    return r && r->type == REDIS_REPLY_ERROR;
}

// Escapes the glob metacharacters of a SCAN MATCH pattern.
std::string glob_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
            out.push_back('\\');
        }
        out.push_back(c);
    }
    return out;
}

class redis_store;

// One hiredis async connection attached to the store's io_context (the "adapter").
//
// hiredis owns the socket; `socket` only waits for readiness on it and is released, never
// closed, when hiredis frees the context (the `cleanup` hook). hiredis asks for read/write
// interest through the ev hooks; while an interest is on, one async_wait is kept outstanding
// and its completion calls redisAsyncHandleRead/Write.
//
// hiredis may free the context from inside those calls (on errors), so `ac` is cleared by
// the cleanup hook and checked after every call into hiredis. The link holds a reference to
// itself (`self`) for as long as hiredis has the context, so the hooks never see a dangling
// pointer, whoever else dropped the link.
struct redis_link : std::enable_shared_from_this<redis_link> {
    redis_link(redis_store& owner, asio::io_context& io, redisAsyncContext* context)
        : owner(owner), ac(context), socket(io) {}
    ~redis_link() {
        if (socket.is_open()) {
            socket.release();  // never close hiredis' fd
        }
    }
    redis_link(const redis_link&) = delete;
    redis_link& operator=(const redis_link&) = delete;

    void arm(bool read);
    void on_ready(bool read, const boost::system::error_code& ec);

    redis_store& owner;
    redisAsyncContext* ac;  // null once hiredis freed it
    asio::posix::stream_descriptor socket;
    std::shared_ptr<redis_link> self;
    bool want_read = false;
    bool want_write = false;
    bool read_waiting = false;
    bool write_waiting = false;
    bool connected = false;  // the transport connection is up (hiredis onConnect said OK)
    std::string error;       // why the link failed, once it did
    // When each command without a reply yet was sent, oldest first (replies come in order).
    std::deque<steady::time_point> inflight;
};

// A command queued in hiredis; owned by hiredis until its reply callback runs.
struct pending_command {
    std::shared_ptr<redis_link> link;
    reply_handler handler;
};

// A script invocation, kept until its reply so that it can be re-sent with EVAL after a
// NOSCRIPT error (the server's script cache was flushed).
struct script_call {
    const lua_script* script;
    std::size_t num_keys;
    std::vector<std::string> keys_and_args;
    reply_handler handler;
};

struct clear_job {
    std::promise<void> done;
    std::atomic<bool> abandoned{false};  // the caller stopped waiting
    bool finished = false;

    void finish(std::exception_ptr error = nullptr) {
        if (finished) {
            return;
        }
        finished = true;
        if (error) {
            done.set_exception(error);
        } else {
            done.set_value();
        }
    }
};

class redis_store final : public store {
  public:
    redis_store(redis_url url, store_limits limits, redis_store_options options);
    ~redis_store() override;

    redis_store(const redis_store&) = delete;
    redis_store& operator=(const redis_store&) = delete;

    std::string_view engine() const override { return "redis"; }
    void async_get(const std::string& key, std::function<void(get_result)> done) override;
    void put(const std::string& key, std::string value, std::int64_t created_ms) override;
    void clear() override;
    store_stats stats() override;
    void close() override;

    // Called from the redis_link adapter and the hiredis callbacks (store thread).
    void on_link_closed(const std::shared_ptr<redis_link>& link);
    void on_link_error(const std::shared_ptr<redis_link>& link, const std::string& why);
    void after_reply(redis_link& link);

  private:
    enum class phase { connecting, up, down, closed };

    // All of the following run on the store thread.
    void start_attempt();
    void connect_next_endpoint();
    void endpoint_failed(const std::string& why);
    void handshake(const std::shared_ptr<redis_link>& link);
    void handshake_failed(const std::shared_ptr<redis_link>& link, const std::string& why);
    void attempt_failed(const std::string& why);
    void link_up();
    void link_lost(const std::string& why);
    void link_failed(const std::string& why);
    void drop_link(const std::string& why);
    void schedule_reconnect();
    void begin_close();
    void finish_close();

    bool usable() const { return state_ == phase::up && conn_ && conn_->ac; }
    get_result unavailable(const std::string& why) const;
    void complete(std::function<void(get_result)>& done, get_result result);
    void do_get(const std::string& key, std::function<void(get_result)> done);
    void do_put(const std::string& key, std::string value, std::int64_t created_ms);
    void clear_batch(const std::shared_ptr<clear_job>& job);
    void clear_scan(const std::shared_ptr<clear_job>& job, std::string cursor);

    bool issue(const std::vector<std::string_view>& args, reply_handler handler);
    void run_script(const lua_script& script, std::size_t num_keys,
                    std::vector<std::string> keys_and_args, reply_handler handler);
    void send_script(std::shared_ptr<script_call> call, bool use_sha);
    void arm_watchdog();
    void check_watchdog();

    bool on_store_thread() const { return std::this_thread::get_id() == thread_id_; }
    std::string entry_key(const std::string& key) const { return entry_prefix_ + key; }

    const redis_url url_;
    const std::string display_;
    const store_limits limits_;
    const redis_store_options options_;
    const std::string entry_prefix_;
    const std::string lru_key_;
    const std::string sizes_key_;
    const std::string bytes_key_;

    lua_script get_script_;
    lua_script put_script_;
    lua_script clear_script_;

    asio::io_context io_{1};
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    asio::steady_timer attempt_timer_;
    asio::steady_timer reconnect_timer_;
    asio::steady_timer watchdog_;
    asio::ip::tcp::resolver resolver_;

    // Store thread state.
    phase state_ = phase::down;
    std::shared_ptr<redis_link> conn_;
    std::uint64_t attempt_ = 0;           // identifies the current connection attempt
    std::vector<std::string> endpoints_;  // resolved addresses of the current attempt
    std::size_t next_endpoint_ = 0;
    unsigned failed_attempts_ = 0;  // since the last successful connection
    bool watchdog_armed_ = false;
    bool down_logged_ = false;
    bool put_error_logged_ = false;
    bool closing_ = false;
    std::string last_error_;
    std::optional<std::promise<std::string>> initial_;  // the constructor waits on it

    std::atomic<bool> close_called_{false};
    std::thread thread_;
    std::thread::id thread_id_;
};

// --- hiredis hooks (run on the store thread, called from C: must not throw) ------------------

redis_link* link_of(void* p) {
    return static_cast<redis_link*>(p);
}

void ev_add_read(void* p) {
    link_of(p)->want_read = true;
    link_of(p)->arm(true);
}
void ev_del_read(void* p) {
    link_of(p)->want_read = false;
}
void ev_add_write(void* p) {
    link_of(p)->want_write = true;
    link_of(p)->arm(false);
}
void ev_del_write(void* p) {
    link_of(p)->want_write = false;
}

// hiredis is about to free the context and close the fd.
void ev_cleanup(void* p) {
    redis_link* link = link_of(p);
    link->ac = nullptr;
    link->want_read = link->want_write = false;
    if (link->socket.is_open()) {
        link->socket.release();  // cancels the outstanding waits
    }
    // Finish off outside hiredis: the store learns the link is gone, then the last reference
    // may go.
    auto self = std::move(link->self);
    if (!self) {
        return;
    }
    try {
        asio::post(self->socket.get_executor(), [self] { self->owner.on_link_closed(self); });
    } catch (const std::exception& e) {
        // hiredis still calls onDisconnect with this link: leak it rather than free it.
        link->self = std::move(self);
        spdlog::error("redis store: {}", e.what());
    }
}

void on_connect(const redisAsyncContext* ac, int status) {
    redis_link* link = link_of(ac->data);
    if (status == REDIS_OK) {
        link->connected = true;
    } else if (link->error.empty()) {
        link->error = ac->errstr && *ac->errstr ? ac->errstr : "cannot connect";
    }
}

void on_disconnect(const redisAsyncContext* ac, int status) {
    redis_link* link = link_of(ac->data);
    if (link->error.empty()) {
        link->error =
            status != REDIS_OK && ac->errstr && *ac->errstr ? ac->errstr : "connection closed";
    }
}

void on_reply(redisAsyncContext* ac, void* reply_ptr, void* privdata) {
    std::unique_ptr<pending_command> cmd(static_cast<pending_command*>(privdata));
    redis_link& link = *cmd->link;
    if (!link.inflight.empty()) {
        link.inflight.pop_front();
    }
    const auto* reply = static_cast<const redisReply*>(reply_ptr);
    if (!reply && link.error.empty()) {
        link.error = ac->err && ac->errstr && *ac->errstr ? ac->errstr : "connection closed";
    }
    try {
        cmd->handler(reply, reply ? std::string() : link.error);
        if (reply) {
            link.owner.after_reply(link);
        }
    } catch (const std::exception& e) {
        spdlog::error("redis store: reply handler: {}", e.what());
    } catch (...) {
        spdlog::error("redis store: reply handler threw");
    }
}

void redis_link::arm(bool read) {
    bool& waiting = read ? read_waiting : write_waiting;
    if (!ac || waiting || !(read ? want_read : want_write)) {
        return;
    }
    try {
        waiting = true;
        socket.async_wait(read ? asio::posix::stream_descriptor::wait_read
                               : asio::posix::stream_descriptor::wait_write,
                          [self = shared_from_this(), read](const boost::system::error_code& ec) {
                              self->on_ready(read, ec);
                          });
    } catch (const std::exception& e) {
        waiting = false;
        spdlog::error("redis store: cannot wait on the socket: {}", e.what());
    }
}

void redis_link::on_ready(bool read, const boost::system::error_code& ec) {
    (read ? read_waiting : write_waiting) = false;
    if (ec == asio::error::operation_aborted || !ac) {
        return;
    }
    if (ec) {
        owner.on_link_error(shared_from_this(), "socket: " + ec.message());
        return;
    }
    if (!(read ? want_read : want_write)) {
        return;
    }
    // `this` stays alive through the call: the pending wait's handler holds a reference.
    if (read) {
        redisAsyncHandleRead(ac);
    } else {
        redisAsyncHandleWrite(ac);
    }
    // hiredis does not always re-request an interest it still has (e.g. while connecting).
    arm(read);
}

// --- construction and shutdown --------------------------------------------------------------

redis_store::redis_store(redis_url url, store_limits limits, redis_store_options options)
    : url_(std::move(url)),
      display_(url_.display()),
      limits_(limits),
      options_(std::move(options)),
      entry_prefix_(options_.key_prefix + "e:"),
      lru_key_(options_.key_prefix + "lru"),
      sizes_key_(options_.key_prefix + "sizes"),
      bytes_key_(options_.key_prefix + "bytes"),
      get_script_{"get", std::string(kLuaCommon) + std::string(kLuaGet), {}},
      put_script_{"put", std::string(kLuaCommon) + std::string(kLuaPut), {}},
      clear_script_{"clear", std::string(kLuaCommon) + std::string(kLuaClear), {}},
      work_(asio::make_work_guard(io_)),
      attempt_timer_(io_),
      reconnect_timer_(io_),
      watchdog_(io_),
      resolver_(io_) {
    initial_.emplace();
    auto connected = initial_->get_future();
    thread_ = std::thread([this] {
        // hiredis writes with write(2): a closed socket must give EPIPE, not kill the process.
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
        for (;;) {
            try {
                io_.run();
                return;
            } catch (const std::exception& e) {
                spdlog::error("redis store {}: {}", display_, e.what());
            }
        }
    });
    thread_id_ = thread_.get_id();
    asio::post(io_, [this] { start_attempt(); });

    std::string error;
    if (connected.wait_for(options_.connect_timeout + std::chrono::seconds(2)) !=
        std::future_status::ready) {
        error = "timed out";
    } else {
        error = connected.get();
    }
    if (!error.empty()) {
        close();
        throw std::runtime_error("redis " + display_ + ": cannot connect: " + error);
    }
}

redis_store::~redis_store() {
    try {
        close();
    } catch (const std::exception& e) {
        spdlog::error("redis store {}: close: {}", display_, e.what());
    }
}

void redis_store::close() {
    if (!thread_.joinable()) {
        return;
    }
    if (on_store_thread()) {
        throw std::logic_error("redis store: close() called from a store callback");
    }
    close_called_ = true;
    asio::post(io_, [this] { begin_close(); });
    thread_.join();
}

void redis_store::begin_close() {
    closing_ = true;
    // Queued writes go out if Redis is there: wait for the replies (bounded by the watchdog).
    if (state_ == phase::up && conn_ && !conn_->inflight.empty()) {
        return;
    }
    finish_close();
}

void redis_store::finish_close() {
    if (state_ == phase::closed) {
        return;
    }
    state_ = phase::closed;
    attempt_timer_.cancel();
    reconnect_timer_.cancel();
    watchdog_.cancel();
    resolver_.cancel();
    drop_link("store closed");
    if (initial_) {
        initial_->set_value("store closed");
        initial_.reset();
    }
    // run() returns once the remaining handlers (cancellations, link clean-up) have run.
    work_.reset();
}

void redis_store::after_reply(redis_link& link) {
    if (closing_ && state_ == phase::up && conn_.get() == &link && link.inflight.empty()) {
        asio::post(io_, [this] { finish_close(); });
    }
}

// --- connecting -----------------------------------------------------------------------------

void redis_store::start_attempt() {
    if (state_ == phase::closed || closing_) {
        return;
    }
    state_ = phase::connecting;
    const std::uint64_t attempt = ++attempt_;
    attempt_timer_.expires_after(options_.connect_timeout);
    attempt_timer_.async_wait([this, attempt](const boost::system::error_code& ec) {
        if (!ec && attempt == attempt_ && state_ == phase::connecting) {
            attempt_failed("timed out after " + std::to_string(options_.connect_timeout.count()) +
                           " ms");
        }
    });
    endpoints_.clear();
    next_endpoint_ = 0;
    if (url_.is_unix()) {
        connect_next_endpoint();
        return;
    }
    boost::system::error_code ec;
    asio::ip::make_address(url_.host, ec);
    if (!ec) {
        endpoints_.push_back(url_.host);
        connect_next_endpoint();
        return;
    }
    // A host name: resolve without blocking the store thread; IPv4 first, like hiredis.
    resolver_.async_resolve(
        url_.host, std::to_string(url_.port),
        [this, attempt](const boost::system::error_code& error,
                        const asio::ip::tcp::resolver::results_type& results) {
            if (attempt != attempt_ || state_ != phase::connecting) {
                return;
            }
            if (error) {
                attempt_failed(url_.host + ": " + error.message());
                return;
            }
            std::vector<std::string> v6;
            for (const auto& entry : results) {
                const auto address = entry.endpoint().address();
                auto& list = address.is_v4() ? endpoints_ : v6;
                if (std::find(list.begin(), list.end(), address.to_string()) == list.end()) {
                    list.push_back(address.to_string());
                }
            }
            endpoints_.insert(endpoints_.end(), v6.begin(), v6.end());
            if (endpoints_.empty()) {
                attempt_failed(url_.host + ": no address");
                return;
            }
            connect_next_endpoint();
        });
}

void redis_store::connect_next_endpoint() {
    redisAsyncContext* ac = nullptr;
    if (url_.is_unix()) {
        ac = redisAsyncConnectUnix(url_.socket_path.c_str());
    } else {
        ac = redisAsyncConnect(endpoints_[next_endpoint_].c_str(), url_.port);
    }
    ++next_endpoint_;
    if (!ac) {
        endpoint_failed("out of memory");
        return;
    }
    if (ac->err) {
        std::string why = ac->errstr;
        redisAsyncFree(ac);
        endpoint_failed(why);
        return;
    }
    auto link = std::make_shared<redis_link>(*this, io_, ac);
    boost::system::error_code ec;
    link->socket.assign(ac->c.fd, ec);
    if (ec) {
        link->ac = nullptr;
        redisAsyncFree(ac);
        endpoint_failed("socket: " + ec.message());
        return;
    }
    link->self = link;
    ac->data = link.get();
    ac->ev.data = link.get();
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (!url_.is_unix()) {
        redisEnableKeepAlive(&ac->c);
    }
    conn_ = link;
    handshake(link);
}

void redis_store::endpoint_failed(const std::string& why) {
    if (state_ != phase::connecting) {
        return;
    }
    if (next_endpoint_ < endpoints_.size()) {
        connect_next_endpoint();
    } else {
        attempt_failed(why);
    }
}

// AUTH, SELECT, SCRIPT LOAD and PING, pipelined; the PONG makes the link usable.
void redis_store::handshake(const std::shared_ptr<redis_link>& link) {
    auto required = [this, link](std::string what) {
        return [this, link, what](const redisReply* reply, const std::string&) {
            // No reply: the link failed, on_link_closed handles it.
            if (reply && link == conn_ && state_ == phase::connecting && is_error(reply)) {
                handshake_failed(link, what + ": " + reply_text(reply));
            }
        };
    };
    if (url_.has_password) {
        if (url_.user.empty()) {
            issue({"AUTH", url_.password}, required("AUTH"));
        } else {
            issue({"AUTH", url_.user, url_.password}, required("AUTH"));
        }
    }
    if (url_.db != 0) {
        const std::string db = std::to_string(url_.db);
        issue({"SELECT", db}, required("SELECT " + db));
    }
    for (lua_script* script : {&get_script_, &put_script_, &clear_script_}) {
        script->sha.clear();
        // Optional: without a SHA the script is sent with EVAL.
        issue({"SCRIPT", "LOAD", script->source},
              [this, link, script](const redisReply* reply, const std::string&) {
                  if (link != conn_) {
                      return;
                  }
                  if (reply && reply->type == REDIS_REPLY_STRING) {
                      script->sha = reply_text(reply);
                  } else if (reply) {
                      spdlog::debug("redis {}: SCRIPT LOAD {}: {}", display_, script->name,
                                    reply_text(reply));
                  }
              });
    }
    issue({"PING"}, [this, link](const redisReply* reply, const std::string&) {
        if (!reply || link != conn_ || state_ != phase::connecting) {
            return;
        }
        if (is_error(reply)) {
            handshake_failed(link, "PING: " + reply_text(reply));
        } else {
            link_up();
        }
    });
}

void redis_store::handshake_failed(const std::shared_ptr<redis_link>& link,
                                   const std::string& why) {
    link->error = why;
    attempt_failed(why);  // a protocol-level refusal: no point in trying other addresses
}

void redis_store::attempt_failed(const std::string& why) {
    attempt_timer_.cancel();
    resolver_.cancel();
    drop_link(why);
    if (state_ == phase::closed) {
        return;
    }
    state_ = phase::down;
    last_error_ = why;
    if (initial_) {
        initial_->set_value(why);  // the constructor throws; no reconnecting
        initial_.reset();
        return;
    }
    if (!down_logged_) {
        spdlog::warn("redis {} unreachable: {}; cache is pass-through until it is back", display_,
                     why);
        down_logged_ = true;
    } else {
        spdlog::debug("redis {}: reconnect failed: {}", display_, why);
    }
    schedule_reconnect();
}

void redis_store::link_up() {
    attempt_timer_.cancel();
    state_ = phase::up;
    failed_attempts_ = 0;
    last_error_.clear();
    if (initial_) {
        initial_->set_value(std::string());
        initial_.reset();
    }
    if (down_logged_) {
        spdlog::info("redis {} is reachable again; cache resumed", display_);
        down_logged_ = false;
    }
    if (closing_) {
        finish_close();
    }
}

void redis_store::schedule_reconnect() {
    // The first attempt after losing a working connection is immediate (Redis may only have
    // closed an idle connection); then reconnect_min, doubling up to reconnect_max.
    std::chrono::milliseconds delay{0};
    if (failed_attempts_ > 0) {
        delay = options_.reconnect_min;
        for (unsigned i = 1; i < failed_attempts_ && delay < options_.reconnect_max; ++i) {
            delay *= 2;
        }
        delay = std::min(delay, options_.reconnect_max);
    }
    ++failed_attempts_;
    reconnect_timer_.expires_after(delay);
    reconnect_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec && state_ == phase::down) {
            start_attempt();
        }
    });
}

// --- losing the connection ------------------------------------------------------------------

void redis_store::drop_link(const std::string& why) {
    auto link = std::move(conn_);
    if (!link) {
        return;
    }
    if (link->error.empty()) {
        link->error = why;
    }
    // Completes every pending command with "no reply" (now, or as soon as the running hiredis
    // callback returns) and, through the cleanup hook, releases the socket.
    if (link->ac) {
        redisAsyncFree(link->ac);
    }
}

void redis_store::on_link_closed(const std::shared_ptr<redis_link>& link) {
    if (link != conn_) {
        return;  // dropped on purpose; already dealt with
    }
    conn_.reset();
    const std::string why = link->error.empty() ? "connection closed" : link->error;
    if (closing_) {
        finish_close();
    } else if (state_ == phase::connecting) {
        if (link->connected) {
            attempt_failed(why);
        } else {
            endpoint_failed(why);
        }
    } else if (state_ == phase::up) {
        link_lost(why);
    }
}

void redis_store::on_link_error(const std::shared_ptr<redis_link>& link, const std::string& why) {
    if (link == conn_) {
        link_failed(why);
    }
}

// The current link is broken (timeout, socket error): drop it and deal with the consequences.
void redis_store::link_failed(const std::string& why) {
    drop_link(why);
    if (closing_) {
        finish_close();
    } else if (state_ == phase::connecting) {
        attempt_failed(why);
    } else if (state_ == phase::up) {
        link_lost(why);
    }
}

void redis_store::link_lost(const std::string& why) {
    state_ = phase::down;
    last_error_ = why;
    if (!down_logged_) {
        spdlog::warn("redis {} unreachable: {}; cache is pass-through until it is back", display_,
                     why);
        down_logged_ = true;
    }
    schedule_reconnect();
}

// --- commands -------------------------------------------------------------------------------

bool redis_store::issue(const std::vector<std::string_view>& args, reply_handler handler) {
    if (!conn_ || !conn_->ac) {
        handler(nullptr, last_error_.empty() ? "not connected" : last_error_);
        return false;
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (auto arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    auto* cmd = new pending_command{conn_, std::move(handler)};
    if (redisAsyncCommandArgv(conn_->ac, on_reply, cmd, static_cast<int>(argv.size()), argv.data(),
                              lengths.data()) != REDIS_OK) {
        std::unique_ptr<pending_command> owned(cmd);
        owned->handler(nullptr, "cannot send the command");
        return false;
    }
    conn_->inflight.push_back(steady::now());
    arm_watchdog();
    return true;
}

void redis_store::run_script(const lua_script& script, std::size_t num_keys,
                             std::vector<std::string> keys_and_args, reply_handler handler) {
    auto call = std::make_shared<script_call>(
        script_call{&script, num_keys, std::move(keys_and_args), std::move(handler)});
    send_script(std::move(call), !script.sha.empty());
}

void redis_store::send_script(std::shared_ptr<script_call> call, bool use_sha) {
    const std::string num_keys = std::to_string(call->num_keys);
    std::vector<std::string_view> args;
    args.reserve(3 + call->keys_and_args.size());
    args.push_back(use_sha ? "EVALSHA" : "EVAL");
    args.push_back(use_sha ? call->script->sha : call->script->source);
    args.push_back(num_keys);
    args.insert(args.end(), call->keys_and_args.begin(), call->keys_and_args.end());
    issue(args, [this, call, use_sha](const redisReply* reply, const std::string& error) {
        if (use_sha && is_error(reply) && reply_text(reply).rfind("NOSCRIPT", 0) == 0 && usable()) {
            send_script(call, false);  // EVAL also puts the script back in the server's cache
            return;
        }
        call->handler(reply, error);
    });
}

// One timer watches the oldest command without a reply; replies arrive in order, so when it
// is late, the connection is.
void redis_store::arm_watchdog() {
    if (watchdog_armed_ || !conn_ || conn_->inflight.empty()) {
        return;
    }
    watchdog_armed_ = true;
    watchdog_.expires_at(conn_->inflight.front() + options_.command_timeout);
    watchdog_.async_wait([this](const boost::system::error_code& ec) {
        watchdog_armed_ = false;
        if (!ec) {
            check_watchdog();
        }
    });
}

void redis_store::check_watchdog() {
    // While connecting, the attempt timer is in charge.
    if (state_ != phase::up || !conn_ || conn_->inflight.empty()) {
        return;
    }
    if (steady::now() >= conn_->inflight.front() + options_.command_timeout) {
        link_failed("no reply within " + std::to_string(options_.command_timeout.count()) + " ms");
        return;
    }
    arm_watchdog();
}

// --- get / put ------------------------------------------------------------------------------

get_result redis_store::unavailable(const std::string& why) const {
    get_result r;
    r.state = get_result::status::unavailable;
    r.error = "redis " + display_ + " unavailable" + (why.empty() ? "" : ": " + why);
    return r;
}

void redis_store::complete(std::function<void(get_result)>& done, get_result result) {
    try {
        done(std::move(result));
    } catch (const std::exception& e) {
        spdlog::error("redis store: get callback threw: {}", e.what());
    } catch (...) {
        spdlog::error("redis store: get callback threw");
    }
}

void redis_store::async_get(const std::string& key, std::function<void(get_result)> done) {
    if (close_called_) {
        complete(done, unavailable("store closed"));
        return;
    }
    asio::post(io_,
               [this, key, done = std::move(done)]() mutable { do_get(key, std::move(done)); });
}

void redis_store::do_get(const std::string& key, std::function<void(get_result)> done) {
    if (!usable()) {
        complete(done, unavailable(state_ == phase::closed ? "store closed" : last_error_));
        return;
    }
    run_script(
        get_script_, 4, {lru_key_, sizes_key_, bytes_key_, entry_key(key), key},
        [this, done = std::move(done)](const redisReply* reply, const std::string& error) mutable {
            get_result result;
            if (!reply) {
                result = unavailable(error);
            } else if (reply->type == REDIS_REPLY_STRING) {
                result.state = get_result::status::hit;
                result.value = reply_text(reply);
            } else if (reply->type == REDIS_REPLY_NIL) {
                result.state = get_result::status::miss;
            } else {
                const std::string why =
                    is_error(reply) ? reply_text(reply) : "unexpected reply to the get script";
                spdlog::debug("redis {}: get: {}", display_, why);
                result = unavailable(why);
            }
            complete(done, std::move(result));
        });
}

void redis_store::put(const std::string& key, std::string value, std::int64_t created_ms) {
    if (close_called_) {
        return;
    }
    asio::post(io_, [this, key, value = std::move(value), created_ms]() mutable {
        do_put(key, std::move(value), created_ms);
    });
}

void redis_store::do_put(const std::string& key, std::string value, std::int64_t created_ms) {
    if (limits_.max_bytes > 0 && value.size() > limits_.max_bytes) {
        spdlog::debug("redis {}: not caching {} bytes (max_bytes {})", display_, value.size(),
                      limits_.max_bytes);
        return;
    }
    std::int64_t px = 0;
    const std::int64_t ttl = limits_.ttl.count();
    if (ttl > 0) {
        px = std::min(ttl, ttl - (unix_ms_now() - created_ms));
        if (px <= 0) {
            return;  // already expired
        }
    }
    if (!usable()) {
        spdlog::debug("redis {}: unavailable, put dropped", display_);
        return;
    }
    run_script(
        put_script_, 4,
        {lru_key_, sizes_key_, bytes_key_, entry_key(key), key, std::move(value),
         std::to_string(px), std::to_string(limits_.max_entries), std::to_string(limits_.max_bytes),
         std::to_string(std::max<std::int64_t>(ttl, 0)), entry_prefix_},
        [this](const redisReply* reply, const std::string& error) {
            if (reply && !is_error(reply)) {
                put_error_logged_ = false;
                return;
            }
            // Connection failures are reported by the link; log refusals once per streak
            // (e.g. OOM when Redis' maxmemory is reached with noeviction).
            const std::string why = reply ? reply_text(reply) : error;
            if (reply && !put_error_logged_) {
                spdlog::warn("redis {}: cannot store an entry: {}", display_, why);
                put_error_logged_ = true;
            } else {
                spdlog::debug("redis {}: put failed: {}", display_, why);
            }
        });
}

// --- clear / stats --------------------------------------------------------------------------

void redis_store::clear() {
    if (close_called_) {
        throw std::logic_error("redis store: clear() after close()");
    }
    if (on_store_thread()) {
        throw std::logic_error("redis store: clear() called from a store callback");
    }
    auto job = std::make_shared<clear_job>();
    auto done = job->done.get_future();
    asio::post(io_, [this, job] { clear_batch(job); });
    // Every command is bounded by the watchdog; this only bounds a huge or ever-growing prefix.
    const auto limit = std::chrono::seconds(60);
    if (done.wait_for(limit) != std::future_status::ready) {
        job->abandoned = true;
        throw std::runtime_error("redis " + display_ + ": clear did not finish within 60 s");
    }
    done.get();
}

// Phase 1: empty the index, a batch per script run (each atomic, so the accounting stays
// consistent for the other proxies).
void redis_store::clear_batch(const std::shared_ptr<clear_job>& job) {
    if (job->abandoned) {
        return;
    }
    if (!usable()) {
        job->finish(std::make_exception_ptr(
            std::runtime_error("redis " + display_ + " unavailable" +
                               (last_error_.empty() ? std::string() : ": " + last_error_))));
        return;
    }
    run_script(clear_script_, 3, {lru_key_, sizes_key_, bytes_key_, entry_prefix_, "500"},
               [this, job](const redisReply* reply, const std::string& error) {
                   if (!reply || reply->type != REDIS_REPLY_INTEGER) {
                       const std::string why = reply ? reply_text(reply) : error;
                       job->finish(std::make_exception_ptr(
                           std::runtime_error("redis " + display_ + ": clear: " + why)));
                   } else if (reply->integer > 0) {
                       clear_batch(job);
                   } else {
                       clear_scan(job, "0");
                   }
               });
}

// Phase 2: delete whatever else is under the prefix (entries that were not indexed).
void redis_store::clear_scan(const std::shared_ptr<clear_job>& job, std::string cursor) {
    if (job->abandoned) {
        return;
    }
    if (!usable()) {
        job->finish(std::make_exception_ptr(
            std::runtime_error("redis " + display_ + ": clear: connection lost")));
        return;
    }
    const std::string pattern = glob_escape(options_.key_prefix) + "*";
    issue({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"},
          [this, job](const redisReply* reply, const std::string& error) {
              if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                  reply->element[0]->type != REDIS_REPLY_STRING ||
                  reply->element[1]->type != REDIS_REPLY_ARRAY) {
                  const std::string why = reply ? reply_text(reply) : error;
                  job->finish(std::make_exception_ptr(
                      std::runtime_error("redis " + display_ + ": clear: SCAN: " + why)));
                  return;
              }
              std::string next = reply_text(reply->element[0]);
              std::vector<std::string> keys;
              const redisReply* found = reply->element[1];
              for (std::size_t i = 0; i < found->elements; ++i) {
                  std::string key = reply_text(found->element[i]);
                  // The index keys were emptied atomically by phase 1; deleting them now
                  // could lose another proxy's accounting.
                  if (key != lru_key_ && key != sizes_key_ && key != bytes_key_) {
                      keys.push_back(std::move(key));
                  }
              }
              auto proceed = [this, job, next]() {
                  if (next == "0") {
                      job->finish();
                  } else {
                      clear_scan(job, next);
                  }
              };
              if (keys.empty()) {
                  proceed();
                  return;
              }
              std::vector<std::string_view> args{"DEL"};
              args.insert(args.end(), keys.begin(), keys.end());
              issue(args, [this, job, proceed](const redisReply* del, const std::string& why) {
                  if (!del || is_error(del)) {
                      job->finish(std::make_exception_ptr(std::runtime_error(
                          "redis " + display_ + ": clear: DEL: " + (del ? reply_text(del) : why))));
                      return;
                  }
                  proceed();
              });
          });
}

store_stats redis_store::stats() {
    if (close_called_ || on_store_thread()) {
        return {};
    }
    auto promise = std::make_shared<std::promise<store_stats>>();
    auto future = promise->get_future();
    asio::post(io_, [this, promise] {
        if (!usable()) {
            promise->set_value({});
            return;
        }
        auto result = std::make_shared<store_stats>();
        auto ok = std::make_shared<bool>(true);
        // Pipelined; the second reply completes the promise.
        issue({"ZCARD", lru_key_}, [result, ok](const redisReply* reply, const std::string&) {
            if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
                result->entries = static_cast<std::uint64_t>(reply->integer);
            } else if (!reply || is_error(reply)) {
                *ok = false;
            }
        });
        issue({"GET", bytes_key_},
              [result, ok, promise](const redisReply* reply, const std::string&) {
                  if (reply && reply->type == REDIS_REPLY_STRING) {
                      const std::string text = reply_text(reply);
                      std::int64_t total = 0;
                      std::from_chars(text.data(), text.data() + text.size(), total);
                      result->bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(total, 0));
                  } else if (!reply || is_error(reply)) {
                      *ok = false;
                  }
                  promise->set_value(*ok ? *result : store_stats{});
              });
    });
    if (future.wait_for(options_.command_timeout + std::chrono::milliseconds(500)) !=
        std::future_status::ready) {
        return {};
    }
    return future.get();
}

}  // namespace

std::unique_ptr<store> connect_redis_store(const std::string& url, store_limits limits,
                                           redis_store_options options) {
    return std::make_unique<redis_store>(parse_redis_url(url), limits, std::move(options));
}

std::unique_ptr<store> connect_redis_store(const std::string& url, store_limits limits,
                                           std::string key_prefix) {
    redis_store_options options;
    options.key_prefix = std::move(key_prefix);
    return connect_redis_store(url, limits, std::move(options));
}

}  // namespace llm_proxy::cache

// The Redis cache store against a real redis-server (tests/support/redis_server): URL parsing,
// the data model, sharing between stores, and behaviour when Redis goes away. The store
// contract is checked for every engine in cache_store_conformance_test.cpp.

#include <netinet/in.h>
#include <sys/socket.h>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "llm_proxy/cache/redis_store.hpp"
#include "support/raw_socket.hpp"
#include "support/redis_server.hpp"

namespace llm_proxy::cache {
namespace {

using namespace std::chrono_literals;
using test::redis_server;
using status = get_result::status;

// async_get with a bounded wait: a store that never answers fails the test instead of hanging.
get_result get(store& s, const std::string& key, std::chrono::milliseconds timeout = 3s) {
    auto promise = std::make_shared<std::promise<get_result>>();
    auto future = promise->get_future();
    s.async_get(key, [promise](get_result r) { promise->set_value(std::move(r)); });
    if (future.wait_for(timeout) != std::future_status::ready) {
        ADD_FAILURE() << "no answer for '" << key << "' within " << timeout.count() << " ms";
        get_result r;
        r.state = status::unavailable;
        r.error = "test: no answer";
        return r;
    }
    return future.get();
}

bool is_hit(store& s, const std::string& key, const std::string& value) {
    get_result r = get(s, key);
    return r.state == status::hit && r.value == value;
}

bool is_miss(store& s, const std::string& key) {
    return get(s, key).state == status::miss;
}

// A put followed by a get on the same store: when the get has answered, the put is done.
void put_sync(store& s, const std::string& key, const std::string& value) {
    s.put(key, value, unix_ms_now());
    get(s, "sync-marker");
}

// One command in RESP over a raw socket; returns the raw reply (small replies only).
std::string raw_command(const redis_server& server, const std::vector<std::string>& args) {
    std::string request = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& arg : args) {
        request += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
    }
    test::unique_fd fd(test::connect_raw("127.0.0.1", server.port(), 2s));
    EXPECT_TRUE(test::send_all(fd.get(), request));
    return test::recv_some(fd.get(), 2s);
}

// Captures what the stores log (through spdlog's default logger) while it exists.
class log_capture {
  public:
    log_capture()
        : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200)),
          previous_(spdlog::default_logger()) {
        auto logger = std::make_shared<spdlog::logger>("capture", sink_);
        logger->set_level(spdlog::level::info);
        logger->set_pattern("%l %v");
        spdlog::set_default_logger(logger);
    }
    ~log_capture() { spdlog::set_default_logger(previous_); }
    log_capture(const log_capture&) = delete;
    log_capture& operator=(const log_capture&) = delete;

    int count(const std::string& level, const std::string& text) {
        int n = 0;
        for (const auto& line : sink_->last_formatted()) {
            if (line.rfind(level + " ", 0) == 0 && line.find(text) != std::string::npos) {
                ++n;
            }
        }
        return n;
    }
    std::string all() {
        std::string out;
        for (const auto& line : sink_->last_formatted()) {
            out += line;
        }
        return out;
    }

  private:
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
    std::shared_ptr<spdlog::logger> previous_;
};

// Options that make failures show quickly.
redis_store_options fast_options(std::string prefix) {
    redis_store_options o;
    o.key_prefix = std::move(prefix);
    o.connect_timeout = 300ms;
    o.command_timeout = 400ms;
    o.reconnect_min = 50ms;
    o.reconnect_max = 200ms;
    return o;
}

// ---------------------------------------------------------------------------------------------
// URLs

TEST(RedisUrl, ParsesTcpForms) {
    auto u = parse_redis_url("redis://cache.internal");
    EXPECT_EQ(u.host, "cache.internal");
    EXPECT_EQ(u.port, 6379);
    EXPECT_EQ(u.db, 0);
    EXPECT_FALSE(u.has_password);
    EXPECT_FALSE(u.is_unix());
    EXPECT_EQ(u.display(), "redis://cache.internal:6379/0");

    u = parse_redis_url("REDIS://127.0.0.1:6380/3");
    EXPECT_EQ(u.host, "127.0.0.1");
    EXPECT_EQ(u.port, 6380);
    EXPECT_EQ(u.db, 3);

    u = parse_redis_url("redis://[::1]:7000/");
    EXPECT_EQ(u.host, "::1");
    EXPECT_EQ(u.port, 7000);
    EXPECT_EQ(u.db, 0);
    EXPECT_EQ(u.display(), "redis://[::1]:7000/0");

    u = parse_redis_url("redis://:s%40cret@h");
    EXPECT_TRUE(u.has_password);
    EXPECT_EQ(u.user, "");
    EXPECT_EQ(u.password, "s@cret");
    EXPECT_EQ(u.display(), "redis://h:6379/0");

    u = parse_redis_url("redis://alice:pw:with:colons@h:1/15");
    EXPECT_EQ(u.user, "alice");
    EXPECT_EQ(u.password, "pw:with:colons");
    EXPECT_EQ(u.db, 15);
    EXPECT_EQ(u.display(), "redis://alice@h:1/15");
}

TEST(RedisUrl, ParsesUnixForms) {
    auto u = parse_redis_url("unix:///run/redis/redis.sock");
    EXPECT_TRUE(u.is_unix());
    EXPECT_EQ(u.socket_path, "/run/redis/redis.sock");
    EXPECT_EQ(u.db, 0);
    EXPECT_EQ(u.display(), "unix:///run/redis/redis.sock");

    u = parse_redis_url("unix:///tmp/my%20dir/r.sock?db=2&password=pw");
    EXPECT_EQ(u.socket_path, "/tmp/my dir/r.sock");
    EXPECT_EQ(u.db, 2);
    EXPECT_EQ(u.password, "pw");
    EXPECT_EQ(u.display(), "unix:///tmp/my dir/r.sock?db=2");
}

TEST(RedisUrl, AcceptsCharactersPeopleLeaveUnescaped) {
    // The userinfo ends at the last '@'; '+' is not a space.
    auto u = parse_redis_url("redis://bob:p@ss w^rd+1@h:1/2");
    EXPECT_EQ(u.user, "bob");
    EXPECT_EQ(u.password, "p@ss w^rd+1");
    EXPECT_EQ(u.host, "h");
    EXPECT_EQ(u.port, 1);
    EXPECT_EQ(u.db, 2);

    u = parse_redis_url("redis://al%20ice:pw@H.example");
    EXPECT_EQ(u.user, "al ice");
    EXPECT_EQ(u.display(), "redis://al%20ice@H.example:6379/0");

    u = parse_redis_url("unix:///tmp/a#b.sock?password=a+b%26c&user=u");
    EXPECT_EQ(u.socket_path, "/tmp/a#b.sock");
    EXPECT_EQ(u.password, "a+b&c");
    EXPECT_EQ(u.user, "u");

    u = parse_redis_url("unix:///s?");
    EXPECT_EQ(u.socket_path, "/s");
    EXPECT_FALSE(u.has_password);
}

TEST(RedisUrl, ErrorMessagesNameTheProblem) {
    auto message = [](const std::string& url) -> std::string {
        try {
            parse_redis_url(url);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "accepted";
    };
    EXPECT_EQ(message("rediss://h"),
              "invalid redis URL 'rediss://h': TLS (rediss://) is not supported");
    EXPECT_EQ(message("redis://::1:6379"),
              "invalid redis URL 'redis://::1:6379': IPv6 addresses must be in brackets, e.g. "
              "redis://[::1]:6379");
    EXPECT_EQ(message("redis://h:"), "invalid redis URL 'redis://h:': empty port");
    EXPECT_EQ(message("redis://:6379"), "invalid redis URL 'redis://:6379': missing host");
    EXPECT_EQ(message("redis://h/x"),
              "invalid redis URL 'redis://h/x': database must be a non-negative number, not 'x'");
    EXPECT_EQ(message("redis://h?db=1"),
              "invalid redis URL 'redis://h?db=1': query parameters and fragments are not "
              "supported in redis:// URLs");
    EXPECT_EQ(message("redis://user@h"),
              "invalid redis URL 'redis://user@h': credentials must be [user]:password@");
    EXPECT_EQ(message("unix:///s?user=u"),
              "invalid redis URL 'unix:///s?user=u': a user needs a password");
    EXPECT_EQ(message("unix:///s?db"),
              "invalid redis URL 'unix:///s?db': query parameter 'db' has no value");
    EXPECT_EQ(message("unix:///s?verbose=1"),
              "invalid redis URL 'unix:///s?verbose=1': unknown query parameter 'verbose' "
              "(expected db, user or password)");
    EXPECT_EQ(message("unix://relative.sock"),
              "invalid redis URL 'unix://relative.sock': expected unix:///absolute/path/to/socket");
    EXPECT_NE(message("redis://:%zz@h").find("%-escape"), std::string::npos);
}

// Found by fuzz/fuzz_redis_url: a host name that percent-decodes to a URL delimiter (or to
// bytes outside ASCII) was accepted, and display() then showed a URL naming another place
// (or none).
TEST(RedisUrl, RejectsHostNamesThatDecodeToDelimiters) {
    for (const char* bad : {"redis://%2Fcache.internal:6380/3", "redis://:secret::1]@%2Fcache/3",
                            "redis://a%3A1:6379", "redis://a%40b/0", "redis://a%20b",
                            "redis://a%00b", "redis://a%25b", "redis://a%FFb", "redis://caf%C3%A9",
                            "redis://%3chost:6380/3", "redis://a%22b", "redis://a%7Bb"}) {
        try {
            parse_redis_url(bad);
            ADD_FAILURE() << bad << " was accepted";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("bad host name"), std::string::npos) << e.what();
        }
    }
    // Escapes of ordinary host name characters still decode.
    auto url = parse_redis_url("redis://cache%2Dinternal:6380/1");
    EXPECT_EQ(url.host, "cache-internal");
    EXPECT_EQ(parse_redis_url(url.display()).host, "cache-internal");
}

TEST(RedisUrl, RejectsBadUrlsWithoutLeakingThePassword) {
    for (const char* bad : {"",
                            "127.0.0.1:6379",
                            "http://h",
                            "rediss://h",
                            "redis://",
                            "redis://:6379",
                            "redis://h:",
                            "redis://h:0",
                            "redis://h:65536",
                            "redis://h:x",
                            "redis://h/x",
                            "redis://h/-1",
                            "redis://h/0/1",
                            "redis://h/0?db=1",
                            "redis://::1:6379",
                            "redis://[::1",
                            "redis://[::1]x",
                            "redis://user@h",
                            "redis://user:@h",
                            "redis://:%zz@h",
                            "unix://",
                            "unix://relative.sock",
                            "unix:///s?db=x",
                            "unix:///s?verbose=1",
                            "unix:///s?db"}) {
        EXPECT_THROW(parse_redis_url(bad), std::invalid_argument) << bad;
    }
    try {
        parse_redis_url("redis://bob:hunter2@h:99999");
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("redis://bob:***@h:99999"), std::string::npos) << what;
        EXPECT_NE(what.find("port"), std::string::npos) << what;
        EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
    }
    EXPECT_THROW(connect_redis_store("redis://h:99999", {}), std::invalid_argument);
    EXPECT_THROW(connect_redis_store("memcached://h", {}), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Connecting

TEST(RedisStoreConnect, RefusedConnectionThrowsQuicklyNamingTheUrl) {
    // A bound socket that does not listen: connections to it are refused.
    test::unique_fd fd(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const std::string url = "redis://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/0";

    const auto start = std::chrono::steady_clock::now();
    try {
        connect_redis_store(url, {});
        FAIL() << "connected to nothing";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "redis " + url + ": cannot connect: Connection refused");
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);

    try {
        connect_redis_store("unix:///nonexistent/redis.sock", {});
        FAIL() << "connected to nothing";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(
            std::string(e.what()),
            "redis unix:///nonexistent/redis.sock: cannot connect: No such file or directory");
    }
}

TEST(RedisStoreConnect, SilentServerTimesOut) {
    // Listens (the kernel completes connections) but never answers.
    std::uint16_t port = 0;
    test::unique_fd fd(test::listen_loopback(port, 8));
    const std::string url = "redis://127.0.0.1:" + std::to_string(port) + "/0";

    const auto start = std::chrono::steady_clock::now();
    try {
        connect_redis_store(url, {}, fast_options("t:"));
        FAIL() << "connected to a silent server";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "redis " + url + ": cannot connect: timed out after 300 ms");
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_GE(elapsed, 250ms);
    EXPECT_LT(elapsed, 1500ms);
}

TEST(RedisStoreConnect, AuthenticatesWithPasswordAndUser) {
    redis_server server({"--requirepass", "s3cret"});
    const std::string hostport = "127.0.0.1:" + std::to_string(server.port());
    try {
        connect_redis_store("redis://" + hostport, {});
        FAIL() << "connected without a password";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("NOAUTH"), std::string::npos) << e.what();
    }
    try {
        connect_redis_store("redis://:wrong@" + hostport, {});
        FAIL() << "connected with a wrong password";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("redis redis://" + hostport + "/0: cannot connect: AUTH: WRONGPASS"),
                  std::string::npos)
            << what;
        EXPECT_EQ(what.find("wrong@"), std::string::npos) << what;
    }
    auto a = connect_redis_store("redis://:s3cret@" + hostport + "/1", {});
    put_sync(*a, "k", "v");
    auto b = connect_redis_store("redis://default:s3cret@" + hostport + "/1", {});
    EXPECT_TRUE(is_hit(*b, "k", "v"));
}

bool ipv6_loopback_available() {
    test::unique_fd fd(::socket(AF_INET6, SOCK_STREAM, 0));
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_loopback;
    return fd && ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

TEST(RedisStoreConnect, ResolvesHostNamesAndSpeaksIpv6) {
    // "-::1": listen there too if the host has IPv6 loopback.
    redis_server server({"--bind", "127.0.0.1", "-::1"});
    const std::string port = std::to_string(server.port());
    auto by_name = connect_redis_store("redis://localhost:" + port + "/2", {}, "t:");
    put_sync(*by_name, "k", "v");
    if (!ipv6_loopback_available()) {
        GTEST_SKIP() << "no IPv6 loopback";
    }
    auto v6 = connect_redis_store("redis://[::1]:" + port + "/2", {}, "t:");
    EXPECT_TRUE(is_hit(*v6, "k", "v"));
}

// ---------------------------------------------------------------------------------------------
// The data model, on one server shared by the tests (each test uses its own key prefix)

class RedisStore : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { server_ = new redis_server(); }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }

    static std::string prefix() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        return std::string("test:") + info->name() + ":";
    }
    static std::unique_ptr<store> open(store_limits limits = {}, int db = 0) {
        return connect_redis_store(server_->url(db), limits, prefix());
    }

    static redis_server* server_;
};

redis_server* RedisStore::server_ = nullptr;

TEST_F(RedisStore, ValuesAreStoredAsTheyAreUnderThePrefix) {
    auto s = open();
    const std::string binary("a\0b\r\n\0\xff\x80z", 9);
    put_sync(*s, "bin", binary);
    EXPECT_EQ(raw_command(*server_, {"STRLEN", prefix() + "e:bin"}), ":9\r\n");
    EXPECT_EQ(raw_command(*server_, {"ZCARD", prefix() + "lru"}), ":1\r\n");
    EXPECT_EQ(raw_command(*server_, {"GET", prefix() + "bytes"}), "$1\r\n9\r\n");
}

TEST_F(RedisStore, PutDropsIndexMembersOlderThanTheTtl) {
    store_limits limits;
    limits.ttl = 100ms;
    auto s = open(limits);
    put_sync(*s, "a", "1");
    put_sync(*s, "b", "2");
    std::this_thread::sleep_for(200ms);
    put_sync(*s, "c", "3");  // a and b are certainly expired: swept from the index
    const store_stats st = s->stats();
    EXPECT_EQ(st.entries, 1u);
    EXPECT_EQ(st.bytes, 1u);
}

TEST_F(RedisStore, EvictedValuesAreDeletedFromRedis) {
    store_limits limits;
    limits.max_entries = 3;
    auto s = open(limits);
    s->put("a", "1", unix_ms_now());
    s->put("b", "2", unix_ms_now());
    s->put("c", "3", unix_ms_now());
    EXPECT_TRUE(is_hit(*s, "a", "1"));  // a is now more recent than b and c
    put_sync(*s, "d", "4");
    EXPECT_TRUE(is_miss(*s, "b"));
    // The evicted value is gone from Redis too.
    EXPECT_EQ(raw_command(*server_, {"EXISTS", prefix() + "e:b"}), ":0\r\n");
}

// Unlike the memory and sqlite stores, an oversized value leaves the key's old value in place.
TEST_F(RedisStore, OversizedValueLeavesTheOldOne) {
    store_limits limits;
    limits.max_bytes = 10;
    auto s = open(limits);
    put_sync(*s, "k", "small");
    put_sync(*s, "k", std::string(11, 'x'));
    EXPECT_TRUE(is_hit(*s, "k", "small"));
}

TEST_F(RedisStore, StoresOnOneRedisShareEntriesAndLimits) {
    store_limits limits;
    limits.max_entries = 3;
    auto one = open(limits);
    auto two = open(limits);
    put_sync(*one, "a", "1");
    put_sync(*one, "b", "2");
    EXPECT_TRUE(is_hit(*two, "a", "1"));  // refreshes a
    put_sync(*two, "c", "3");
    put_sync(*two, "d", "4");  // the shared limit: b, the least recently used, goes
    EXPECT_TRUE(is_miss(*one, "b"));
    EXPECT_TRUE(is_hit(*one, "a", "1"));
    EXPECT_TRUE(is_hit(*one, "d", "4"));
    EXPECT_EQ(one->stats().entries, 3u);
    EXPECT_EQ(two->stats().entries, 3u);
}

TEST_F(RedisStore, DatabaseNumberIsolates) {
    auto db0 = open({}, 0);
    auto db5 = open({}, 5);
    put_sync(*db0, "k", "zero");
    EXPECT_TRUE(is_miss(*db5, "k"));
    put_sync(*db5, "k", "five");
    EXPECT_TRUE(is_hit(*db0, "k", "zero"));
    EXPECT_TRUE(is_hit(*db5, "k", "five"));
}

TEST_F(RedisStore, WorksOverAUnixSocket) {
    auto tcp = open({}, 3);
    auto local = connect_redis_store(server_->unix_url(3), {}, prefix());
    put_sync(*tcp, "k", "v");
    EXPECT_TRUE(is_hit(*local, "k", "v"));
}

TEST_F(RedisStore, ClearRemovesEverythingUnderThePrefix) {
    auto s = open();
    // Same Redis, a prefix that is not under this test's one: untouched.
    auto sibling = connect_redis_store(server_->url(), {},
                                       prefix().substr(0, prefix().size() - 1) + "-sibling:");
    for (int i = 0; i < 1200; ++i) {  // more than one batch of the clear script
        s->put("k" + std::to_string(i), "v", unix_ms_now());
    }
    put_sync(*s, "last", "v");
    put_sync(*sibling, "k1", "kept");
    // An entry that is not in the index.
    EXPECT_EQ(raw_command(*server_, {"SET", prefix() + "e:orphan", "x"}), "+OK\r\n");
    EXPECT_EQ(s->stats().entries, 1201u);

    s->clear();
    EXPECT_EQ(s->stats().entries, 0u);
    EXPECT_EQ(s->stats().bytes, 0u);
    EXPECT_TRUE(is_miss(*s, "k1"));
    EXPECT_TRUE(is_miss(*s, "last"));
    EXPECT_EQ(raw_command(*server_, {"EXISTS", prefix() + "e:orphan", prefix() + "e:k1",
                                     prefix() + "lru", prefix() + "sizes", prefix() + "bytes"}),
              ":0\r\n");
    EXPECT_TRUE(is_hit(*sibling, "k1", "kept"));
    EXPECT_EQ(sibling->stats().entries, 1u);

    // Usable afterwards.
    put_sync(*s, "again", "v");
    EXPECT_TRUE(is_hit(*s, "again", "v"));
    EXPECT_EQ(s->stats().entries, 1u);
}

TEST_F(RedisStore, FallsBackToEvalAfterScriptFlush) {
    auto s = open();
    put_sync(*s, "k", "v");
    EXPECT_EQ(raw_command(*server_, {"SCRIPT", "FLUSH"}), "+OK\r\n");
    EXPECT_TRUE(is_hit(*s, "k", "v"));
    EXPECT_EQ(raw_command(*server_, {"SCRIPT", "FLUSH"}), "+OK\r\n");
    put_sync(*s, "k2", "v2");
    EXPECT_TRUE(is_hit(*s, "k2", "v2"));
}

TEST(RedisOutage, OutOfMemoryServerStillServesGetsAndDropsPuts) {
    redis_server server;
    log_capture logs;
    auto s = connect_redis_store(server.url(), {}, "t:");
    put_sync(*s, "k", "v");
    ASSERT_EQ(raw_command(server, {"CONFIG", "SET", "maxmemory", "1"}), "+OK\r\n");
    put_sync(*s, "new", "v");  // refused: OOM
    put_sync(*s, "new2", "v");
    EXPECT_TRUE(is_hit(*s, "k", "v"));
    EXPECT_TRUE(is_miss(*s, "new"));
    ASSERT_EQ(raw_command(server, {"CONFIG", "SET", "maxmemory", "0"}), "+OK\r\n");
    put_sync(*s, "new", "v");
    EXPECT_TRUE(is_hit(*s, "new", "v"));
    s.reset();
    EXPECT_EQ(logs.count("warning", "cannot store an entry: OOM"), 1) << logs.all();
}

TEST_F(RedisStore, CloseFinishesQueuedPutsAndThenAnswersUnavailable) {
    auto s = open();
    for (int i = 0; i < 50; ++i) {
        s->put("k" + std::to_string(i), "v", unix_ms_now());
    }
    s->close();
    EXPECT_EQ(get(*s, "k0").state, status::unavailable);
    s->put("late", "v", unix_ms_now());  // ignored
    auto reader = open();
    EXPECT_TRUE(is_hit(*reader, "k49", "v"));
    EXPECT_EQ(reader->stats().entries, 50u);
}

// ---------------------------------------------------------------------------------------------
// When Redis goes away

TEST(RedisOutage, StoppedServerMakesGetsUnavailableThenTheStoreRecovers) {
    redis_server server;
    log_capture logs;
    {
        auto s = connect_redis_store(server.url(), {}, fast_options("t:"));
        put_sync(*s, "k", "v");
        ASSERT_TRUE(is_hit(*s, "k", "v"));

        server.stop();
        // Every get completes, as unavailable, within the bound, while Redis is down.
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::future<get_result>> pending;
        for (int i = 0; i < 20; ++i) {
            auto promise = std::make_shared<std::promise<get_result>>();
            pending.push_back(promise->get_future());
            s->async_get("k", [promise](get_result r) { promise->set_value(std::move(r)); });
            s->put("p" + std::to_string(i), "v", unix_ms_now());  // dropped, never throws
        }
        for (auto& f : pending) {
            ASSERT_EQ(f.wait_until(start + 1500ms), std::future_status::ready);
            const get_result r = f.get();
            EXPECT_EQ(r.state, status::unavailable);
            EXPECT_NE(r.error.find("redis " + server.url()), std::string::npos) << r.error;
        }
        EXPECT_EQ(get(*s, "k").state, status::unavailable);
        EXPECT_EQ(s->stats().entries, 0u);
        EXPECT_THROW(s->clear(), std::runtime_error);
        std::this_thread::sleep_for(300ms);  // a few failed reconnects: still one warning

        server.restart();  // empty again: no persistence
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        bool recovered = false;
        while (!recovered && std::chrono::steady_clock::now() < deadline) {
            s->put("back", "yes", unix_ms_now());
            recovered = get(*s, "back").state == status::hit;
            if (!recovered) {
                std::this_thread::sleep_for(20ms);
            }
        }
        EXPECT_TRUE(recovered);
        EXPECT_TRUE(is_miss(*s, "k"));
        EXPECT_EQ(s->stats().entries, 1u);
    }
    EXPECT_EQ(logs.count("warning", "redis " + server.url() + " unreachable: "), 1) << logs.all();
    EXPECT_EQ(logs.count("warning", "cache is pass-through until it is back"), 1) << logs.all();
    EXPECT_EQ(logs.count("info", "redis " + server.url() + " is reachable again"), 1) << logs.all();
}

TEST(RedisOutage, HungServerTimesOutThenTheStoreRecovers) {
    redis_server server;
    log_capture logs;
    auto s = connect_redis_store(server.url(), {}, fast_options("t:"));
    put_sync(*s, "k", "v");

    server.pause();
    const auto start = std::chrono::steady_clock::now();
    get_result r = get(*s, "k", 3s);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.state, status::unavailable);
    EXPECT_NE(r.error.find("no reply within 400 ms"), std::string::npos) << r.error;
    EXPECT_GE(elapsed, 350ms);
    EXPECT_LT(elapsed, 1500ms);
    // Down now: answered at once.
    const auto again = std::chrono::steady_clock::now();
    EXPECT_EQ(get(*s, "k").state, status::unavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - again, 300ms);

    server.resume();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    bool recovered = false;
    while (!recovered && std::chrono::steady_clock::now() < deadline) {
        recovered = is_hit(*s, "k", "v");  // the data survived: the server only paused
        if (!recovered) {
            std::this_thread::sleep_for(20ms);
        }
    }
    EXPECT_TRUE(recovered);
    s.reset();
    EXPECT_EQ(logs.count("warning", "no reply within 400 ms"), 1) << logs.all();
    EXPECT_EQ(logs.count("info", "is reachable again"), 1) << logs.all();
}

TEST(RedisOutage, CloseWithPendingGetsOnAHungServerCompletesThem) {
    redis_server server;
    auto s = connect_redis_store(server.url(), {}, fast_options("t:"));
    put_sync(*s, "k", "v");
    server.pause();
    std::atomic<int> unavailable{0};
    for (int i = 0; i < 10; ++i) {
        s->async_get("k", [&](get_result r) {
            if (r.state == status::unavailable) {
                ++unavailable;
            }
        });
    }
    const auto start = std::chrono::steady_clock::now();
    s->close();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
    EXPECT_EQ(unavailable, 10);
    s.reset();
    server.resume();
}

TEST(RedisOutage, ServerKilledUnderLoadLosesNoGets) {
    redis_server server;
    log_capture logs;
    auto s = connect_redis_store(server.url(), {}, fast_options("t:"));
    std::atomic<bool> stop{false};
    std::atomic<int> issued{0}, answered{0};
    // Writes keep going out while the server dies (EPIPE must not raise SIGPIPE).
    std::thread load([&] {
        const std::string value(4096, 'v');
        while (!stop) {
            s->put("k" + std::to_string(issued % 50), value, unix_ms_now());
            ++issued;
            s->async_get("k" + std::to_string(issued % 50), [&](get_result) { ++answered; });
            if (issued % 64 == 0) {
                std::this_thread::sleep_for(1ms);
            }
        }
    });
    std::this_thread::sleep_for(100ms);
    server.stop(0ms);  // SIGKILL
    std::this_thread::sleep_for(200ms);
    stop = true;
    load.join();
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (answered < issued && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(answered, issued);
    EXPECT_GT(issued, 100);
}

TEST(RedisOutage, StoreCanBeDestroyedWhileRedisIsDown) {
    redis_server server;
    log_capture logs;
    auto s = connect_redis_store(server.url(), {}, fast_options("t:"));
    server.stop();
    std::atomic<int> answered{0};
    for (int i = 0; i < 5; ++i) {
        s->async_get("k", [&](get_result) { ++answered; });
        s->put("k", "v", unix_ms_now());
    }
    std::this_thread::sleep_for(100ms);  // reconnecting in the background
    s.reset();
    EXPECT_EQ(answered, 5);
}

}  // namespace
}  // namespace llm_proxy::cache

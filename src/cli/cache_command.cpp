#include <spdlog/spdlog.h>

#include "cli/subcommand.hpp"
#include "llm_proxy/addons/response_cache.hpp"
#include "llm_proxy/cache/memory_store.hpp"
#include "llm_proxy/cache/redis_store.hpp"
#include "llm_proxy/cache/sqlite_store.hpp"

namespace llm_proxy::cli {

namespace {

struct cache_options {
    std::string engine = "sqlite";
    std::string cache_dir = "~/.cache/llm_proxy";
    std::string redis_url = "redis://127.0.0.1:6379/0";
    std::string redis_prefix = "llm_proxy:cache:";
    double ttl_s = 0;
    std::uint64_t max_entries = 0;
    std::size_t max_bytes = std::size_t{1} << 30;
    std::vector<std::string> key_headers;
    std::size_t max_body = 64 * 1024 * 1024;
};

constexpr const char* footer_text =
    "The first request goes upstream (X-Llm_proxy-Cache: MISS); identical ones are answered\n"
    "from the cache (HIT); responses that are not stored say SKIP. The key is the method, the\n"
    "full URL, the decoded request body and the --cache-key-headers (hashed). The API key is\n"
    "NOT part of the key unless you add Authorization to --cache-key-headers: everyone who\n"
    "shares a cache gets everyone's cached answers. Only 2xx answers to GET, HEAD and POST are\n"
    "stored. Request Cache-Control: no-cache skips the lookup (the fresh answer is stored);\n"
    "no-store bypasses the cache. SSE responses are replayed as events. Identical requests in\n"
    "flight at the same time cause one upstream request. Headers in --filter-resp-headers\n"
    "(Set-Cookie, ...) are never stored. See docs/cache.md.";

// CLI11's NonNegativeNumber would print its whole double range in the message.
const CLI::Validator non_negative(
    [](std::string& value) -> std::string {
        return !value.empty() && value.front() == '-' ? "must not be negative" : "";
    },
    "");

std::shared_ptr<cache::store> open_store(const cache_options& o) {
    cache::store_limits limits;
    limits.ttl = std::chrono::milliseconds(static_cast<long long>(o.ttl_s * 1000.0));
    limits.max_entries = o.max_entries;
    limits.max_bytes = o.max_bytes;
    if (o.engine == "memory") {
        return cache::make_memory_store(limits);
    }
    if (o.engine == "redis") {
        return cache::connect_redis_store(o.redis_url, limits, o.redis_prefix);
    }
    return cache::open_sqlite_store(expand_home(o.cache_dir), limits);
}

// Adds the cache's options to `cmd`; returns what adds the cache addon once they are parsed.
addon_factory setup_cache(CLI::App& cmd, dir_logger_options& records) {
    auto opts = std::make_shared<cache_options>();
    cmd.add_option("--cache-engine", opts->engine,
                   "Where entries live: sqlite (one file in --cache-dir, survives restarts), "
                   "memory (gone at exit) or redis (shared by several proxies)")
        ->check(CLI::IsMember({"sqlite", "memory", "redis"}))
        ->capture_default_str();
    cmd.add_option("--cache-dir", opts->cache_dir, "Directory of the sqlite cache file")
        ->capture_default_str();
    cmd.add_option("--redis-url", opts->redis_url,
                   "redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]")
        ->capture_default_str();
    cmd.add_option("--redis-key-prefix", opts->redis_prefix, "Prefix of every Redis key")
        ->capture_default_str();
    cmd.add_option("--cache-ttl", opts->ttl_s,
                   "How long an entry is served: seconds, or with a unit (90s, 30m, 12h, 7d); "
                   "0 = forever")
        ->check(non_negative)
        ->transform(CLI::AsNumberWithUnit(
            std::map<std::string, double>{
                {"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
            CLI::AsNumberWithUnit::CASE_INSENSITIVE))
        ->capture_default_str();
    cmd.add_option("--cache-max-entries", opts->max_entries,
                   "Most entries kept; the least recently used go first (0 = no limit)")
        ->check(non_negative)
        ->capture_default_str();
    cmd.add_option("--cache-max-bytes", opts->max_bytes,
                   "Most bytes kept (K/M/G suffixes); the least recently used go first "
                   "(0 = no limit)")
        ->transform(CLI::AsSizeValue(false))
        ->capture_default_str();
    cmd.add_option("--cache-key-headers", opts->key_headers,
                   "Comma list of request headers that are part of the key (hashed), e.g. "
                   "Authorization,OpenAI-Organization")
        ->delimiter(',');
    cmd.add_option("--cache-max-body", opts->max_body,
                   "Largest request or response body cached (K/M/G suffixes); larger ones pass "
                   "through uncached")
        ->transform(CLI::AsSizeValue(false))
        ->capture_default_str();
    return [opts, &records](addon_chain& chain) {
        auto store = open_store(*opts);
        std::erase(opts->key_headers, std::string());
        std::erase(records.filter_resp_headers, std::string());
        addons::response_cache_options rc;
        rc.key_headers = opts->key_headers;
        rc.filter_response_headers = records.filter_resp_headers;
        rc.max_body = opts->max_body;
        spdlog::info("cache: {} engine{}", store->engine(),
                     opts->engine == "sqlite" ? " in " + expand_home(opts->cache_dir).string()
                                              : std::string());
        chain.add(std::make_shared<addons::response_cache>(std::move(store), rc));
    };
}

const subcommand_registration cache{[] {
    subcommand s;
    s.name = "cache";
    s.description = "Proxy requests and answer repeated identical requests from a response cache";
    s.footer = footer_text;
    s.order = 30;
    s.setup = setup_cache;
    s.output_help =
        "Also write each request/response pair as <output>/<flow-id>.json, as dir_logger does "
        "(default: no records)";
    return s;
}()};

}  // namespace

}  // namespace llm_proxy::cli

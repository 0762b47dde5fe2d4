// `llm_proxy cache`, end to end: the real binary, the fake upstream, real stores.
#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

#include "e2e_fixture.hpp"
#include "llm_proxy/flow.hpp"
#include "llm_proxy/record/body_decoder.hpp"
#include "support/body_stream.hpp"
#include "support/fake_upstream/pattern.hpp"
#include "support/node_sdk.hpp"
#include "support/proxied_connection.hpp"
#include "support/redis_server.hpp"

namespace llm_proxy::test {

namespace {
const std::string chat_url = "https://api.openai.com/v1/chat/completions";
const std::string chat_body =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})";
const std::string stream_body =
    R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]})";

// The database file plus its write-ahead log, as bytes.
std::string read_db(const std::filesystem::path& dir) {
    std::string out;
    for (const char* name : {"cache.sqlite3", "cache.sqlite3-wal"}) {
        std::ifstream in(dir / name, std::ios::binary);
        out.append(std::istreambuf_iterator<char>(in), {});
    }
    return out;
}
}  // namespace

class Cache : public e2e_test {
  protected:
    proxy_process& start_cache(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"cache", "--verbose", "--cache-dir", cache_dir().string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return start_proxy(args);
    }
    std::filesystem::path cache_dir() const { return work_ / "cache"; }

    response chat(const header_list& extra = {}, const std::string& body = chat_body) {
        auto client = proxied_client();
        header_list h = {{"Content-Type", "application/json"}};
        h.insert(h.end(), extra.begin(), extra.end());
        return client.post(chat_url, body, h);
    }
    std::uint64_t upstream_requests() {
        return upstream_->stats()["requests"].get<std::uint64_t>();
    }
    static std::string cache_header(const response& r) {
        return r.header("X-Llm_proxy-Cache").value_or("(none)");
    }
    static std::string id_of(const response& r) {
        return nlohmann::json::parse(r.body)["id"].get<std::string>();
    }
};

TEST_F(Cache, MissThenHitWithoutTouchingTheUpstream) {
    start_cache();
    auto first = chat();
    ASSERT_EQ(first.status, 200u) << first.body;
    EXPECT_EQ(cache_header(first), "MISS");
    auto second = chat();
    ASSERT_EQ(second.status, 200u);
    EXPECT_EQ(cache_header(second), "HIT");
    EXPECT_EQ(upstream_requests(), 1u);
    // Byte-identical: status, reason, body and every header but the cache verdict.
    EXPECT_EQ(second.body, first.body);
    EXPECT_EQ(second.reason, first.reason);
    auto without_verdict = [](header_list h) {
        std::erase_if(
            h, [](const auto& kv) { return llm_proxy::iequals(kv.first, "X-Llm_proxy-Cache"); });
        return h;
    };
    EXPECT_EQ(without_verdict(second.headers), without_verdict(first.headers));
    // Another body is another key.
    auto other = chat({}, R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"yo"}]})");
    EXPECT_EQ(cache_header(other), "MISS");
    EXPECT_NE(id_of(other), id_of(first));
    EXPECT_EQ(upstream_requests(), 2u);
}

TEST_F(Cache, SqliteEntriesSurviveARestart) {
    start_cache();
    auto first = chat();
    ASSERT_EQ(cache_header(first), "MISS");
    ASSERT_EQ(proxy_->stop(), 0);
    start_cache();
    auto again = chat();
    EXPECT_EQ(cache_header(again), "HIT");
    EXPECT_EQ(again.body, first.body);
    EXPECT_EQ(upstream_requests(), 1u);
}

TEST_F(Cache, SqliteSurvivesKillMinus9) {
    start_cache();
    auto first = chat();
    ASSERT_EQ(cache_header(first), "MISS");
    ASSERT_EQ(cache_header(chat()), "HIT");  // the entry has reached the store
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    proxy_->stop(SIGKILL);
    auto check = run_command(
        {"sqlite3", (cache_dir() / "cache.sqlite3").string(), "PRAGMA integrity_check;"},
        std::chrono::seconds(10));
    EXPECT_EQ(check.exit_code, 0) << check.err;
    EXPECT_EQ(check.out, "ok\n");
    start_cache();
    auto again = chat();
    EXPECT_EQ(cache_header(again), "HIT");
    EXPECT_EQ(again.body, first.body);
    EXPECT_EQ(upstream_requests(), 1u);
}

TEST_F(Cache, MemoryEngineIsGoneAfterARestart) {
    start_cache({"--cache-engine", "memory"});
    EXPECT_EQ(cache_header(chat()), "MISS");
    EXPECT_EQ(cache_header(chat()), "HIT");
    ASSERT_EQ(proxy_->stop(), 0);
    start_cache({"--cache-engine", "memory"});
    EXPECT_EQ(cache_header(chat()), "MISS");
    EXPECT_EQ(upstream_requests(), 2u);
    EXPECT_FALSE(std::filesystem::exists(cache_dir()));
}

// Orderings instead of a latency bound: a HIT is expected only when the second request
// finished within the TTL of the first one's start, and after the TTL has surely passed since
// the entry was stored, the next request is a MISS.
TEST_F(Cache, TtlExpiry) {
    const auto ttl = std::chrono::milliseconds(1000);
    start_cache({"--cache-engine", "memory", "--cache-ttl", "1s"});
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(cache_header(chat()), "MISS");
    auto second = cache_header(chat());
    auto t1 = std::chrono::steady_clock::now();
    bool within_ttl = t1 - t0 < ttl;
    if (within_ttl) {
        EXPECT_EQ(second, "HIT");
    }
    // The entry was stored before t1: it has expired once ttl has passed since then.
    std::this_thread::sleep_until(t1 + ttl + std::chrono::milliseconds(100));
    EXPECT_EQ(cache_header(chat()), "MISS");
    EXPECT_EQ(upstream_requests(), second == "HIT" ? 2u : 3u);
}

TEST_F(Cache, LeastRecentlyUsedEntryIsEvicted) {
    start_cache({"--cache-max-entries", "2"});
    auto body = [](const char* word) {
        return std::string(R"({"model":"m","messages":[{"role":"user","content":")") + word +
               "\"}]}";
    };
    EXPECT_EQ(cache_header(chat({}, body("a"))), "MISS");
    EXPECT_EQ(cache_header(chat({}, body("b"))), "MISS");
    EXPECT_EQ(cache_header(chat({}, body("a"))), "HIT");   // a is now more recent than b
    EXPECT_EQ(cache_header(chat({}, body("c"))), "MISS");  // evicts b
    EXPECT_EQ(cache_header(chat({}, body("a"))), "HIT");
    EXPECT_EQ(cache_header(chat({}, body("c"))), "HIT");
    EXPECT_EQ(cache_header(chat({}, body("b"))), "MISS");
    EXPECT_EQ(upstream_requests(), 4u);
}

TEST_F(Cache, NoCacheRefreshesAndNoStoreBypasses) {
    start_cache();
    auto first = chat();
    ASSERT_EQ(cache_header(first), "MISS");
    // no-cache: skips the lookup, stores the fresh answer.
    auto fresh = chat({{"Cache-Control", "no-cache"}});
    EXPECT_EQ(cache_header(fresh), "MISS");
    EXPECT_NE(id_of(fresh), id_of(first));
    auto hit = chat();
    EXPECT_EQ(cache_header(hit), "HIT");
    EXPECT_EQ(id_of(hit), id_of(fresh));
    // no-store: neither reads nor writes.
    auto bypass = chat({{"Cache-Control", "max-age=0, no-store"}});
    EXPECT_EQ(cache_header(bypass), "SKIP");
    EXPECT_NE(id_of(bypass), id_of(fresh));
    EXPECT_EQ(id_of(chat()), id_of(fresh));
    EXPECT_EQ(upstream_requests(), 3u);
}

TEST_F(Cache, OnlySuccessfulAnswersAreStored) {
    start_cache();
    auto client = proxied_client();
    for (int i = 0; i < 2; ++i) {
        auto r = client.get("https://api.openai.com/status/500");
        EXPECT_EQ(r.status, 500u);
        EXPECT_EQ(cache_header(r), "SKIP");
        auto nf = client.get("https://api.openai.com/status/404");
        EXPECT_EQ(nf.status, 404u);
        EXPECT_EQ(cache_header(nf), "SKIP");
    }
    EXPECT_EQ(upstream_requests(), 4u);
    EXPECT_EQ(cache_header(client.get("https://api.openai.com/status/201")), "MISS");
    auto created = client.get("https://api.openai.com/status/201");
    EXPECT_EQ(created.status, 201u);
    EXPECT_EQ(cache_header(created), "HIT");
    // Methods other than GET, HEAD and POST pass through.
    auto put = client.request("PUT", "https://api.openai.com/echo", {}, "x");
    auto put2 = client.request("PUT", "https://api.openai.com/echo", {}, "x");
    EXPECT_EQ(cache_header(put), "SKIP");
    EXPECT_EQ(cache_header(put2), "SKIP");
    EXPECT_EQ(upstream_requests(), 7u);
}

TEST_F(Cache, HeadIsCachedWithItsContentLength) {
    start_cache();
    auto client = proxied_client();
    auto get = client.get("https://api.openai.com/v1/models");
    auto miss = client.request("HEAD", "https://api.openai.com/v1/models");
    auto hit = client.request("HEAD", "https://api.openai.com/v1/models");
    EXPECT_EQ(cache_header(miss), "MISS");
    EXPECT_EQ(cache_header(hit), "HIT");
    EXPECT_EQ(hit.body, "");
    EXPECT_EQ(hit.header("Content-Length"), std::to_string(get.body.size()));
    EXPECT_EQ(upstream_requests(), 2u);
}

TEST_F(Cache, BodiesAreStoredDecodedAndEncodedPerRequest) {
    start_cache();
    header_list gz = {{"X-Fake-Gzip", "1"}, {"Accept-Encoding", "gzip"}};
    auto first = chat(gz);
    ASSERT_EQ(cache_header(first), "MISS");
    ASSERT_EQ(first.header("Content-Encoding"), "gzip");
    auto plain = record::decode_body("gzip", first.body, 1 << 20);
    ASSERT_TRUE(plain.ok);
    // The same request from a client that takes no gzip gets the plain body...
    auto identity = chat({{"X-Fake-Gzip", "1"}});
    EXPECT_EQ(cache_header(identity), "HIT");
    EXPECT_FALSE(identity.header("Content-Encoding"));
    EXPECT_EQ(identity.body, plain.data);
    EXPECT_EQ(identity.header("Content-Length"), std::to_string(plain.data.size()));
    // ...and one that takes gzip gets gzip again.
    auto again = chat(gz);
    EXPECT_EQ(cache_header(again), "HIT");
    EXPECT_EQ(again.header("Content-Encoding"), "gzip");
    auto decoded = record::decode_body("gzip", again.body, 1 << 20);
    EXPECT_EQ(decoded.data, plain.data);
    EXPECT_EQ(upstream_requests(), 1u);
    // Stored decoded: the JSON text is in the database file in clear.
    auto db = read_db(cache_dir());
    EXPECT_NE(db.find(id_of(identity)), std::string::npos);
}

TEST_F(Cache, SecretsStayOutOfTheStore) {
    start_cache({"--cache-key-headers", "Authorization"});
    const std::string cookie = "session=cookie-secret-4711";
    auto first = chat({{"Authorization", "Bearer sk-alice-secret"}, {"X-Fake-Set-Cookie", cookie}});
    ASSERT_EQ(cache_header(first), "MISS");
    EXPECT_EQ(first.header("Set-Cookie"), cookie);  // relayed to the client...
    auto hit = chat({{"Authorization", "Bearer sk-alice-secret"}});
    EXPECT_EQ(cache_header(hit), "HIT");
    EXPECT_FALSE(hit.header("Set-Cookie"));  // ...but never stored
    // The key header separates callers.
    auto bob = chat({{"Authorization", "Bearer sk-bob-secret"}});
    EXPECT_EQ(cache_header(bob), "MISS");
    EXPECT_NE(id_of(bob), id_of(first));
    EXPECT_EQ(upstream_requests(), 2u);
    ASSERT_EQ(proxy_->stop(), 0);
    auto db = read_db(cache_dir());
    ASSERT_NE(db.find(id_of(first)), std::string::npos);
    EXPECT_EQ(db.find("cookie-secret-4711"), std::string::npos);
    EXPECT_EQ(db.find("sk-alice-secret"), std::string::npos);
    EXPECT_EQ(db.find("sk-bob-secret"), std::string::npos);
}

TEST_F(Cache, SseIsReplayedAsEvents) {
    start_cache();
    header_list h = {
        {"Content-Type", "application/json"}, {"X-Fake-Events", "6"}, {"X-Fake-Interval-Ms", "30"}};
    auto client = proxied_client();
    auto first = read_sse_stream(client, chat_url, h, stream_body);
    ASSERT_EQ(first.status, 200u);
    ASSERT_GE(first.events.size(), 6u);
    auto second = read_sse_stream(client, chat_url, h, stream_body);
    ASSERT_EQ(second.status, 200u);
    auto verdict = std::find_if(second.headers.begin(), second.headers.end(),
                                [](const auto& kv) { return kv.first == "X-Llm_proxy-Cache"; });
    ASSERT_NE(verdict, second.headers.end());
    EXPECT_EQ(verdict->second, "HIT");
    EXPECT_EQ(second.raw, first.raw);  // the same events, with the original send times
    ASSERT_EQ(second.events.size(), first.events.size());
    EXPECT_EQ(second.events.back().data, "[DONE]");
    EXPECT_EQ(upstream_requests(), 1u);

    // The OpenAI Python SDK streams with httpx like this; it must work against a HIT.
    std::string script = R"PY(
import json, sys, httpx
proxy, ca, url, body = sys.argv[1:5]
chunks = []
with httpx.Client(proxies=proxy, verify=ca) as client:
    with client.stream("POST", url, content=body,
                       headers={"Content-Type": "application/json", "X-Fake-Events": "6"}) as r:
        verdict = r.headers.get("x-llm_proxy-cache")
        ctype = r.headers.get("content-type")
        for line in r.iter_lines():
            line = line.rstrip("\r\n")  # older httpx keeps the line end
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:])["choices"][0]["delta"]["content"])
print(json.dumps({"verdict": verdict, "ctype": ctype, "chunks": chunks}))
)PY";
    auto path = work_.write_file("sdk_like.py", script);
    auto r = run_command(
        {python3, path.string(), proxy_->url(), proxy_ca_cert().string(), chat_url, stream_body},
        std::chrono::seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto out = nlohmann::json::parse(r.out);
    EXPECT_EQ(out["verdict"], "HIT");
    EXPECT_EQ(out["ctype"], "text/event-stream");
    EXPECT_EQ(out["chunks"].size(), 6u);
    EXPECT_EQ(out["chunks"][0], "tok0 ");
    EXPECT_EQ(upstream_requests(), 1u);
}

TEST_F(Cache, OpenAiJavaScriptSdkStreamsAHitWithForAwait) {
    ASSERT_EQ(missing_node_packages({"openai", "https-proxy-agent"}), "");
    start_cache({"--cache-engine", "memory"});
    std::string script = R"JS(
const { OpenAI } = require('openai');
const { HttpsProxyAgent } = require('https-proxy-agent');
const client = new OpenAI({ apiKey: 'sk-test', baseURL: 'https://api.openai.com/v1',
                            httpAgent: new HttpsProxyAgent(process.argv[2]), maxRetries: 0 });
(async () => {
  const { data: stream, response } = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }],
  }).withResponse();
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk.choices[0]?.delta?.content ?? '');
  console.log(JSON.stringify({ verdict: response.headers.get('x-llm_proxy-cache'), chunks }));
})().catch((e) => { console.error(String(e)); process.exit(1); });
)JS";
    auto path = work_.write_file("sdk_stream.js", script);
    for (const char* expected : {"MISS", "HIT"}) {
        auto r = run_node_script(path, {proxy_->url()},
                                 {{"NODE_EXTRA_CA_CERTS", proxy_ca_cert().string()}},
                                 std::chrono::seconds(30));
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
        auto out = nlohmann::json::parse(r.out);
        EXPECT_EQ(out["verdict"], expected);
        EXPECT_EQ(out["chunks"],
                  nlohmann::json::parse(R"(["tok0 ","tok1 ","tok2 ","tok3 ","tok4 "])"));
    }
    EXPECT_EQ(upstream_requests(), 1u);
}

TEST_F(Cache, ConcurrentIdenticalMissesMakeOneUpstreamRequest) {
    start_cache({"--cache-engine", "memory"});
    constexpr int n = 8;
    std::vector<response> results(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] { results[i] = chat({{"X-Fake-Delay-Ms", "600"}}); });
    }
    for (auto& t : threads) {
        t.join();
    }
    int misses = 0;
    for (const auto& r : results) {
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.body, results[0].body);
        misses += cache_header(r) == "MISS" ? 1 : 0;
    }
    EXPECT_EQ(misses, 1);
    EXPECT_EQ(upstream_requests(), 1u);
}

TEST_F(Cache, FailedLeaderReleasesItsWaiters) {
    start_cache({"--cache-engine", "memory"});
    // Five identical slow requests for an error: the waiters go upstream themselves.
    std::vector<response> results(5);
    std::vector<std::thread> threads;
    for (auto& r : results) {
        threads.emplace_back([&] {
            auto client = proxied_client();
            r = client.get("https://api.openai.com/status/503?delay_ms=400");
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    for (const auto& r : results) {
        EXPECT_EQ(r.status, 503u);
        EXPECT_EQ(cache_header(r), "SKIP");
    }
    EXPECT_EQ(upstream_requests(), 5u);
}

TEST_F(Cache, LargeRequestBodiesPassThroughUncached) {
    start_cache({"--cache-max-body", "1K"});
    auto client = proxied_client();
    std::string big(5000, 'x');
    for (std::size_t i = 0; i < big.size(); i += 7) {
        big[i] = static_cast<char>('a' + i % 26);
    }
    auto r = client.post("https://api.openai.com/echo", big);
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(cache_header(r), "SKIP");
    EXPECT_EQ(nlohmann::json::parse(r.body)["body"], big);
    auto again = client.post("https://api.openai.com/echo", big);
    EXPECT_EQ(cache_header(again), "SKIP");
    EXPECT_EQ(upstream_requests(), 2u);
}

// --cache-max-body at its edge, response bodies: 999 and 1,000 bytes are stored (the second
// request is a HIT), 1,001 is not (SKIP with its reason; with Content-Length known from the
// head, chunked only once the body passed the bound, so that response itself is a MISS). The
// client gets every byte each time.
TEST_F(Cache, ResponseBodyIsStoredUpToCacheMaxBodyAndNotPastIt) {
    start_cache({"--cache-max-body", "1000", "--output", log_dir().string()});
    auto client = proxied_client();
    std::size_t expected_upstream = 0;
    std::map<std::string, std::string> skipped;  // url -> reason
    for (const char* framing : {"length", "chunked"}) {
        const bool chunked = std::string_view(framing) == "chunked";
        for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
            const std::string url =
                "https://api.openai.com/download?bytes=" + std::to_string(size) +
                "&framing=" + framing;
            const bool stored = size <= 1000;
            for (int round = 0; round < 2; ++round) {
                auto r = client.get(url);
                const std::string what = url + " round " + std::to_string(round);
                ASSERT_EQ(r.status, 200u) << what;
                ASSERT_EQ(r.body.size(), size) << what;
                EXPECT_TRUE(check_pattern(r.body.data(), r.body.size(), 0)) << what;
                std::string verdict =
                    stored ? (round == 0 ? "MISS" : "HIT") : (chunked ? "MISS" : "SKIP");
                EXPECT_EQ(cache_header(r), verdict) << what;
                if (round == 0 || !stored) {
                    ++expected_upstream;
                }
            }
            if (!stored) {
                skipped[url] = "response body over --cache-max-body";
            }
        }
    }
    EXPECT_EQ(upstream_requests(), expected_upstream);
    auto records = wait_for_records(12);
    ASSERT_EQ(records.size(), 12u);
    std::size_t skips = 0;
    for (const auto& rec : records) {
        const std::string url = rec["request"]["url"];
        if (auto it = skipped.find(url); it != skipped.end()) {
            ++skips;
            EXPECT_EQ(rec["tags"]["cache_skip"], it->second) << rec.dump(2);
        } else {
            EXPECT_FALSE(rec["tags"].contains("cache_skip")) << rec.dump(2);
        }
    }
    EXPECT_EQ(skips, 4u);
}

// --cache-max-body at its edge, request bodies of a POST: 999 and 1,000 bytes make a key (MISS
// then HIT), 1,001 does not (SKIP, "request body over --cache-max-body", both times), sent with
// Content-Length and chunked, each request whole in one write and with its last body byte in a
// later write (so the read before it may end exactly at the bound, or one byte short of it);
// the upstream gets every byte each time, all over one client connection.
TEST_F(Cache, RequestBodyIsKeyedUpToCacheMaxBodyAndSkippedPastIt) {
    start_cache({"--cache-max-body", "1000", "--output", log_dir().string()});
    proxied_connection c(proxy_->host(), proxy_->port(), "https://api.openai.com",
                         proxy_ca_cert().string(), std::chrono::seconds(10));
    std::size_t expected_upstream = 0;
    std::size_t requests = 0;
    std::uint64_t seed = 40;
    for (bool last_byte_later : {false, true}) {
        for (bool chunked : {false, true}) {
            for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
                upload_spec spec;
                spec.size = size;
                spec.seed = ++seed;  // each body is new to the cache
                spec.framing = chunked ? body_framing::chunked : body_framing::content_length;
                const std::string body = make_body(size, spec.seed);
                const upload_result want = expected_body(spec);
                const bool keyed = size <= 1000;
                header_list h = framing_headers(spec);
                h.emplace_back("Content-Type", "application/octet-stream");
                const std::string head = make_head("POST", c.target("/sink"), c.host_header(), h);
                // All the body but its last byte, and the rest.
                std::string first = head;
                std::string rest;
                if (chunked) {
                    for (std::size_t at = 0; at < size - 1; at += 300) {
                        first += encode_chunk(std::string_view(body).substr(
                            at, std::min<std::size_t>(300, size - 1 - at)));
                    }
                    rest =
                        encode_chunk(std::string_view(body).substr(size - 1)) + encode_last_chunk();
                } else {
                    first += body.substr(0, size - 1);
                    rest = body.substr(size - 1);
                }
                for (int round = 0; round < 2; ++round) {
                    const std::string what = std::string(chunked ? "chunked " : "length ") +
                                             std::to_string(size) + " bytes, " +
                                             (last_byte_later ? "last byte later" : "one write") +
                                             ", round " + std::to_string(round);
                    if (last_byte_later) {
                        c.send(first);
                        std::this_thread::sleep_for(std::chrono::milliseconds(50));
                        c.send(rest);
                    } else {
                        c.send(first + rest);
                    }
                    ++requests;
                    const raw_response r = c.read_final_response();
                    ASSERT_EQ(r.status, 200u) << what;
                    ASSERT_TRUE(r.keep_alive()) << what;
                    ASSERT_LE(r.body.size(), 1000u) << "the sink's answer must fit the bound";
                    const auto sink = nlohmann::json::parse(r.body);
                    EXPECT_EQ(sink["body_length"], size) << what;
                    EXPECT_EQ(sink["body_sha256"], want.sha256) << what;
                    EXPECT_EQ(r.header("X-Llm_proxy-Cache").value_or("(none)"),
                              keyed ? (round == 0 ? "MISS" : "HIT") : "SKIP")
                        << what;
                    if (round == 0 || !keyed) {
                        ++expected_upstream;
                    }
                }
            }
        }
    }
    EXPECT_EQ(upstream_requests(), expected_upstream);
    auto records = wait_for_records(requests);
    ASSERT_EQ(records.size(), requests);
    std::size_t skips = 0;
    for (const auto& rec : records) {
        if (rec["tags"].contains("cache_skip")) {
            ++skips;
            EXPECT_EQ(rec["tags"]["cache_skip"], "request body over --cache-max-body")
                << rec.dump(2);
        }
    }
    EXPECT_EQ(skips, 8u);
}

// A compressed request body is keyed by its decoded bytes, bounded by --cache-max-body: gzip
// bodies decoding to 999 and 1,000 bytes make a key (MISS then HIT), one decoding to 1,001 does
// not (SKIP, "request body over --cache-max-body once decoded"), although all three are far below
// the bound as sent; the upstream gets the compressed bytes as sent.
TEST_F(Cache, CompressedRequestBodyIsKeyedUpToCacheMaxBodyDecoded) {
    start_cache({"--cache-max-body", "1000", "--output", log_dir().string()});
    proxied_connection c(proxy_->host(), proxy_->port(), "https://api.openai.com",
                         proxy_ca_cert().string(), std::chrono::seconds(10));
    std::size_t expected_upstream = 0;
    for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
        const std::string plain = std::string(size - 1, 'z') + "!";
        const std::string gz = record::encode_body("gzip", plain);
        ASSERT_LT(gz.size(), 200u);
        const bool keyed = size <= 1000;
        for (int round = 0; round < 2; ++round) {
            const std::string what =
                std::to_string(size) + " bytes, round " + std::to_string(round);
            c.send(make_head("POST", c.target("/sink"), c.host_header(),
                             {{"Content-Encoding", "gzip"},
                              {"Content-Length", std::to_string(gz.size())}}) +
                   gz);
            const raw_response r = c.read_final_response();
            ASSERT_EQ(r.status, 200u) << what;
            ASSERT_TRUE(r.keep_alive()) << what;
            const auto sink = nlohmann::json::parse(r.body);
            EXPECT_EQ(sink["body_length"], gz.size()) << what;
            EXPECT_EQ(sink["body_sha256"], sha256::of(gz)) << what;
            EXPECT_EQ(r.header("X-Llm_proxy-Cache").value_or("(none)"),
                      keyed ? (round == 0 ? "MISS" : "HIT") : "SKIP")
                << what;
            if (round == 0 || !keyed) {
                ++expected_upstream;
            }
        }
    }
    EXPECT_EQ(upstream_requests(), expected_upstream);
    auto records = wait_for_records(6);
    ASSERT_EQ(records.size(), 6u);
    std::size_t skips = 0;
    for (const auto& rec : records) {
        if (rec["tags"].contains("cache_skip")) {
            ++skips;
            EXPECT_EQ(rec["tags"]["cache_skip"], "request body over --cache-max-body once decoded")
                << rec.dump(2);
        }
    }
    EXPECT_EQ(skips, 2u);
}

// A compressed response is stored decoded, bounded by --cache-max-body: gzip bodies decoding to
// 999 and 1,000 bytes are stored (the second request is a HIT, its body the same bytes), one
// decoding to 1,001 is not (the second request goes upstream again), although all three are far
// below the bound as sent.
TEST_F(Cache, CompressedResponseIsStoredUpToCacheMaxBodyDecoded) {
    for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
        const std::string name = "text" + std::to_string(size);
        work_.write_file("replay/" + name + "/meta.json",
                         R"({"status":200,"content_type":"text/plain"})");
        work_.write_file("replay/" + name + "/response.bin", std::string(size - 1, 'r') + "!");
    }
    upstream_ = std::make_unique<fake_upstream>(
        pki_, std::vector<std::string>{"--replay-dir", (work_ / "replay").string()});
    start_cache({"--cache-max-body", "1000", "--output", log_dir().string()});
    auto client = proxied_client();
    std::size_t expected_upstream = 0;
    for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
        const std::string name = "text" + std::to_string(size);
        const bool stored = size <= 1000;
        std::string first_body;
        for (int round = 0; round < 2; ++round) {
            const std::string what = name + " round " + std::to_string(round);
            auto r =
                client.get("https://api.openai.com/replay/" + name, {{"X-Fake-Replay", name},
                                                                     {"X-Fake-Replay-Gzip", "1"},
                                                                     {"Accept-Encoding", "gzip"}});
            ASSERT_EQ(r.status, 200u) << what;
            EXPECT_EQ(cache_header(r), stored && round == 1 ? "HIT" : "MISS") << what;
            const auto decoded =
                record::decode_body(r.header("Content-Encoding").value_or(""), r.body, 1 << 20);
            ASSERT_TRUE(decoded.ok) << what;
            EXPECT_EQ(decoded.data, std::string(size - 1, 'r') + "!") << what;
            if (round == 0 || !stored) {
                ++expected_upstream;
            }
        }
    }
    EXPECT_EQ(upstream_requests(), expected_upstream);
    auto records = wait_for_records(6);
    ASSERT_EQ(records.size(), 6u);
    std::size_t skips = 0;
    for (const auto& rec : records) {
        if (rec["tags"].contains("cache_skip")) {
            ++skips;
            EXPECT_EQ(rec["request"]["url"], "https://api.openai.com/replay/text1001")
                << rec.dump(2);
            EXPECT_EQ(rec["tags"]["cache_skip"], "response body over --cache-max-body once decoded")
                << rec.dump(2);
        }
    }
    EXPECT_EQ(skips, 2u);
}

TEST_F(Cache, LargeBodiesAreHashedAndStoredOffTheEventLoop) {
    start_cache();
    auto client = proxied_client();
    std::string big(300 * 1024, 'x');
    for (std::size_t i = 0; i < big.size(); i += 13) {
        big[i] = static_cast<char>('a' + i % 26);
    }
    auto first = client.post("https://api.openai.com/echo", big);
    ASSERT_EQ(first.status, 200u);
    EXPECT_EQ(cache_header(first), "MISS");
    // Asked at once, while the large answer may still be being stored: it waits for it.
    auto second = client.post("https://api.openai.com/echo", big);
    EXPECT_EQ(cache_header(second), "HIT");
    EXPECT_EQ(second.body, first.body);
    EXPECT_EQ(nlohmann::json::parse(second.body)["body"], big);
    big.back() = '!';
    EXPECT_EQ(cache_header(client.post("https://api.openai.com/echo", big)), "MISS");
    EXPECT_EQ(upstream_requests(), 2u);
}

TEST_F(Cache, OutputAlsoWritesRecordsThatSayHitOrMiss) {
    start_cache({"--output", log_dir().string()});
    ASSERT_EQ(cache_header(chat()), "MISS");
    ASSERT_EQ(cache_header(chat()), "HIT");
    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    std::multiset<std::string> verdicts;
    for (const auto& rec : records) {
        verdicts.insert(rec["tags"]["cache"].get<std::string>());
        EXPECT_EQ(rec["response"]["status"], 200);
        EXPECT_EQ(nlohmann::json::parse(rec["response"]["body"].get<std::string>())["object"],
                  "chat.completion");
    }
    EXPECT_EQ(verdicts, (std::multiset<std::string>{"HIT", "MISS"}));
}

TEST_F(Cache, UnwritableCacheDirIsAStartupError) {
    auto file = work_.write_file("plain-file", "x");
    auto args = base_args();
    std::vector<std::string> argv = {LLM_PROXY_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    for (std::string a : {"cache", "--listen", "127.0.0.1:0", "--cache-dir"}) {
        argv.push_back(a);
    }
    argv.push_back((file / "sub").string());
    auto r = run_command(argv, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find((file / "sub").string()), std::string::npos) << r.err;
}

class CacheOnRedis : public Cache {
  protected:
    redis_server redis_;
};

TEST_F(CacheOnRedis, TwoProxiesShareOneCache) {
    start_cache({"--cache-engine", "redis", "--redis-url", redis_.url()});
    auto args = base_args();
    for (std::string a : {"cache", "--cache-engine", "redis", "--redis-url"}) {
        args.push_back(a);
    }
    args.push_back(redis_.url());
    proxy_process second(args);
    auto first = chat();
    ASSERT_EQ(cache_header(first), "MISS");
    // The entry is stored after the answer went out: wait until Redis holds it.
    std::string keys;
    for (int i = 0; i < 200 && keys.find_first_of("123456789") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        keys = run_command({"redis-cli", "-p", std::to_string(redis_.port()), "dbsize"},
                           std::chrono::seconds(5))
                   .out;
    }
    ASSERT_NE(keys.find_first_of("123456789"), std::string::npos) << "dbsize: " << keys;
    auto o = second.make_client_options(proxy_ca_cert().string());
    http_client other(o);
    auto hit = other.post(chat_url, chat_body, {{"Content-Type", "application/json"}});
    EXPECT_EQ(cache_header(hit), "HIT");
    EXPECT_EQ(hit.body, first.body);
    EXPECT_EQ(upstream_requests(), 1u);
}

TEST_F(CacheOnRedis, ARedisThatDiesDegradesToPassThrough) {
    start_cache({"--cache-engine", "redis", "--redis-url", redis_.url()});
    ASSERT_EQ(cache_header(chat()), "MISS");
    ASSERT_EQ(cache_header(chat()), "HIT");
    redis_.stop();
    for (int i = 0; i < 3; ++i) {
        auto r = chat();
        EXPECT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(cache_header(r), "SKIP");
    }
    EXPECT_EQ(upstream_requests(), 4u);
    EXPECT_TRUE(
        proxy_->wait_for_stderr_line(std::regex("redis .*unreachable"), std::chrono::seconds(5)));
    // Back again: the cache works again (an empty one, as this Redis keeps nothing on disk).
    redis_.restart();
    std::string verdict;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (verdict != "HIT" && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        verdict = cache_header(chat());
    }
    EXPECT_EQ(verdict, "HIT");
}

TEST_F(Cache, UnreachableRedisIsAStartupError) {
    auto args = base_args();
    std::vector<std::string> argv = {LLM_PROXY_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    // Port 1: nothing listens there.
    for (std::string a : {"cache", "--listen", "127.0.0.1:0", "--cache-engine", "redis",
                          "--redis-url", "redis://127.0.0.1:1/0"}) {
        argv.push_back(a);
    }
    auto r = run_command(argv, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("redis://127.0.0.1:1/0"), std::string::npos) << r.err;
    // A malformed URL says so.
    argv.back() = "http://127.0.0.1:6379";
    r = run_command(argv, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("http://127.0.0.1:6379"), std::string::npos) << r.err;
}

}  // namespace llm_proxy::test

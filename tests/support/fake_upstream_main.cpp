// fake_upstream: a fake OpenAI-compatible HTTP(S) server used by the e2e tests and the benchmarks.
//
//   fake_upstream [--cert FILE --key FILE] [--plain] [--listen HOST] [--port N] [--threads N]
//
// Binds HOST:N (default 127.0.0.1, port 0 = ephemeral), prints "PORT <n>\n" to stdout, then
// serves HTTP/1.x (TLS with --cert/--key, plain otherwise) until SIGTERM/SIGINT. The request head
// is read first; /sink then streams the body, every other endpoint reads it whole (at most
// 512 MiB). Endpoints:
//   POST /v1/chat/completions   canned completion, or SSE when the JSON body has "stream": true
//                               (X-Fake-Events: N, X-Fake-Interval-Ms: M; X-Fake-Gzip: 1 plus
//                               Accept-Encoding: gzip gzips the non-stream body;
//                               X-Fake-Delay-Ms: M answers the non-stream body M ms late;
//                               X-Fake-Set-Cookie: V adds Set-Cookie: V)
//   GET  /v1/models             three models
//   ANY  /echo...               what was received: method, target, version, headers, body
//   ANY  /sink...               streams the body (any framing, any size, constant memory) and
//                               answers {"method","target","version","framing":"chunked"|
//                               "length"|"none","body_length","body_sha256","trailers":[[n,v]..],
//                               "headers":[[n,v]..]}
//   GET  /download?bytes=N[&framing=length|chunked|close][&chunked=1][&piece=K]
//                               N bytes (0 allowed) of the pattern in fake_upstream/pattern.hpp,
//                               written K bytes at a time (default 64 KiB, at most 1 MiB);
//                               chunked=1 means framing=chunked; HTTP/1.0 gets chunked as close
//   GET  /overlong              Content-Length: 5 "hello", followed in the same write by a whole
//                               second response (X-Smuggled: 1, body "smuggled") that nobody
//                               asked for: a client reusing the connection must not take it
//   GET  /status/<code>[?delay_ms=N]   that status, body {"status": code}
//   GET  /gzip                  a gzip-encoded JSON body, always
//   GET  /slow?ms=N             waits N ms before answering
//   GET  /close-delimited       body framed by closing the connection
//   GET  /sse-forever?interval_ms=N   SSE until the client goes away (or 60 s)
//   GET  /stats, POST /stats/reset    counters: requests, connections, open_connections,
//                               sse_client_gone, by_path (completed requests per path),
//                               requests_seen ("METHOD target" of every request head parsed, in
//                               order, at most 100000; /stats and /stats/reset left out),
//                               bad_requests + last_bad_request (requests that failed to parse:
//                               answered 400, connection closed), incomplete_bodies (bodies
//                               cut short by a close, reset or timeout)
//   ANY  any path, with X-Fake-Replay: CASE (needs --replay-dir DIR): the recorded response of
//                               DIR/CASE (response.bin, status and content_type from meta.json).
//                               An event stream goes out chunked, one event per chunk;
//                               X-Fake-Replay-Gzip: 1 gzips the body (Content-Encoding: gzip);
//                               X-Fake-Replay-Cut: N sends only the first N body bytes, then
//                               resets the connection (an interrupted stream)
// Every response carries X-Fake-Upstream: 1.

#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <zlib.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "fake_upstream/pattern.hpp"
#include "llm_proxy/util/text.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using json = nlohmann::json;
using llm_proxy::iequals;
using namespace std::chrono_literals;

constexpr auto tok = asio::as_tuple(asio::use_awaitable);

constexpr auto kHandshakeTimeout = 10s;
constexpr auto kIdleTimeout = 300s;
constexpr auto kIoTimeout = 120s;
constexpr auto kTlsShutdownTimeout = 500ms;
constexpr std::size_t kHeaderLimit = 64 * 1024;
constexpr std::uint64_t kBodyLimit = 512ull * 1024 * 1024;
constexpr std::size_t kPiece = 64 * 1024;
constexpr std::size_t kMaxPiece = 1024 * 1024;  // at most one pattern period
constexpr std::size_t kSinkPiece = 64 * 1024;
static_assert(kMaxPiece <= llm_proxy::test::pattern_period);
constexpr auto kSseForeverLimit = 60s;

// ---------------------------------------------------------------------------------------------
// Counters

struct counters {
    static constexpr std::size_t kMaxSeen = 100000;

    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::int64_t> open_connections{0};  // accepted and not yet finished
    std::atomic<std::uint64_t> sse_client_gone{0};
    std::atomic<std::uint64_t> bad_requests{0};
    std::atomic<std::uint64_t> incomplete_bodies{0};
    std::mutex mu;
    std::map<std::string, std::uint64_t, std::less<>> by_path;
    std::vector<std::string> requests_seen;
    std::string last_bad_request;

    void count_request(std::string_view path) {
        requests.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock(mu);
        auto it = by_path.find(path);
        if (it == by_path.end()) {
            by_path.emplace(std::string(path), 1);
        } else {
            ++it->second;
        }
    }

    // A request head was parsed: "METHOD target".
    void saw_request(std::string_view method, std::string_view target) {
        std::lock_guard lock(mu);
        if (requests_seen.size() < kMaxSeen) {
            std::string line;
            line.reserve(method.size() + 1 + target.size());
            line.append(method).append(" ").append(target);
            requests_seen.push_back(std::move(line));
        }
    }

    void bad_request(std::string_view what) {
        bad_requests.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock(mu);
        last_bad_request = std::string(what);
    }

    json to_json() {
        json j;
        j["requests"] = requests.load();
        j["connections"] = connections.load();
        j["open_connections"] = open_connections.load();
        j["sse_client_gone"] = sse_client_gone.load();
        j["bad_requests"] = bad_requests.load();
        j["incomplete_bodies"] = incomplete_bodies.load();
        json paths = json::object();
        {
            std::lock_guard lock(mu);
            for (const auto& [path, n] : by_path) {
                paths[path] = n;
            }
            j["requests_seen"] = requests_seen;
            j["last_bad_request"] = last_bad_request;
        }
        j["by_path"] = std::move(paths);
        return j;
    }

    void reset() {
        requests = 0;
        connections = 0;
        sse_client_gone = 0;
        bad_requests = 0;
        incomplete_bodies = 0;
        std::lock_guard lock(mu);
        by_path.clear();
        requests_seen.clear();
        last_bad_request.clear();
    }
};

counters g_counters;
std::atomic<std::uint64_t> g_next_id{1};

// ---------------------------------------------------------------------------------------------
// Precomputed payloads

// Two periods of the download pattern; every piece of a download is a slice of it.
const char* g_pattern_table = nullptr;
// The body of GET /gzip, already compressed.
std::string g_gzip_body;

// ---------------------------------------------------------------------------------------------
// Helpers

std::string_view to_sv(beast::string_view s) {
    return {s.data(), s.size()};
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::uint64_t now_us() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

bool icontains(std::string_view haystack, std::string_view needle) {
    if (needle.size() > haystack.size()) {
        return false;
    }
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
        if (iequals(haystack.substr(i, needle.size()), needle)) {
            return true;
        }
    }
    return false;
}

template <class T>
std::optional<T> parse_number(std::string_view s) {
    T value{};
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || ptr != s.data() + s.size() || s.empty()) {
        return std::nullopt;
    }
    return value;
}

// The value of `name` in a query string (no percent-decoding; not needed for our parameters).
std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        auto eq = pair.find('=');
        std::string_view key = pair.substr(0, eq);
        if (key == name) {
            return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        }
    }
    return std::nullopt;
}

template <class T>
T query_number(std::string_view query, std::string_view name, T fallback, T lo, T hi) {
    auto v = query_param(query, name);
    if (!v) {
        return fallback;
    }
    auto n = parse_number<T>(*v);
    if (!n) {
        return fallback;
    }
    return std::clamp(*n, lo, hi);
}

template <class T>
T header_number(const http::request<http::string_body>& req, std::string_view name, T fallback,
                T lo, T hi) {
    auto it = req.find(name);
    if (it == req.end()) {
        return fallback;
    }
    auto n = parse_number<T>(to_sv(it->value()));
    if (!n) {
        return fallback;
    }
    return std::clamp(*n, lo, hi);
}

std::string gzip_compress(std::string_view in) {
    z_stream zs{};
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        return {};
    }
    std::string out;
    out.resize(deflateBound(&zs, static_cast<uLong>(in.size())) + 64);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        return {};
    }
    return out;
}

// Appends one chunk of chunked transfer encoding holding `data` to out.
void append_chunk(std::string& out, std::string_view data) {
    char hex[20];
    auto [end, ec] = std::to_chars(hex, hex + sizeof(hex), data.size(), 16);
    (void)ec;
    out.append(hex, end);
    out.append("\r\n");
    out.append(data);
    out.append("\r\n");
}

constexpr std::string_view kLastChunk = "0\r\n\r\n";

// ---------------------------------------------------------------------------------------------
// Per-request context and response writing

using request_t = http::request<http::string_body>;
using response_t = http::response<http::string_body>;

// How a streamed body is delimited.
enum class framing { length, chunked, close };

struct request_ctx {
    explicit request_ctx(const request_t& r) : req(r) {}

    const request_t& req;
    std::string_view path;
    std::string_view query;
    bool head = false;
    unsigned version = 11;
    std::string scratch;  // reused buffer for framed pieces
};

template <class Stream>
auto& lowest(Stream& s) {
    return beast::get_lowest_layer(s);
}

template <class Stream>
asio::awaitable<bool> write_raw(Stream& s, asio::const_buffer buffer) {
    lowest(s).expires_after(kIoTimeout);
    auto [ec, n] = co_await asio::async_write(s, buffer, tok);
    co_return !ec;
}

// Writes one piece of a streamed body, framed as `f` requires, as a single write.
template <class Stream>
asio::awaitable<bool> write_piece(Stream& s, request_ctx& ctx, framing f, std::string_view data) {
    if (f != framing::chunked) {
        co_return co_await write_raw(s, asio::buffer(data.data(), data.size()));
    }
    ctx.scratch.clear();
    append_chunk(ctx.scratch, data);
    co_return co_await write_raw(s, asio::buffer(ctx.scratch));
}

template <class Stream>
asio::awaitable<bool> finish_body(Stream& s, framing f) {
    if (f != framing::chunked) {
        co_return true;
    }
    co_return co_await write_raw(s, asio::buffer(kLastChunk.data(), kLastChunk.size()));
}

response_t make_response(const request_ctx& ctx, http::status status, std::string_view type,
                         std::string body) {
    response_t res{status, ctx.version};
    res.set(http::field::content_type, type);
    res.set("X-Fake-Upstream", "1");
    res.keep_alive(ctx.req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

response_t json_response(const request_ctx& ctx, http::status status, const json& j) {
    return make_response(ctx, status, "application/json", dump(j));
}

response_t error_response(const request_ctx& ctx, http::status status, std::string_view message) {
    return json_response(ctx, status, json{{"error", {{"message", message}}}});
}

// Sends a complete response (only the header for HEAD). Returns whether the connection may be
// reused.
template <class Stream>
asio::awaitable<bool> send(Stream& s, const request_ctx& ctx, response_t& res) {
    lowest(s).expires_after(kIoTimeout);
    beast::error_code ec;
    if (ctx.head) {
        http::response_serializer<http::string_body> sr{res};
        std::tie(ec, std::ignore) = co_await http::async_write_header(s, sr, tok);
    } else {
        std::tie(ec, std::ignore) = co_await http::async_write(s, res, tok);
    }
    if (ec && ec != http::error::end_of_stream) {
        co_return false;
    }
    co_return res.keep_alive();
}

// Sends the header of a streamed response. HTTP/1.0 clients get a close-delimited body instead
// of a chunked one.
template <class Stream>
asio::awaitable<std::pair<bool, framing>> send_stream_header(Stream& s, const request_ctx& ctx,
                                                             http::response<http::empty_body>& res,
                                                             framing wanted) {
    res.version(ctx.version);
    res.set("X-Fake-Upstream", "1");
    framing f = wanted;
    if (f == framing::chunked && ctx.version < 11) {
        f = framing::close;
    }
    res.keep_alive(f != framing::close && ctx.req.keep_alive());
    if (f == framing::chunked) {
        res.chunked(true);
    }
    lowest(s).expires_after(kIoTimeout);
    http::response_serializer<http::empty_body> sr{res};
    auto [ec, n] = co_await http::async_write_header(s, sr, tok);
    co_return std::pair{!ec, f};
}

// ---------------------------------------------------------------------------------------------
// Endpoints

constexpr std::string_view kDefaultModel = "gpt-4o-mini";
constexpr std::string_view kFingerprint = "fp_fake_upstream";
constexpr std::string_view kCannedAnswer =
    "This is a canned answer from the fake upstream server. It exists so that the tests and "
    "the benchmarks have a realistic payload to relay without ever contacting a real API.";

std::string completion_id() {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "chatcmpl-fake%012llu",
                  static_cast<unsigned long long>(g_next_id.fetch_add(1)));
    return buf;
}

std::string completion_body(std::string_view model_json, std::size_t request_size) {
    const std::uint64_t prompt_tokens = request_size / 4 + 1;
    const std::uint64_t completion_tokens = 33;
    std::string out;
    out.reserve(768);
    out += R"({"id":")";
    out += completion_id();
    out += R"(","object":"chat.completion","created":)";
    out += std::to_string(std::time(nullptr));
    out += R"(,"model":)";
    out += model_json;
    out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":")";
    out += kCannedAnswer;
    out +=
        R"(","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":)";
    out += std::to_string(prompt_tokens);
    out += R"(,"completion_tokens":)";
    out += std::to_string(completion_tokens);
    out += R"(,"total_tokens":)";
    out += std::to_string(prompt_tokens + completion_tokens);
    out += R"(,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},)";
    out += R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},)";
    out += R"("service_tier":"default","system_fingerprint":")";
    out += kFingerprint;
    out += R"("})";
    return out;
}

std::string chunk_event(std::string_view id, std::string_view model_json, std::time_t created,
                        int i, bool last) {
    std::string out;
    out.reserve(320);
    out += R"(data: {"id":")";
    out += id;
    out += R"(","object":"chat.completion.chunk","created":)";
    out += std::to_string(created);
    out += R"(,"model":)";
    out += model_json;
    out += R"(,"system_fingerprint":")";
    out += kFingerprint;
    out += R"(","choices":[{"index":0,"delta":{)";
    if (i == 0) {
        out += R"("role":"assistant",)";
    }
    out += R"("content":"tok)";
    out += std::to_string(i);
    out += R"( "},"logprobs":null,"finish_reason":)";
    out += last ? R"("stop")" : "null";
    out += R"(}],"sent_at_us":)";
    out += std::to_string(now_us());
    out += R"(,"index_no":)";
    out += std::to_string(i);
    out += "}\n\n";
    return out;
}

template <class Stream>
asio::awaitable<bool> handle_chat(Stream& s, request_ctx& ctx) {
    const auto& req = ctx.req;
    if (req.method() != http::verb::post && !ctx.head) {
        auto res = error_response(ctx, http::status::method_not_allowed, "method not allowed");
        co_return co_await send(s, ctx, res);
    }
    json body = json::parse(req.body(), nullptr, false);
    if (!ctx.head && !body.is_object()) {
        auto res = error_response(ctx, http::status::bad_request, "invalid JSON body");
        co_return co_await send(s, ctx, res);
    }
    std::string model_json = "\"" + std::string(kDefaultModel) + "\"";
    bool stream = false;
    if (body.is_object()) {
        if (auto it = body.find("model"); it != body.end() && it->is_string()) {
            model_json = dump(*it);
        }
        if (auto it = body.find("stream"); it != body.end() && it->is_boolean()) {
            stream = it->get<bool>();
        }
    }

    if (!stream) {
        // X-Fake-Delay-Ms: answer late (to overlap concurrent requests).
        if (const auto delay = header_number<int>(req, "X-Fake-Delay-Ms", 0, 0, 600000);
            delay > 0) {
            asio::steady_timer timer(co_await asio::this_coro::executor);
            timer.expires_after(std::chrono::milliseconds(delay));
            co_await timer.async_wait(tok);
        }
        std::string text = completion_body(model_json, req.body().size());
        const bool gzip = req["X-Fake-Gzip"] == "1" &&
                          icontains(to_sv(req[http::field::accept_encoding]), "gzip");
        if (gzip) {
            text = gzip_compress(text);
        }
        auto res = make_response(ctx, http::status::ok, "application/json", std::move(text));
        if (gzip) {
            res.set(http::field::content_encoding, "gzip");
        }
        // X-Fake-Set-Cookie: V answers with Set-Cookie: V (a secret a cache must not keep).
        if (auto cookie = req["X-Fake-Set-Cookie"]; !cookie.empty()) {
            res.set(http::field::set_cookie, cookie);
        }
        co_return co_await send(s, ctx, res);
    }

    const int events = header_number<int>(req, "X-Fake-Events", 5, 0, 1000000);
    const int interval_ms = header_number<int>(req, "X-Fake-Interval-Ms", 20, 0, 600000);
    http::response<http::empty_body> res{http::status::ok, ctx.version};
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    auto [ok, f] = co_await send_stream_header(s, ctx, res, framing::chunked);
    if (!ok || ctx.head) {
        co_return ok&& res.keep_alive();
    }
    const std::string id = completion_id();
    const std::time_t created = std::time(nullptr);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (int i = 0; i < events; ++i) {
        if (i > 0 && interval_ms > 0) {
            timer.expires_after(std::chrono::milliseconds(interval_ms));
            co_await timer.async_wait(tok);
        }
        std::string ev = chunk_event(id, model_json, created, i, i + 1 == events);
        if (!co_await write_piece(s, ctx, f, ev)) {
            g_counters.sse_client_gone.fetch_add(1);
            co_return false;
        }
    }
    // [DONE] and the last chunk go out together.
    ctx.scratch.clear();
    constexpr std::string_view done = "data: [DONE]\n\n";
    if (f == framing::chunked) {
        append_chunk(ctx.scratch, done);
        ctx.scratch += kLastChunk;
    } else {
        ctx.scratch += done;
    }
    if (!co_await write_raw(s, asio::buffer(ctx.scratch))) {
        g_counters.sse_client_gone.fetch_add(1);
        co_return false;
    }
    co_return res.keep_alive();
}

template <class Stream>
asio::awaitable<bool> handle_models(Stream& s, request_ctx& ctx) {
    static const std::string body = dump(json{
        {"object", "list"},
        {"data", json::array({
                     {{"id", "gpt-4o-mini"},
                      {"object", "model"},
                      {"created", 1700000000},
                      {"owned_by", "system"}},
                     {{"id", "gpt-4o"},
                      {"object", "model"},
                      {"created", 1700000000},
                      {"owned_by", "system"}},
                     {{"id", "o3-mini"},
                      {"object", "model"},
                      {"created", 1700000000},
                      {"owned_by", "system"}},
                 })},
    });
    auto res = make_response(ctx, http::status::ok, "application/json", body);
    co_return co_await send(s, ctx, res);
}

template <class Stream>
asio::awaitable<bool> handle_echo(Stream& s, request_ctx& ctx) {
    const auto& req = ctx.req;
    json headers = json::array();
    for (const auto& field : req) {
        headers.push_back(json::array({to_sv(field.name_string()), to_sv(field.value())}));
    }
    json j;
    j["method"] = to_sv(req.method_string());
    j["target"] = to_sv(req.target());
    j["version"] = req.version() == 10 ? "1.0" : "1.1";
    j["headers"] = std::move(headers);
    j["body"] = req.body();
    j["body_length"] = req.body().size();
    auto res = json_response(ctx, http::status::ok, j);
    co_return co_await send(s, ctx, res);
}

template <class Stream>
asio::awaitable<bool> handle_download(Stream& s, request_ctx& ctx) {
    auto bytes_param = query_param(ctx.query, "bytes");
    std::optional<std::uint64_t> bytes;
    if (bytes_param) {
        bytes = parse_number<std::uint64_t>(*bytes_param);
    }
    if (!bytes) {
        auto res = error_response(ctx, http::status::bad_request, "bytes=N is required");
        co_return co_await send(s, ctx, res);
    }
    const std::uint64_t total = *bytes;
    framing f_wanted = framing::length;
    if (query_param(ctx.query, "chunked") == std::string_view("1")) {
        f_wanted = framing::chunked;
    }
    if (auto fp = query_param(ctx.query, "framing")) {
        if (*fp == "length") {
            f_wanted = framing::length;
        } else if (*fp == "chunked") {
            f_wanted = framing::chunked;
        } else if (*fp == "close") {
            f_wanted = framing::close;
        } else {
            auto res = error_response(ctx, http::status::bad_request,
                                      "framing must be length, chunked or close");
            co_return co_await send(s, ctx, res);
        }
    }
    const auto piece = query_number<std::size_t>(ctx.query, "piece", kPiece, 1, kMaxPiece);
    http::response<http::empty_body> res{http::status::ok, ctx.version};
    res.set(http::field::content_type, "application/octet-stream");
    if (f_wanted == framing::length) {
        res.content_length(total);
    }
    auto [ok, f] = co_await send_stream_header(s, ctx, res, f_wanted);
    if (!ok || ctx.head) {
        co_return ok&& res.keep_alive();
    }
    for (std::uint64_t offset = 0; offset < total; offset += piece) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(piece, total - offset));
        // The table holds two periods, so a piece of at most one period never runs off its end.
        const char* data = g_pattern_table + offset % llm_proxy::test::pattern_period;
        if (!co_await write_piece(s, ctx, f, std::string_view(data, n))) {
            co_return false;
        }
    }
    if (!co_await finish_body(s, f)) {
        co_return false;
    }
    co_return res.keep_alive();
}

// A 5-byte response immediately followed, in the same write, by a second complete response.
template <class Stream>
asio::awaitable<bool> handle_overlong(Stream& s, request_ctx& ctx) {
    static constexpr std::string_view bytes =
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 5\r\n"
        "X-Fake-Upstream: 1\r\n"
        "\r\n"
        "hello"
        "HTTP/1.1 200 OK\r\n"
        "Content-Length: 8\r\n"
        "X-Smuggled: 1\r\n"
        "\r\n"
        "smuggled";
    if (!co_await write_raw(s, asio::buffer(bytes.data(), bytes.size()))) {
        co_return false;
    }
    co_return ctx.req.keep_alive();
}

template <class Stream>
asio::awaitable<bool> handle_status(Stream& s, request_ctx& ctx) {
    auto code = parse_number<unsigned>(ctx.path.substr(std::string_view("/status/").size()));
    if (!code || *code < 200 || *code > 599) {
        auto res = error_response(ctx, http::status::bad_request, "status must be 200..599");
        co_return co_await send(s, ctx, res);
    }
    if (const auto ms = query_number<std::uint64_t>(ctx.query, "delay_ms", 0, 0, 600000); ms > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        timer.expires_after(std::chrono::milliseconds(ms));
        co_await timer.async_wait(tok);
    }
    response_t res{http::status::ok, ctx.version};
    res.result(*code);
    res.set(http::field::content_type, "application/json");
    res.set("X-Fake-Upstream", "1");
    res.keep_alive(ctx.req.keep_alive());
    if (*code != 204 && *code != 304) {
        res.body() = dump(json{{"status", *code}});
        res.prepare_payload();
    }
    co_return co_await send(s, ctx, res);
}

template <class Stream>
asio::awaitable<bool> handle_gzip(Stream& s, request_ctx& ctx) {
    auto res = make_response(ctx, http::status::ok, "application/json", g_gzip_body);
    res.set(http::field::content_encoding, "gzip");
    co_return co_await send(s, ctx, res);
}

template <class Stream>
asio::awaitable<bool> handle_slow(Stream& s, request_ctx& ctx) {
    const auto ms = query_number<std::uint64_t>(ctx.query, "ms", 0, 0, 600000);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(std::chrono::milliseconds(ms));
    co_await timer.async_wait(tok);
    auto res = json_response(ctx, http::status::ok, json{{"slept_ms", ms}});
    co_return co_await send(s, ctx, res);
}

template <class Stream>
asio::awaitable<bool> handle_close_delimited(Stream& s, request_ctx& ctx) {
    http::response<http::empty_body> res{http::status::ok, ctx.version};
    res.set(http::field::content_type, "text/plain");
    auto [ok, f] = co_await send_stream_header(s, ctx, res, framing::close);
    if (!ok || ctx.head) {
        co_return false;
    }
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (int i = 1; i <= 3; ++i) {
        if (i > 1) {
            timer.expires_after(50ms);
            co_await timer.async_wait(tok);
        }
        std::string piece = "close-delimited piece " + std::to_string(i) + " of 3\n";
        if (!co_await write_piece(s, ctx, f, piece)) {
            co_return false;
        }
    }
    co_return false;
}

template <class Stream>
asio::awaitable<bool> handle_sse_forever(Stream& s, request_ctx& ctx) {
    const auto interval_ms = query_number<std::uint64_t>(ctx.query, "interval_ms", 50, 1, 60000);
    http::response<http::empty_body> res{http::status::ok, ctx.version};
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    auto [ok, f] = co_await send_stream_header(s, ctx, res, framing::chunked);
    if (!ok || ctx.head) {
        co_return ok&& res.keep_alive();
    }
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + kSseForeverLimit;
    for (std::uint64_t i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
        if (i > 0) {
            timer.expires_after(std::chrono::milliseconds(interval_ms));
            co_await timer.async_wait(tok);
        }
        std::string ev = "data: {\"seq\":" + std::to_string(i) +
                         ",\"sent_at_us\":" + std::to_string(now_us()) + "}\n\n";
        if (!co_await write_piece(s, ctx, f, ev)) {
            g_counters.sse_client_gone.fetch_add(1);
            co_return false;
        }
    }
    if (!co_await finish_body(s, f)) {
        g_counters.sse_client_gone.fetch_add(1);
        co_return false;
    }
    co_return res.keep_alive();
}

template <class Stream>
asio::awaitable<bool> handle_stats(Stream& s, request_ctx& ctx) {
    auto res = json_response(ctx, http::status::ok, g_counters.to_json());
    co_return co_await send(s, ctx, res);
}

template <class Stream>
asio::awaitable<bool> handle_stats_reset(Stream& s, request_ctx& ctx) {
    g_counters.reset();
    auto res = json_response(ctx, http::status::ok, json{{"reset", true}});
    co_return co_await send(s, ctx, res);
}

// The directory of recorded responses (--replay-dir), "" when not given.
std::string g_replay_dir;

std::optional<std::string> read_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return std::nullopt;
    }
    std::string out;
    char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        out.append(buf, n);
    }
    std::fclose(f);
    return out;
}

// The events of an SSE body, each with its blank line (the rest, if any, as the last piece).
std::vector<std::string_view> sse_pieces(std::string_view body) {
    std::vector<std::string_view> out;
    std::size_t at = 0;
    while (at < body.size()) {
        std::size_t end = body.find("\n\n", at);
        std::size_t crlf = body.find("\r\n\r\n", at);
        std::size_t stop = std::string_view::npos;
        if (end != std::string_view::npos) {
            stop = end + 2;
        }
        if (crlf != std::string_view::npos && (stop == std::string_view::npos || crlf + 4 < stop)) {
            stop = crlf + 4;
        }
        if (stop == std::string_view::npos) {
            stop = body.size();
        }
        out.push_back(body.substr(at, stop - at));
        at = stop;
    }
    return out;
}

template <class Stream>
asio::awaitable<bool> handle_replay(Stream& s, request_ctx& ctx, std::string_view name) {
    bool safe =
        !name.empty() && name.find('/') == std::string_view::npos && name != "." && name != "..";
    auto dir = g_replay_dir + "/" + std::string(name);
    auto body = safe ? read_file(dir + "/response.bin") : std::nullopt;
    auto meta_text = safe ? read_file(dir + "/meta.json") : std::nullopt;
    if (g_replay_dir.empty() || !body || !meta_text) {
        auto res = error_response(ctx, http::status::not_found, "no such replay case");
        co_return co_await send(s, ctx, res);
    }
    auto meta = json::parse(*meta_text, nullptr, false);
    unsigned status = meta.is_object() ? meta.value("status", 200u) : 200u;
    std::string type = meta.is_object() ? meta.value("content_type", "application/json")
                                        : std::string("application/json");
    bool gzip = ctx.req["X-Fake-Replay-Gzip"] == "1";
    std::string data = gzip ? gzip_compress(*body) : std::move(*body);
    std::size_t cut = data.size();
    if (auto c = ctx.req["X-Fake-Replay-Cut"]; !c.empty()) {
        cut = std::min<std::size_t>(cut, std::stoul(std::string(c)));
    }
    http::response<http::empty_body> res{static_cast<http::status>(status), ctx.version};
    res.set(http::field::content_type, type);
    if (gzip) {
        res.set(http::field::content_encoding, "gzip");
    }
    bool stream = type.starts_with("text/event-stream");
    if (!stream && cut == data.size()) {
        res.content_length(data.size());
    }
    auto [ok, f] = co_await send_stream_header(
        s, ctx, res, stream || cut < data.size() ? framing::chunked : framing::length);
    if (!ok || ctx.head) {
        co_return ok&& res.keep_alive();
    }
    std::string_view sent(data.data(), cut);
    std::vector<std::string_view> pieces =
        stream && !gzip ? sse_pieces(sent) : std::vector<std::string_view>{sent};
    for (auto piece : pieces) {
        if (!piece.empty() && !co_await write_piece(s, ctx, f, piece)) {
            co_return false;
        }
    }
    if (cut < data.size()) {
        beast::error_code ec;
        lowest(s).socket().set_option(asio::socket_base::linger(true, 0), ec);
        lowest(s).socket().close(ec);  // a reset: the stream was interrupted
        co_return false;
    }
    co_return co_await finish_body(s, f) && res.keep_alive();
}

// Returns whether the connection may serve another request.
template <class Stream>
asio::awaitable<bool> handle_request(Stream& s, const request_t& req) {
    std::string_view target = to_sv(req.target());
    const auto qpos = target.find('?');
    request_ctx ctx(req);
    ctx.path = target.substr(0, qpos);
    ctx.query = qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1);
    ctx.head = req.method() == http::verb::head;
    ctx.version = req.version() == 10 ? 10 : 11;
    const auto method = req.method();
    const bool get_like = method == http::verb::get || ctx.head;
    const std::string_view path = ctx.path;

    if (path == "/stats") {
        co_return co_await handle_stats(s, ctx);
    }
    if (path == "/stats/reset") {
        if (method != http::verb::post) {
            auto res = error_response(ctx, http::status::method_not_allowed, "use POST");
            co_return co_await send(s, ctx, res);
        }
        co_return co_await handle_stats_reset(s, ctx);
    }
    g_counters.count_request(path);
    if (auto replay = req["X-Fake-Replay"]; !replay.empty()) {
        co_return co_await handle_replay(s, ctx, to_sv(replay));
    }

    if (path == "/v1/chat/completions") {
        co_return co_await handle_chat(s, ctx);
    }
    if (path.starts_with("/echo")) {
        co_return co_await handle_echo(s, ctx);
    }
    const bool known = path == "/v1/models" || path == "/download" ||
                       path.starts_with("/status/") || path == "/gzip" || path == "/slow" ||
                       path == "/close-delimited" || path == "/sse-forever" || path == "/overlong";
    if (!known) {
        auto res = error_response(ctx, http::status::not_found, "not found");
        co_return co_await send(s, ctx, res);
    }
    if (!get_like) {
        auto res = error_response(ctx, http::status::method_not_allowed, "method not allowed");
        co_return co_await send(s, ctx, res);
    }
    if (path == "/v1/models") {
        co_return co_await handle_models(s, ctx);
    }
    if (path == "/download") {
        co_return co_await handle_download(s, ctx);
    }
    if (path == "/gzip") {
        co_return co_await handle_gzip(s, ctx);
    }
    if (path == "/slow") {
        co_return co_await handle_slow(s, ctx);
    }
    if (path == "/close-delimited") {
        co_return co_await handle_close_delimited(s, ctx);
    }
    if (path == "/sse-forever") {
        co_return co_await handle_sse_forever(s, ctx);
    }
    if (path == "/overlong") {
        co_return co_await handle_overlong(s, ctx);
    }
    co_return co_await handle_status(s, ctx);
}

// ---------------------------------------------------------------------------------------------
// Connections

template <class Stream>
asio::awaitable<void> close_stream(Stream& s, bool graceful) {
    auto& tcp_layer = lowest(s);
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
        if (graceful) {
            // Sends close_notify; waits (briefly) for the peer's.
            tcp_layer.expires_after(kTlsShutdownTimeout);
            co_await s.async_shutdown(tok);
        }
    }
    beast::error_code ec;
    tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ec);
    tcp_layer.close();
}

// The request as it is read: the head first, then the body in pieces (see read_body, sink).
using head_parser_t = http::request_parser<http::buffer_body>;

// A request the server could not parse (answered 400), as opposed to a connection that ended.
bool is_parse_error(const beast::error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_method).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message &&
           ec != http::error::need_more && ec != http::error::need_buffer;
}

// Answers a request that failed to parse; the connection is closed afterwards.
template <class Stream>
asio::awaitable<void> send_bad_request(Stream& s, std::string_view what) {
    g_counters.bad_request(what);
    const std::string body =
        dump(json{{"error", {{"message", "bad request: " + std::string(what)}}}});
    std::string out =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
        "X-Fake-Upstream: 1\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    co_await write_raw(s, asio::buffer(out));
}

// How a failed body read is counted. Returns false (the connection cannot go on).
template <class Stream>
asio::awaitable<bool> body_failed(Stream& s, const beast::error_code& ec) {
    if (is_parse_error(ec)) {
        co_await send_bad_request(s, ec.message());
    } else {
        g_counters.incomplete_bodies.fetch_add(1, std::memory_order_relaxed);
    }
    co_return false;
}

// Reads the rest of a body the parser has the head of, handing each piece to on_piece.
// Returns the error that ended it early (empty when the body is complete).
template <class Stream, class OnPiece>
asio::awaitable<beast::error_code> read_body(Stream& s, beast::flat_buffer& buffer,
                                             head_parser_t& parser, OnPiece&& on_piece) {
    if (parser.is_done()) {
        co_return beast::error_code{};
    }
    std::vector<char> piece(kSinkPiece);
    auto& body = parser.get().body();
    while (!parser.is_done()) {
        body.data = piece.data();
        body.size = piece.size();
        lowest(s).expires_after(kIoTimeout);
        auto [ec, n] = co_await http::async_read_some(s, buffer, parser, tok);
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        const std::size_t got = piece.size() - body.size;
        if (got != 0 && !on_piece(std::string_view(piece.data(), got))) {
            co_return http::error::body_limit;
        }
        if (ec) {
            co_return ec;
        }
    }
    body.data = nullptr;
    body.size = 0;
    co_return beast::error_code{};
}

struct sha256_state {
    sha256_state() : ctx(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
    ~sha256_state() { EVP_MD_CTX_free(ctx); }
    sha256_state(const sha256_state&) = delete;
    sha256_state& operator=(const sha256_state&) = delete;

    void update(std::string_view data) { EVP_DigestUpdate(ctx, data.data(), data.size()); }
    std::string hex() {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_DigestFinal_ex(ctx, digest, &len);
        static constexpr char digits[] = "0123456789abcdef";
        std::string out;
        for (unsigned int i = 0; i < len; ++i) {
            out += digits[digest[i] >> 4];
            out += digits[digest[i] & 0xF];
        }
        return out;
    }

    EVP_MD_CTX* ctx;
};

// ANY /sink...: the body is streamed (constant memory, no size limit) and described.
template <class Stream>
asio::awaitable<bool> handle_sink(Stream& s, beast::flat_buffer& buffer, head_parser_t& parser) {
    auto& req = parser.get();
    json headers = json::array();
    std::size_t head_fields = 0;
    for (const auto& field : req) {
        headers.push_back(json::array({to_sv(field.name_string()), to_sv(field.value())}));
        ++head_fields;
    }
    const char* framing_name = parser.chunked()                      ? "chunked"
                               : parser.content_length().has_value() ? "length"
                                                                     : "none";
    sha256_state sha;
    std::uint64_t length = 0;
    // Named: GCC 12 mishandles lambda temporaries inside a co_await expression.
    auto hash_piece = [&](std::string_view piece) {
        sha.update(piece);
        length += piece.size();
        return true;
    };
    auto ec = co_await read_body(s, buffer, parser, hash_piece);
    if (ec) {
        co_return co_await body_failed(s, ec);
    }
    // Beast adds trailer fields to the message after the head's.
    json trailers = json::array();
    std::size_t index = 0;
    for (const auto& field : req) {
        if (index++ >= head_fields) {
            trailers.push_back(json::array({to_sv(field.name_string()), to_sv(field.value())}));
        }
    }
    const request_t meta(std::move(req.base()));
    request_ctx ctx(meta);
    std::string_view target = to_sv(meta.target());
    ctx.path = target.substr(0, target.find('?'));
    ctx.version = meta.version() == 10 ? 10 : 11;
    ctx.head = meta.method() == http::verb::head;
    g_counters.count_request(ctx.path);
    json j;
    j["method"] = to_sv(meta.method_string());
    j["target"] = target;
    j["version"] = meta.version() == 10 ? "1.0" : "1.1";
    j["framing"] = framing_name;
    j["body_length"] = length;
    j["body_sha256"] = sha.hex();
    j["trailers"] = std::move(trailers);
    j["headers"] = std::move(headers);
    auto res = json_response(ctx, http::status::ok, j);
    co_return co_await send(s, ctx, res);
}

template <class Stream>
asio::awaitable<void> serve_http(Stream& s) {
    beast::flat_buffer buffer;
    bool graceful = false;
    for (;;) {
        head_parser_t parser;
        parser.header_limit(kHeaderLimit);
        parser.body_limit(boost::none);  // /sink has none; the others check kBodyLimit below
        lowest(s).expires_after(kIdleTimeout);
        auto [ec, n] = co_await http::async_read_header(s, buffer, parser, tok);
        if (ec) {
            if (is_parse_error(ec)) {
                co_await send_bad_request(s, ec.message());
                graceful = true;
            }
            break;
        }
        auto& req = parser.get();
        const std::string_view target = to_sv(req.target());
        const std::string_view path = target.substr(0, target.find('?'));
        if (path != "/stats" && path != "/stats/reset") {
            g_counters.saw_request(to_sv(req.method_string()), target);
        }
        if (req.version() >= 11 && iequals(to_sv(req[http::field::expect]), "100-continue")) {
            http::response<http::empty_body> cont{http::status::continue_, 11};
            lowest(s).expires_after(kIoTimeout);
            auto [wec, wn] = co_await http::async_write(s, cont, tok);
            if (wec) {
                break;
            }
        }
        bool keep = false;
        if (path.starts_with("/sink")) {
            keep = co_await handle_sink(s, buffer, parser);
        } else {
            std::string body;
            auto keep_piece = [&](std::string_view piece) {
                if (body.size() + piece.size() > kBodyLimit) {
                    return false;
                }
                body.append(piece);
                return true;
            };
            auto rec = co_await read_body(s, buffer, parser, keep_piece);
            if (rec) {
                co_await body_failed(s, rec);
                graceful = is_parse_error(rec);
                break;
            }
            request_t full(std::move(req.base()));
            full.body() = std::move(body);
            keep = co_await handle_request(s, full);
        }
        if (!keep) {
            graceful = true;
            break;
        }
    }
    co_await close_stream(s, graceful);
}

asio::awaitable<void> run_connection(tcp::socket socket, ssl::context* tls) {
    if (tls == nullptr) {
        beast::tcp_stream stream(std::move(socket));
        co_await serve_http(stream);
        co_return;
    }
    ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
    stream.next_layer().expires_after(kHandshakeTimeout);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, tok);
    if (ec) {
        co_return;
    }
    co_await serve_http(stream);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, asio::io_context& ioc,
                                  ssl::context* tls) {
    for (;;) {
        tcp::socket socket(asio::make_strand(ioc));
        auto [ec] = co_await acceptor.async_accept(socket, tok);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
                co_return;
            }
            // E.g. EMFILE: back off briefly instead of spinning.
            asio::steady_timer timer(acceptor.get_executor(), 10ms);
            co_await timer.async_wait(tok);
            continue;
        }
        g_counters.connections.fetch_add(1, std::memory_order_relaxed);
        g_counters.open_connections.fetch_add(1, std::memory_order_relaxed);
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto ex = socket.get_executor();
        asio::co_spawn(ex, run_connection(std::move(socket), tls), [](std::exception_ptr) {
            g_counters.open_connections.fetch_sub(1, std::memory_order_relaxed);
        });
    }
}

// ---------------------------------------------------------------------------------------------
// TLS

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    static const unsigned char http11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
    for (unsigned int i = 0; i < inlen;) {
        const unsigned int len = in[i];
        if (i + 1 + len > inlen) {
            break;
        }
        if (len == sizeof(http11) && std::memcmp(in + i + 1, http11, len) == 0) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;  // no ALPN: HTTP/1.1 is implied
}

std::unique_ptr<ssl::context> make_tls_context(const std::string& cert, const std::string& key) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->use_certificate_chain_file(cert);
    ctx->use_private_key_file(key, ssl::context::pem);
    SSL_CTX_set_alpn_select_cb(ctx->native_handle(), select_alpn, nullptr);
    return ctx;
}

// ---------------------------------------------------------------------------------------------
// main

struct options {
    std::string cert;
    std::string key;
    bool plain = false;
    std::string listen = "127.0.0.1";
    unsigned short port = 0;
    unsigned threads = 2;
    std::string replay_dir;
};

[[noreturn]] void usage(const char* argv0, const std::string& error) {
    if (!error.empty()) {
        std::fprintf(stderr, "fake_upstream: %s\n", error.c_str());
    }
    std::fprintf(stderr,
                 "usage: %s [--cert FILE --key FILE] [--plain] [--listen HOST] [--port N] "
                 "[--threads N] [--replay-dir DIR]\n",
                 argv0);
    std::exit(2);
}

options parse_args(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage(argv[0], std::string(arg) + " needs a value");
            }
            return argv[++i];
        };
        if (arg == "--cert") {
            opt.cert = value();
        } else if (arg == "--key") {
            opt.key = value();
        } else if (arg == "--plain") {
            opt.plain = true;
        } else if (arg == "--replay-dir") {
            opt.replay_dir = value();
        } else if (arg == "--listen") {
            opt.listen = value();
        } else if (arg == "--port") {
            auto v = value();
            auto n = parse_number<unsigned short>(v);
            if (!n) {
                usage(argv[0], "bad --port: " + v);
            }
            opt.port = *n;
        } else if (arg == "--threads") {
            auto v = value();
            auto n = parse_number<unsigned>(v);
            if (!n || *n == 0 || *n > 1024) {
                usage(argv[0], "bad --threads: " + v);
            }
            opt.threads = *n;
        } else if (arg == "--help" || arg == "-h") {
            usage(argv[0], "");
        } else {
            usage(argv[0], "unknown argument: " + std::string(arg));
        }
    }
    if (opt.cert.empty() != opt.key.empty()) {
        usage(argv[0], "--cert and --key go together");
    }
    if (opt.plain && !opt.cert.empty()) {
        usage(argv[0], "--plain and --cert/--key are exclusive");
    }
    if (opt.cert.empty()) {
        opt.plain = true;
    }
    return opt;
}

void prepare_payloads() {
    static std::vector<char> table(2 * llm_proxy::test::pattern_period);
    llm_proxy::test::fill_pattern(table.data(), table.size(), 0);
    g_pattern_table = table.data();

    std::string text;
    while (text.size() < 2048) {
        text += "The quick brown fox jumps over the lazy dog. ";
    }
    g_gzip_body = gzip_compress(dump(json{{"gzipped", true}, {"text", text}}));
}

int run(const options& opt) {
    std::unique_ptr<ssl::context> tls;
    if (!opt.plain) {
        tls = make_tls_context(opt.cert, opt.key);
    }
    prepare_payloads();

    asio::io_context ioc(static_cast<int>(opt.threads));

    beast::error_code ec;
    tcp::endpoint endpoint;
    auto address = asio::ip::make_address(opt.listen, ec);
    if (!ec) {
        endpoint = tcp::endpoint(address, opt.port);
    } else {
        tcp::resolver resolver(ioc);
        auto results = resolver.resolve(opt.listen, std::to_string(opt.port));
        endpoint = results.begin()->endpoint();
    }
    tcp::acceptor acceptor(ioc);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);

    std::printf("PORT %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
    std::fflush(stdout);

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const beast::error_code&, int) { ioc.stop(); });

    asio::co_spawn(ioc, accept_loop(acceptor, ioc, tls.get()), [](std::exception_ptr) {});

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < opt.threads; ++i) {
        threads.emplace_back([&ioc] { ioc.run(); });
    }
    ioc.run();
    for (auto& t : threads) {
        t.join();
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    const options opt = parse_args(argc, argv);
    g_replay_dir = opt.replay_dir;
    try {
        return run(opt);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fake_upstream: %s\n", e.what());
        return 1;
    }
}

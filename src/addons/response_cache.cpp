#include "llm_proxy/addons/response_cache.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <functional>

#include "llm_proxy/cache/await_store.hpp"
#include "llm_proxy/cache/entry.hpp"
#include "llm_proxy/cache/http_rules.hpp"
#include "llm_proxy/record/body_decoder.hpp"

namespace llm_proxy::addons {

namespace {

// Why a decoded body is not used (the skip reason): decoding failed, or the decoded body
// passed --cache-max-body.
std::string_view decode_problem(bool request, const record::decoded_body& decoded) {
    if (decoded.ok) {
        return request ? "request body over --cache-max-body once decoded"
                       : "response body over --cache-max-body once decoded";
    }
    return request ? "request body cannot be decoded" : "response body cannot be decoded";
}

// Bodies this large are hashed, decoded and encoded on the cache's work thread rather than
// on the event loop (SHA-256 or gzip of 64 MiB takes a noticeable fraction of a second).
constexpr std::size_t off_loop_bytes = 64 * 1024;

// Runs fn on `pool` and resumes the calling coroutine on its own executor with the result.
template <class R>
boost::asio::awaitable<R> run_on(boost::asio::thread_pool& pool, std::function<R()> fn) {
    namespace asio = boost::asio;
    return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
        [&pool, fn = std::move(fn)](auto handler) mutable {
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            asio::post(pool, [h, fn = std::move(fn)]() mutable {
                R result = fn();
                auto ex = asio::get_associated_executor(*h);
                asio::post(ex,
                           [h, r = std::move(result)]() mutable { std::move (*h)(std::move(r)); });
            });
        },
        asio::use_awaitable);
}

}  // namespace

struct response_cache::flow_state {
    std::string key;
    bool may_store = false;  // the request allows storing the answer
    std::unique_ptr<cache::lead> leader;
};

response_cache::response_cache(std::shared_ptr<cache::store> store, response_cache_options options)
    : store_(std::move(store)),
      options_(std::move(options)),
      inflight_(std::make_shared<cache::inflight_table>(options_.max_coalesce_wait)) {}

void response_cache::skip(flow& f, std::string reason) {
    spdlog::debug("flow {}: cache skip: {}", f.id, reason);
    f.tags["cache"] = "SKIP";
    f.tags["cache_skip"] = std::move(reason);
}

std::size_t response_cache::request_buffer_limit(const flow& f) const {
    // Requests the cache passes by stream straight through.
    bool cacheable = cache::cacheable_method(f.request.method) &&
                     !cache::parse_request_directives(f.request.headers).no_store;
    return cacheable ? options_.max_body : 0;
}

std::size_t response_cache::response_capture_limit(const flow& f) const {
    auto* st = state_.find(f);
    return st && st->may_store && !f.answered_locally ? options_.max_body : 0;
}

boost::asio::awaitable<void> response_cache::on_request(flow& f) {
    if (!cache::cacheable_method(f.request.method)) {
        skip(f, "method " + f.request.method + " is not cached");
        co_return;
    }
    auto directives = cache::parse_request_directives(f.request.headers);
    if (directives.no_store) {
        skip(f, "request says no-store");
        co_return;
    }
    if (f.request_body.truncated) {
        skip(f, "request body over --cache-max-body");
        co_return;
    }
    std::vector<std::pair<std::string, std::optional<std::string>>> key_headers;
    for (const auto& name : options_.key_headers) {
        auto v = find_header(f.request.headers, name);
        key_headers.emplace_back(name, v ? std::optional<std::string>(*v) : std::nullopt);
    }
    auto ce = find_header(f.request.headers, "Content-Encoding");
    // nullopt: the body cannot be decoded, or decodes past the bound (`problem` says which).
    std::string_view problem;
    std::function<std::optional<std::string>()> compute_key =
        [&f, &key_headers, &problem, encoding = std::string(ce.value_or("")),
         max_body = options_.max_body]() -> std::optional<std::string> {
        std::string_view body = f.request_body.data;
        record::decoded_body decoded;
        if (!encoding.empty() && !body.empty()) {
            decoded = record::decode_body(encoding, body, max_body);
            if (!decoded.ok || decoded.truncated) {
                problem = decode_problem(true, decoded);
                return std::nullopt;
            }
            body = decoded.data;
        }
        return cache::make_key(f.request.method, f.request.url(), body, key_headers);
    };
    std::optional<std::string> key;
    if (f.request_body.data.size() < off_loop_bytes) {
        key = compute_key();
    } else {
        // Named, not a temporary: GCC 12 mishandles those inside co_await.
        std::function<std::optional<std::string>()> counted = [this, &compute_key] {
            note_off_loop_work();
            return compute_key();
        };
        key = co_await run_on(work_, std::move(counted));
    }
    if (!key) {
        skip(f, std::string(problem));
        co_return;
    }
    auto* state = &state_.emplace(f);
    state->key = std::move(*key);

    auto joined = co_await inflight_->join(state->key);
    if (directives.no_cache) {
        // A fresh answer, stored for the next request. Leading makes an identical request
        // that comes meanwhile (or right after the answer) wait until it is stored.
        state->leader = std::move(joined.leader);
        state->may_store = true;
        co_return;
    }
    if (!joined.leader) {
        if (joined.answer) {
            co_await answer_from(f, joined.answer, true);
            co_return;
        }
        // The flow we waited for got nothing storable: go upstream on our own.
        state->may_store = true;
        co_return;
    }
    state->leader = std::move(joined.leader);
    auto found = co_await cache::get(*store_, state->key);
    if (found.state == cache::get_result::status::unavailable) {
        state->leader->publish(nullptr);
        skip(f, "store unavailable: " + found.error);
        co_return;
    }
    if (found.state == cache::get_result::status::hit) {
        if (auto e = cache::deserialize(found.value)) {
            auto shared = std::make_shared<const cache::entry>(std::move(*e));
            state->leader->publish(shared);
            co_await answer_from(f, shared, false);
            co_return;
        }
        spdlog::warn("cache entry {} is unreadable; asking the upstream again", state->key);
    }
    state->may_store = true;
}

boost::asio::awaitable<void> response_cache::answer_from(flow& f,
                                                         std::shared_ptr<const cache::entry> entry,
                                                         bool coalesced) {
    const cache::entry& e = *entry;
    response_head head{e.status, e.reason, 11, e.headers};
    bool head_request = f.request.method == "HEAD";
    bool encoded = false;
    auto codings = cache::content_codings(e.content_encoding);
    if (!codings.empty()) {
        auto accept = find_header(f.request.headers, "Accept-Encoding");
        const std::string_view* ae = accept ? &*accept : nullptr;
        encoded = std::all_of(codings.begin(), codings.end(),
                              [&](const auto& c) { return cache::accepts_encoding(ae, c); });
    }
    std::string body;
    if (encoded && !head_request) {
        std::function<std::string()> encode = [entry, codings] {
            std::string out = entry->body;
            for (const auto& c : codings) {
                out = record::encode_body(c, out);
            }
            return out;
        };
        if (e.body.size() < off_loop_bytes) {
            body = encode();
        } else {
            std::function<std::string()> counted = [this, &encode] {
                note_off_loop_work();
                return encode();
            };
            body = co_await run_on(work_, std::move(counted));
        }
    } else {
        body = e.body;
    }
    if (encoded) {
        head.headers.emplace_back("Content-Encoding", e.content_encoding);
    }
    if (head_request && e.head_content_length && !encoded) {
        head.headers.emplace_back("Content-Length", std::to_string(*e.head_content_length));
    }
    head.headers.emplace_back(std::string(header_name), "HIT");
    std::vector<std::size_t> pieces;
    if (e.streamed) {
        if (!encoded && is_event_stream(e.headers)) {
            pieces = cache::sse_event_ends(body);
        }
        pieces.push_back(body.size());
    }
    f.reply(std::move(head), std::move(body), std::move(pieces));
    f.tags["cache"] = "HIT";
    if (coalesced) {
        f.tags["cache_coalesced"] = "true";
    }
}

boost::asio::awaitable<void> response_cache::on_response_headers(flow& f) {
    if (!f.response || f.answered_locally) {
        co_return;
    }
    if (auto* st = state_.find(f); st && st->may_store) {
        unsigned status = f.response->status;
        std::uint64_t length = f.response->content_length.value_or(0);
        if (status < 200 || status > 299) {
            st->may_store = false;
            skip(f, "status " + std::to_string(status));
        } else if (cache::response_forbids_storing(f.response->headers)) {
            st->may_store = false;
            skip(f, "response says no-store");
        } else if (f.request.method != "HEAD" && length > options_.max_body) {
            st->may_store = false;
            skip(f, "response body over --cache-max-body");
        } else {
            f.tags["cache"] = "MISS";
        }
    }
    if (auto tag = f.tags.find("cache"); tag != f.tags.end()) {
        f.response->headers.emplace_back(std::string(header_name), tag->second);
    }
}

void response_cache::on_response_end(flow& f) {
    auto* st = state_.find(f);
    if (!st || f.answered_locally) {
        return;
    }
    if (!st->may_store || !f.response) {
        if (st->leader) {
            st->leader->publish(nullptr);
        }
        return;
    }
    auto& captured = f.response_body;
    if (captured.truncated || captured.total > options_.max_body) {
        skip(f, "response body over --cache-max-body");
        st->leader.reset();
        return;
    }
    cache::entry e;
    e.status = f.response->status;
    e.reason = f.response->reason;
    auto ce = find_header(f.response->headers, "Content-Encoding");
    e.content_encoding = ce ? std::string(*ce) : std::string();
    e.streamed = !f.response->content_length;
    if (f.request.method == "HEAD") {
        e.head_content_length = f.response->content_length;
    }
    for (const auto& [hname, value] : f.response->headers) {
        bool dropped = iequals(hname, "Content-Length") || iequals(hname, "Transfer-Encoding") ||
                       iequals(hname, "Content-Encoding") || istarts_with(hname, "X-Llm_proxy");
        for (const auto& filtered : options_.filter_response_headers) {
            dropped = dropped || iequals(hname, filtered);
        }
        if (!dropped) {
            e.headers.emplace_back(hname, value);
        }
    }
    e.created_ms = cache::unix_ms_now();
    if (captured.data.size() < off_loop_bytes) {
        if (auto why = store_entry(std::move(e), captured.data, st->key, std::move(st->leader))) {
            skip(f, std::string(*why));
        }
        return;
    }
    // A large body is decoded and stored off the event loop; the record is written meanwhile.
    // The bodies waiting for that thread are bounded: past the bound, a response is not stored.
    std::size_t bytes = captured.data.size();
    std::size_t queued = queued_store_bytes_.fetch_add(bytes);
    if (queued > 0 && queued + bytes > max_queued_store_bytes) {
        queued_store_bytes_.fetch_sub(bytes);
        skip(f, "the cache's store queue is full");
        st->leader.reset();  // its waiters go to the upstream themselves
        return;
    }
    boost::asio::post(work_, [this, e = std::move(e), raw = captured.data, key = st->key,
                              leader = std::move(st->leader), bytes]() mutable {
        note_off_loop_work();
        if (auto why = store_entry(std::move(e), raw, key, std::move(leader))) {
            spdlog::warn("cache: response for {} not stored: {}", key, *why);
        }
        queued_store_bytes_.fetch_sub(bytes);
    });
}

std::optional<std::string_view> response_cache::store_entry(cache::entry e, std::string_view raw,
                                                            const std::string& key,
                                                            std::unique_ptr<cache::lead> leader) {
    if (!raw.empty()) {
        auto decoded = record::decode_body(e.content_encoding, raw, options_.max_body);
        if (!decoded.ok || decoded.truncated) {
            // Destroying the lead releases the waiters.
            return decode_problem(false, decoded);
        }
        e.body = std::move(decoded.data);
    }
    store_->put(key, cache::serialize(e), e.created_ms);
    spdlog::debug("cached {} ({} body bytes)", key, e.body.size());
    if (leader) {
        leader->publish(std::make_shared<const cache::entry>(std::move(e)));
    }
    return std::nullopt;
}

void response_cache::on_error(flow& f) {
    if (auto* st = state_.find(f); st && st->leader) {
        st->leader->publish(nullptr);
    }
}

void response_cache::note_off_loop_work() {
    work_thread_.store(std::this_thread::get_id());
    off_loop_work_.fetch_add(1);
}

void response_cache::close() {
    work_.join();  // stores still queued there reach the store before it closes
    inflight_->close();
    store_->close();
}

}  // namespace llm_proxy::addons

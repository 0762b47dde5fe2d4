#include "llm_proxy/metrics/registry.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <tuple>
#include <unordered_map>

#include "llm_proxy/flow_error.hpp"
#include "llm_proxy/llm/call.hpp"
#include "llm_proxy/llm/money.hpp"
#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/metrics/text_format.hpp"

namespace llm_proxy::metrics {

// --- label_values

label_values::label_values(std::size_t limit)
    : limit_(limit), slots_(std::make_unique<slot[]>(limit)) {}

std::uint32_t label_values::id(std::string_view value) {
    const std::size_t hash = std::hash<std::string_view>{}(value);
    std::size_t n = published_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
        if (slots_[i].hash == hash && slots_[i].value == value) {
            return static_cast<std::uint32_t>(i);
        }
    }
    if (n >= limit_) {
        return other_id();
    }
    std::lock_guard lock(add_mutex_);
    // Another thread may have added values (this one among them) since the scan.
    std::size_t now = published_.load(std::memory_order_relaxed);
    for (std::size_t i = n; i < now; ++i) {
        if (slots_[i].hash == hash && slots_[i].value == value) {
            return static_cast<std::uint32_t>(i);
        }
    }
    if (now >= limit_) {
        return other_id();
    }
    slots_[now].hash = hash;
    slots_[now].value = std::string(value);
    published_.store(now + 1, std::memory_order_release);
    return static_cast<std::uint32_t>(now);
}

std::string_view label_values::name(std::uint32_t id) const {
    if (id >= size()) {
        return "other";
    }
    return slots_[id].value;
}

// --- what a shard counts

namespace {

constexpr std::array<std::string_view, 8> methods = {"GET",   "HEAD",   "POST",    "PUT",
                                                     "PATCH", "DELETE", "OPTIONS", "CONNECT"};
constexpr std::uint32_t method_other = methods.size();

std::uint32_t method_index(std::string_view method) {
    for (std::uint32_t i = 0; i < methods.size(); ++i) {
        if (methods[i] == method) {
            return i;
        }
    }
    return method_other;
}

std::string_view method_name(std::uint32_t i) {
    return i < methods.size() ? methods[i] : std::string_view("other");
}

constexpr std::uint32_t status_none = 0;
constexpr std::uint32_t status_other = 1000;

// The status the client got: the response's, the refusal's, or the one the engine answers
// the error with; none when the client got no answer (it went away, or broke off its body).
std::uint32_t status_of(const flow& f) {
    unsigned s = 0;
    if (f.response) {
        s = f.response->status;
    } else if (f.rejected) {
        s = f.rejected->status;
    } else {
        switch (f.error_kind) {
            case flow_error::bad_request:
                s = 400;
                break;
            case flow_error::dns:
            case flow_error::connect:
            case flow_error::tls:
            case flow_error::tls_verification:
            case flow_error::upstream_reset:
            case flow_error::bad_upstream_response:
            case flow_error::upstream_proxy:
                s = 502;
                break;
            case flow_error::dns_timeout:
            case flow_error::connect_timeout:
            case flow_error::tls_timeout:
            case flow_error::upstream_timeout:
                s = 504;
                break;
            case flow_error::addon_error:
                s = 500;
                break;
            case flow_error::proxy_auth_required:
                s = 407;
                break;
            case flow_error::request_timeout:
                s = 408;
                break;
            case flow_error::request_header_fields_too_large:
                s = 431;
                break;
            case flow_error::not_implemented:
                s = 501;
                break;
            case flow_error::not_found:
                s = 404;
                break;
            case flow_error::none:
            case flow_error::client_aborted:
            case flow_error::client_disconnected:
                s = 0;
                break;
        }
    }
    if (s == 0) {
        return status_none;
    }
    return s >= 100 && s <= 599 ? s : status_other;
}

std::string status_name(std::uint32_t s) {
    if (s == status_none) {
        return "none";
    }
    if (s == status_other) {
        return "other";
    }
    return std::to_string(s);
}

constexpr std::size_t max_error_kinds = 32;

struct histogram_counts {
    std::array<std::uint64_t, latency_buckets.size() + 1> counts{};
    double sum = 0;

    void observe(double seconds) {
        auto it = std::lower_bound(latency_buckets.begin(), latency_buckets.end(), seconds);
        ++counts[static_cast<std::size_t>(it - latency_buckets.begin())];
        sum += seconds;
    }
    void add(const histogram_counts& o) {
        for (std::size_t i = 0; i < counts.size(); ++i) {
            counts[i] += o.counts[i];
        }
        sum += o.sum;
    }
    histogram_snapshot snapshot() const {
        return {latency_buckets, std::vector<std::uint64_t>(counts.begin(), counts.end()), sum};
    }
};

struct byte_counts {
    std::uint64_t request = 0;
    std::uint64_t response = 0;
};

constexpr std::array<std::string_view, 4> token_types = {"input", "cached", "output", "reasoning"};

struct llm_tally {
    std::uint64_t requests = 0;
    std::array<std::uint64_t, token_types.size()> tokens{};
    llm::money::rep cost = 0;   // units of 10^-24 USD
    llm::money::rep saved = 0;  // cache hits: what the calls would have cost
};

constexpr std::array<std::string_view, 3> cache_outcomes = {"hit", "miss", "skip"};

std::uint64_t request_key(std::uint32_t host, std::uint32_t method, std::uint32_t status) {
    return (static_cast<std::uint64_t>(host) << 32) | (static_cast<std::uint64_t>(method) << 16) |
           status;
}

std::uint64_t llm_key(std::uint32_t provider, std::uint32_t model) {
    return (static_cast<std::uint64_t>(provider) << 32) | model;
}

double seconds_of(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

}  // namespace

struct registry::shard {
    std::mutex mutex;  // this shard's thread and the scrape only
    std::unordered_map<std::uint64_t, std::uint64_t> requests;
    std::unordered_map<std::uint32_t, byte_counts> bytes;  // by host
    std::array<std::uint64_t, max_error_kinds> errors{};
    std::array<std::uint64_t, cache_outcomes.size()> cache{};
    histogram_counts duration;
    histogram_counts first_byte;
    histogram_counts first_token;
    std::unordered_map<std::uint64_t, llm_tally> llm;
};

// --- registry

namespace {
std::atomic<std::uint64_t> next_registry_id{1};
}

registry::registry(registry_options options)
    : options_(options),
      id_(next_registry_id.fetch_add(1)),
      hosts_(options.max_hosts),
      models_(options.max_models) {}

registry::~registry() = default;

registry::shard& registry::local_shard() {
    struct entry {
        std::uint64_t registry;
        shard* s;
    };
    // Keyed by the registry's id, never reused, so an entry of a destroyed registry is never
    // taken for a new one at the same address.
    thread_local std::vector<entry> cache;
    for (const auto& e : cache) {
        if (e.registry == id_) {
            return *e.s;
        }
    }
    shard* s = nullptr;
    {
        std::lock_guard lock(shards_mutex_);
        shards_.push_back(std::make_unique<shard>());
        s = shards_.back().get();
    }
    if (cache.size() >= 8) {
        cache.erase(cache.begin());
    }
    cache.push_back({id_, s});
    return *s;
}

std::size_t registry::shard_count() const {
    std::lock_guard lock(shards_mutex_);
    return shards_.size();
}

void registry::add_callback(std::string name, std::string type, std::string help,
                            std::function<double()> read) {
    callbacks_.push_back({std::move(name), std::move(type), std::move(help), std::move(read)});
}

void registry::observe(const flow& f) {
    if (f.tunnel) {
        return;
    }
    // Everything that needs no shard first: the lock is held for the additions only.
    const std::uint32_t host = hosts_.id(f.request.host.empty() ? "none" : f.request.host);
    const std::uint64_t key = request_key(host, method_index(f.request.method), status_of(f));
    const auto error = static_cast<std::size_t>(f.error_kind);
    int cache_outcome = -1;
    if (auto tag = f.tags.find("cache"); tag != f.tags.end()) {
        if (tag->second == "HIT") {
            cache_outcome = 0;
        } else if (tag->second == "MISS") {
            cache_outcome = 1;
        } else if (tag->second == "SKIP") {
            cache_outcome = 2;
        }
    }
    const llm::summary* s = f.llm.get();
    std::uint64_t llm_at = 0;
    if (s) {
        const auto& model = llm::billed_model(s->call);
        llm_at = llm_key(static_cast<std::uint32_t>(s->call.provider),
                         models_.id(model.empty() ? "unknown" : model));
    }

    shard& sh = local_shard();
    std::lock_guard lock(sh.mutex);
    ++sh.requests[key];
    auto& b = sh.bytes[host];
    b.request += f.request_bytes;
    b.response += f.response_bytes;
    if (f.error_kind != flow_error::none && error < max_error_kinds) {
        ++sh.errors[error];
    }
    if (cache_outcome >= 0) {
        ++sh.cache[static_cast<std::size_t>(cache_outcome)];
    }
    sh.duration.observe(seconds_of(f.duration));
    if (f.time_to_first_byte) {
        sh.first_byte.observe(seconds_of(*f.time_to_first_byte));
    }
    if (s) {
        auto& t = sh.llm[llm_at];
        ++t.requests;
        const auto& u = s->call.usage;
        t.tokens[0] += u.input_tokens.value_or(0);
        t.tokens[1] += u.cache_read_tokens.value_or(0);
        t.tokens[2] += u.output_tokens.value_or(0);
        t.tokens[3] += u.reasoning_tokens.value_or(0);
        if (s->cost_usd) {
            t.cost += s->cost_usd->total.units();
        }
        if (s->saved_usd) {
            t.saved += s->saved_usd->units();
        }
        if (s->first_token_ms) {
            sh.first_token.observe(*s->first_token_ms / 1000.0);
        }
    }
}

std::string registry::render() const {
    // Sum the shards, each under its own lock in turn.
    std::unordered_map<std::uint64_t, std::uint64_t> requests;
    std::unordered_map<std::uint32_t, byte_counts> bytes;
    std::array<std::uint64_t, max_error_kinds> errors{};
    std::array<std::uint64_t, cache_outcomes.size()> cache{};
    histogram_counts duration;
    histogram_counts first_byte;
    histogram_counts first_token;
    std::unordered_map<std::uint64_t, llm_tally> llm_totals;
    {
        std::lock_guard list_lock(shards_mutex_);
        for (const auto& sh : shards_) {
            std::lock_guard lock(sh->mutex);
            for (const auto& [k, n] : sh->requests) {
                requests[k] += n;
            }
            for (const auto& [h, c] : sh->bytes) {
                auto& b = bytes[h];
                b.request += c.request;
                b.response += c.response;
            }
            for (std::size_t i = 0; i < errors.size(); ++i) {
                errors[i] += sh->errors[i];
            }
            for (std::size_t i = 0; i < cache.size(); ++i) {
                cache[i] += sh->cache[i];
            }
            duration.add(sh->duration);
            first_byte.add(sh->first_byte);
            first_token.add(sh->first_token);
            for (const auto& [k, t] : sh->llm) {
                auto& sum = llm_totals[k];
                sum.requests += t.requests;
                for (std::size_t i = 0; i < sum.tokens.size(); ++i) {
                    sum.tokens[i] += t.tokens[i];
                }
                sum.cost += t.cost;
                sum.saved += t.saved;
            }
        }
    }

    text_writer w;

    // Requests, sorted by their labels so scrapes are stable.
    {
        std::vector<std::tuple<std::string, std::string, std::string, std::uint64_t>> rows;
        for (const auto& [k, n] : requests) {
            rows.emplace_back(
                std::string(hosts_.name(static_cast<std::uint32_t>(k >> 32))),
                std::string(method_name(static_cast<std::uint32_t>(k >> 16) & 0xffff)),
                status_name(static_cast<std::uint32_t>(k & 0xffff)), n);
        }
        std::sort(rows.begin(), rows.end());
        w.family("llm_proxy_requests_total", "counter",
                 "Requests by host, method and the status the client got (none: no answer)");
        for (const auto& [h, m, st, n] : rows) {
            w.sample("llm_proxy_requests_total", {{"host", h}, {"method", m}, {"status", st}},
                     static_cast<double>(n));
        }
    }
    w.family("llm_proxy_request_errors_total", "counter",
             "Failed requests by error kind (the records' error.kind)");
    for (std::size_t i = 1; i < errors.size(); ++i) {
        auto kind = to_string(static_cast<flow_error>(i));
        if (kind.empty() || kind == "unknown") {
            break;  // past the last kind
        }
        w.sample("llm_proxy_request_errors_total", {{"kind", kind}},
                 static_cast<double>(errors[i]));
    }

    w.family("llm_proxy_request_duration_seconds", "histogram",
             "Time from the request head to the end of the response (or the failure)");
    w.histogram("llm_proxy_request_duration_seconds", {}, duration.snapshot());
    w.family("llm_proxy_time_to_first_byte_seconds", "histogram",
             "Time from the request head to the response head (from the upstream or a local "
             "answer such as a cache hit)");
    w.histogram("llm_proxy_time_to_first_byte_seconds", {}, first_byte.snapshot());

    {
        std::map<std::string, byte_counts> by_host;
        for (const auto& [h, c] : bytes) {
            auto& b = by_host[std::string(hosts_.name(h))];
            b.request += c.request;
            b.response += c.response;
        }
        w.family("llm_proxy_request_bytes_total", "counter",
                 "Request body bytes received from clients, by host");
        for (const auto& [h, b] : by_host) {
            w.sample("llm_proxy_request_bytes_total", {{"host", h}},
                     static_cast<double>(b.request));
        }
        w.family("llm_proxy_response_bytes_total", "counter",
                 "Response body bytes sent to clients, by host");
        for (const auto& [h, b] : by_host) {
            w.sample("llm_proxy_response_bytes_total", {{"host", h}},
                     static_cast<double>(b.response));
        }
    }

    w.family("llm_proxy_cache_requests_total", "counter",
             "Requests the response cache answered (hit), forwarded and may store (miss) or "
             "left alone (skip)");
    for (std::size_t i = 0; i < cache.size(); ++i) {
        w.sample("llm_proxy_cache_requests_total", {{"outcome", cache_outcomes[i]}},
                 static_cast<double>(cache[i]));
    }

    {
        struct llm_row {
            std::string provider;
            std::string model;
            llm_tally t;
        };
        std::vector<llm_row> rows;
        for (const auto& [k, t] : llm_totals) {
            rows.push_back({llm::to_string(static_cast<llm::provider>(k >> 32)),
                            std::string(models_.name(static_cast<std::uint32_t>(k & 0xffffffff))),
                            t});
        }
        std::sort(rows.begin(), rows.end(), [](const llm_row& a, const llm_row& b) {
            return std::tie(a.provider, a.model) < std::tie(b.provider, b.model);
        });
        w.family("llm_proxy_llm_requests_total", "counter",
                 "LLM API calls by provider and model (the model billed: the response's, else "
                 "the request's)");
        for (const auto& r : rows) {
            w.sample("llm_proxy_llm_requests_total", {{"provider", r.provider}, {"model", r.model}},
                     static_cast<double>(r.t.requests));
        }
        w.family("llm_proxy_llm_tokens_total", "counter",
                 "LLM tokens the providers reported, by provider, model and type: input (all "
                 "input, cached included), cached (input read from the provider's cache), "
                 "output (all output, reasoning included), reasoning");
        for (const auto& r : rows) {
            for (std::size_t i = 0; i < token_types.size(); ++i) {
                w.sample("llm_proxy_llm_tokens_total",
                         {{"provider", r.provider}, {"model", r.model}, {"type", token_types[i]}},
                         static_cast<double>(r.t.tokens[i]));
            }
        }
        w.family("llm_proxy_llm_cost_usd_total", "counter",
                 "Cost of the LLM calls in US dollars by provider and model (calls with no known "
                 "price add nothing; cache hits cost nothing)");
        for (const auto& r : rows) {
            w.sample("llm_proxy_llm_cost_usd_total", {{"provider", r.provider}, {"model", r.model}},
                     llm::money::from_units(r.t.cost).to_double());
        }
        w.family("llm_proxy_llm_cost_saved_usd_total", "counter",
                 "What the calls answered from the response cache would have cost, in US "
                 "dollars");
        for (const auto& r : rows) {
            w.sample("llm_proxy_llm_cost_saved_usd_total",
                     {{"provider", r.provider}, {"model", r.model}},
                     llm::money::from_units(r.t.saved).to_double());
        }
    }
    w.family("llm_proxy_time_to_first_token_seconds", "histogram",
             "LLM calls: time from the request head to the first output token");
    w.histogram("llm_proxy_time_to_first_token_seconds", {}, first_token.snapshot());

    for (const auto& c : callbacks_) {
        w.family(c.name, c.type, c.help);
        w.sample(c.name, std::span<const label>{}, c.read());
    }
    return w.take();
}

std::string_view method_class(std::string_view method) {
    return method_name(method_index(method));
}

}  // namespace llm_proxy::metrics

#include "llm_proxy/web/flow_store.hpp"

#include <algorithm>
#include <utility>

#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/util/ids.hpp"

namespace llm_proxy::web {

namespace {

void fill_request(flow_entry& e, const flow& f) {
    e.id = f.id;
    e.time = f.started_at;
    e.method = f.request.method;
    e.host = f.request.authority();
    e.path = f.request.target;
    if (f.tunnel) {
        e.method = "CONNECT";
        e.path.clear();
    }
}

// What a finished flow adds to its entry.
void fill_outcome(flow_entry& e, const flow& f) {
    e.status = f.response ? f.response->status : f.rejected ? f.rejected->status : 0;
    e.done = true;
    e.error_kind =
        f.error_kind == flow_error::none ? std::string() : std::string(to_string(f.error_kind));
    e.duration_ms = f.duration_ms();
    e.ttft_ms.reset();
    if (f.time_to_first_byte) {
        e.ttft_ms = std::chrono::duration<double, std::milli>(*f.time_to_first_byte).count();
    }
    e.model.clear();
    e.input_tokens.reset();
    e.output_tokens.reset();
    e.cost_usd.reset();
    if (f.llm) {
        const auto& s = *f.llm;
        e.model = llm::billed_model(s.call);
        e.input_tokens = s.call.usage.input_tokens;
        e.output_tokens = s.call.usage.output_tokens;
        if (s.cost_usd) {
            e.cost_usd = s.cost_usd->total.to_double();
        }
        if (s.first_token_ms) {
            e.ttft_ms = s.first_token_ms;
        }
    }
}

// Moves the outcome fields of `from` (filled by fill_outcome) into `to`.
void take_outcome(flow_entry& to, flow_entry& from) {
    to.status = from.status;
    to.done = from.done;
    to.error_kind.swap(from.error_kind);
    to.duration_ms = from.duration_ms;
    to.ttft_ms = from.ttft_ms;
    to.model.swap(from.model);
    to.input_tokens = from.input_tokens;
    to.output_tokens = from.output_tokens;
    to.cost_usd = from.cost_usd;
}

std::size_t body_bytes(const flow_entry& e) {
    return e.live ? e.live->request_body.data.size() + e.live->response_body.data.size() : 0;
}

template <class T>
nlohmann::json or_null(const std::optional<T>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json summary_json(const flow_entry& e) {
    nlohmann::json j;
    j["id"] = e.id;
    j["time"] = format_timestamp(e.time);
    j["method"] = e.method;
    j["host"] = e.host;
    j["path"] = e.path;
    j["status"] = e.status;
    j["state"] = !e.done ? "in_flight" : e.error_kind.empty() ? "done" : "error";
    j["error"] = e.error_kind;
    j["duration_ms"] = or_null(e.duration_ms);
    j["ttft_ms"] = or_null(e.ttft_ms);
    j["model"] = e.model;
    j["input_tokens"] = or_null(e.input_tokens);
    j["output_tokens"] = or_null(e.output_tokens);
    j["cost_usd"] = or_null(e.cost_usd);
    return j;
}

flow_store::flow_store(std::size_t capacity, std::size_t body_budget)
    : capacity_(capacity == 0 ? 1 : capacity), body_budget_(body_budget) {}

const flow_entry* flow_store::lookup(std::string_view id) const {
    for (std::size_t i = ring_.size(); i-- > 0;) {
        const auto& e = ring_[(count_ - ring_.size() + i) % capacity_];
        if (e.id == id) {
            return &e;
        }
    }
    return nullptr;
}

flow_entry* flow_store::lookup(std::string_view id) {
    return const_cast<flow_entry*>(std::as_const(*this).lookup(id));
}

flow_entry& flow_store::next_slot(released& out) {
    if (ring_.size() < capacity_) {
        ++count_;
        return ring_.emplace_back();
    }
    auto& e = ring_[count_++ % capacity_];  // the oldest
    body_bytes_ -= body_bytes(e);
    if (e.live) {
        out.flows.push_back(std::move(e.live));
    }
    out.timeline = std::move(e.timeline);
    e.live.reset();
    e.timeline.reset();
    e.disk.reset();
    return e;
}

void flow_store::set_live(flow_entry& e, std::shared_ptr<const flow> f, released& out) {
    body_bytes_ -= body_bytes(e);
    if (e.live) {
        out.flows.push_back(std::move(e.live));
    }
    e.live = std::move(f);
    body_bytes_ += body_bytes(e);
    if (e.live) {
        // The entry's number, from its place in the ring.
        std::uint64_t first = count_ - ring_.size();
        std::uint64_t n = first + (static_cast<std::uint64_t>(&e - ring_.data()) + capacity_ -
                                   first % capacity_) %
                                      capacity_;
        oldest_live_ = std::min(oldest_live_, n);
    }
}

void flow_store::keep_budget(released& out) {
    oldest_live_ = std::max(oldest_live_, count_ - ring_.size());
    for (; body_bytes_ > body_budget_ && oldest_live_ < count_; ++oldest_live_) {
        auto& e = ring_[oldest_live_ % capacity_];
        if (e.live) {
            body_bytes_ -= body_bytes(e);
            out.flows.push_back(std::move(e.live));
            e.live.reset();
        }
    }
}

void flow_store::started(const flow& f) {
    flow_entry fresh;
    fill_request(fresh, f);  // outside the lock
    released out;            // destroyed after the lock is released
    std::lock_guard lock(mutex_);
    auto& e = next_slot(out);
    e.id.swap(fresh.id);
    e.time = fresh.time;
    e.method.swap(fresh.method);
    e.host.swap(fresh.host);
    e.path.swap(fresh.path);
    e.status = 0;
    e.done = false;
    e.error_kind.clear();
    e.duration_ms.reset();
    e.ttft_ms.reset();
    e.model.clear();
    e.input_tokens.reset();
    e.output_tokens.reset();
    e.cost_usd.reset();
    e.version = ++version_;
}

void flow_store::response_started(const flow& f) {
    if (!f.response) {
        return;
    }
    std::lock_guard lock(mutex_);
    if (auto* e = lookup(f.id); e && !e->done) {
        e->status = f.response->status;
        e->version = ++version_;
    }
}

void flow_store::finished(const std::shared_ptr<const flow>& f) {
    flow_entry outcome;
    fill_outcome(outcome, *f);  // outside the lock
    released out;
    std::lock_guard lock(mutex_);
    auto* e = lookup(f->id);
    if (!e) {
        e = &next_slot(out);
        fill_request(*e, *f);
    }
    take_outcome(*e, outcome);
    e->version = ++version_;
    set_live(*e, f, out);
    keep_budget(out);
}

void flow_store::set_timeline(const std::string& id, std::shared_ptr<const stream_timeline> t) {
    std::lock_guard lock(mutex_);
    if (auto* e = lookup(id)) {
        e->timeline.swap(t);
    }
}

void flow_store::add(flow_entry e) {
    released out;
    std::lock_guard lock(mutex_);
    auto live = std::move(e.live);
    auto& slot = next_slot(out);
    slot = std::move(e);
    slot.version = ++version_;
    set_live(slot, std::move(live), out);
    keep_budget(out);
}

std::vector<flow_entry> flow_store::changed_since(std::uint64_t version, std::uint64_t& now) const {
    std::vector<flow_entry> out;
    std::lock_guard lock(mutex_);
    now = version_;
    if (version >= version_) {
        return out;
    }
    for (std::uint64_t n = count_ - ring_.size(); n < count_; ++n) {
        const auto& e = ring_[n % capacity_];
        if (e.version > version) {
            out.push_back(e);
        }
    }
    return out;
}

std::optional<flow_entry> flow_store::find(const std::string& id) const {
    std::lock_guard lock(mutex_);
    const auto* e = lookup(id);
    return e ? std::optional<flow_entry>(*e) : std::nullopt;
}

std::size_t flow_store::size() const {
    std::lock_guard lock(mutex_);
    return ring_.size();
}

}  // namespace llm_proxy::web

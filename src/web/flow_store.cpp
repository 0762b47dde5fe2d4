#include "llm_proxy/web/flow_store.hpp"

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

flow_entry entry_of(const flow& f) {
    flow_entry e;
    fill_request(e, f);
    if (f.tunnel) {
        e.method = "CONNECT";
        e.path.clear();
    }
    e.status = f.response ? f.response->status : f.rejected ? f.rejected->status : 0;
    e.done = true;
    e.error_kind =
        f.error_kind == flow_error::none ? std::string() : std::string(to_string(f.error_kind));
    e.duration_ms = f.duration_ms();
    if (f.time_to_first_byte) {
        e.ttft_ms = std::chrono::duration<double, std::milli>(*f.time_to_first_byte).count();
    }
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
    return e;
}

flow_store::flow_store(std::size_t capacity, std::size_t body_budget)
    : capacity_(capacity == 0 ? 1 : capacity), body_budget_(body_budget) {}

flow_entry* flow_store::lookup(const std::string& id) {
    auto s = slots_.find(id);
    if (s == slots_.end()) {
        return nullptr;
    }
    auto it = entries_.find(s->second);
    return it == entries_.end() ? nullptr : &it->second;
}

flow_entry& flow_store::insert(flow_entry e) {
    auto slot = next_slot_++;
    slots_[e.id] = slot;
    body_bytes_ += body_bytes(e);
    auto& stored = entries_.emplace(slot, std::move(e)).first->second;
    return stored;
}

void flow_store::trim() {
    while (entries_.size() > capacity_) {
        auto it = entries_.begin();
        body_bytes_ -= body_bytes(it->second);
        if (auto s = slots_.find(it->second.id); s != slots_.end() && s->second == it->first) {
            slots_.erase(s);
        }
        entries_.erase(it);
    }
    // Over the budget, the oldest flows give up their detail (their summary stays).
    for (auto it = entries_.begin(); body_bytes_ > body_budget_ && it != entries_.end(); ++it) {
        body_bytes_ -= body_bytes(it->second);
        it->second.live.reset();
    }
}

void flow_store::started(const flow& f) {
    std::lock_guard lock(mutex_);
    if (lookup(f.id)) {
        return;
    }
    flow_entry e;
    fill_request(e, f);
    e.version = ++version_;
    insert(std::move(e));
    trim();
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
    auto e = entry_of(*f);  // outside the lock
    e.live = f;
    std::lock_guard lock(mutex_);
    e.version = ++version_;
    if (auto* old = lookup(f->id)) {
        body_bytes_ -= body_bytes(*old);
        body_bytes_ += body_bytes(e);
        e.timeline = std::move(old->timeline);
        *old = std::move(e);
    } else {
        insert(std::move(e));
    }
    trim();
}

void flow_store::set_timeline(const std::string& id, std::shared_ptr<const stream_timeline> t) {
    std::lock_guard lock(mutex_);
    if (auto* e = lookup(id)) {
        e->timeline = std::move(t);
    }
}

void flow_store::add(flow_entry e) {
    std::lock_guard lock(mutex_);
    e.version = ++version_;
    if (auto* old = lookup(e.id)) {
        body_bytes_ -= body_bytes(*old);
        body_bytes_ += body_bytes(e);
        *old = std::move(e);
    } else {
        insert(std::move(e));
    }
    trim();
}

std::vector<flow_entry> flow_store::changed_since(std::uint64_t version, std::uint64_t& now) const {
    std::vector<flow_entry> out;
    std::lock_guard lock(mutex_);
    now = version_;
    if (version >= version_) {
        return out;
    }
    for (const auto& [slot, e] : entries_) {
        if (e.version > version) {
            out.push_back(e);
        }
    }
    return out;
}

std::optional<flow_entry> flow_store::find(const std::string& id) const {
    std::lock_guard lock(mutex_);
    auto s = slots_.find(id);
    if (s == slots_.end()) {
        return std::nullopt;
    }
    auto it = entries_.find(s->second);
    return it == entries_.end() ? std::nullopt : std::optional<flow_entry>(it->second);
}

std::size_t flow_store::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace llm_proxy::web

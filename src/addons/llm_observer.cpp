#include "llm_proxy/addons/llm_observer.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/record/stream_decoder.hpp"
#include "usage_chunk_filter.hpp"

namespace llm_proxy::addons {

struct llm_observer::state {
    explicit state(llm::endpoint e) : endpoint(std::move(e)) {}
    llm::endpoint endpoint;
    llm::request_facts request;
    std::optional<llm::response_parser> parser;
    std::unique_ptr<record::stream_decoder> decoder;  // a compressed body's
    std::size_t decoded = 0;
    bool decoded_too_much = false;
    bool fed_by_filter = false;  // the usage-chunk filter feeds the parser
    bool injected = false;
    std::optional<double> first_token_ms;
};

namespace {

constexpr std::size_t inject_buffer = 8u << 20;

bool has_output(const llm::call& c) {
    for (const auto& a : c.answers) {
        if ((a.content && !a.content->empty()) || (a.refusal && !a.refusal->empty()) ||
            (a.reasoning && !a.reasoning->empty()) || !a.tool_calls.empty()) {
            return true;
        }
    }
    return false;
}

bool is_identity(std::string_view coding) {
    return coding.empty() || iequals(coding, "identity");
}

}  // namespace

std::optional<std::string> with_usage_requested(std::string_view body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object() || !j.value("stream", false)) {
        return std::nullopt;
    }
    auto so = j.find("stream_options");
    if (so != j.end() && so->is_object() && so->value("include_usage", false)) {
        return std::nullopt;
    }
    if (so == j.end()) {
        // Only the new member is inserted: every byte the client wrote stays as it was.
        auto open = body.find('{');
        std::string out(body.substr(0, open + 1));
        out += R"("stream_options":{"include_usage":true},)";
        out.append(body.substr(open + 1));
        return out;
    }
    if (!so->is_object()) {
        return std::nullopt;
    }
    (*so)["include_usage"] = true;
    return j.dump();
}

llm_observer::llm_observer(llm_observer_options options) : options_(std::move(options)) {}

const llm::endpoint* llm_observer::endpoint_of(const flow& f) const {
    auto* st = slot_.find(f);
    return st != nullptr ? &st->endpoint : nullptr;
}

std::size_t llm_observer::request_buffer_limit(const flow& f) const {
    auto* st = slot_.find(f);
    bool chat = st != nullptr && st->endpoint.provider == llm::provider::openai &&
                st->endpoint.api == llm::api::chat_completions;
    return options_.inject_usage && chat ? inject_buffer : 0;
}

void llm_observer::on_request_headers(flow& f) {
    if (auto e = llm::recognise(f.request.authority(), f.request.target, f.request.method,
                                options_.hosts)) {
        slot_.emplace(f, std::move(*e));
    }
}

boost::asio::awaitable<void> llm_observer::on_request(flow& f) {
    auto* st = slot_.find(f);
    if (st == nullptr || request_buffer_limit(f) == 0 || f.request_body.truncated ||
        !is_identity(find_header(f.request.headers, "Content-Encoding").value_or(""))) {
        co_return;
    }
    if (auto changed = with_usage_requested(f.request_body.data)) {
        f.replace_request_body(std::move(*changed), name());
        st->injected = true;
    }
}

boost::asio::awaitable<void> llm_observer::on_response_headers(flow& f) {
    auto* st = slot_.find(f);
    if (st == nullptr || !f.response) {
        co_return;
    }
    // What the upstream got (a replaced body is in request_body by now).
    st->request = llm::read_request(st->endpoint, f.request_body.data);
    st->parser.emplace(st->endpoint, st->request);
    auto coding = find_header(f.response->headers, "Content-Encoding").value_or("");
    if (!is_identity(coding)) {
        std::string error;
        st->decoder = record::stream_decoder::make(coding, error);
        if (!st->decoder) {
            st->parser.reset();  // a coding we cannot undo: no facts
        }
        co_return;
    }
    if (st->injected && is_event_stream(f.response->headers) && !f.answered_locally) {
        st->fed_by_filter = true;
        f.transform_response_body(
            std::make_shared<usage_chunk_filter>(
                [this, &f, st](std::string_view event) { feed(f, *st, event); }),
            name());
    }
}

void llm_observer::feed(flow& f, state& st, std::string_view decoded) {
    st.parser->feed(decoded);
    if (!st.first_token_ms && has_output(st.parser->result())) {
        st.first_token_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - f.started)
                .count();
    }
}

void llm_observer::on_response_body(flow& f, std::string_view chunk) {
    auto* st = slot_.find(f);
    if (st == nullptr || !st->parser || st->fed_by_filter) {
        return;
    }
    if (!st->decoder) {
        feed(f, *st, chunk);
        return;
    }
    struct to_parser final : record::stream_decoder::sink {
        to_parser(llm_observer& o, flow& f, state& st) : o(o), f(f), st(st) {}
        bool write(std::string_view decoded) override {
            st.decoded += decoded.size();
            if (st.decoded > o.options_.max_decoded_body) {
                st.decoded_too_much = true;
                return false;
            }
            o.feed(f, st, decoded);
            return true;
        }
        llm_observer& o;
        flow& f;
        state& st;
    } sink(*this, f, *st);
    st->decoder->feed(chunk, sink);
}

void llm_observer::on_response_end(flow& f) {
    finish(f, true);
}

void llm_observer::on_error(flow& f) {
    finish(f, false);
}

void llm_observer::finish(flow& f, bool complete) {
    auto* st = slot_.find(f);
    if (st == nullptr || !st->parser) {
        return;
    }
    if (st->decoder) {
        complete = complete && st->decoder->complete() && !st->decoded_too_much;
    }
    st->parser->finish(complete);
    llm::call c = st->parser->take();
    if (!st->first_token_ms && has_output(c)) {
        // A whole (non-streamed or compressed) answer is known when its body has passed.
        st->first_token_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - f.started)
                .count();
    }
    auto cache = f.tags.find("cache");
    bool hit = cache != f.tags.end() && cache->second == "HIT";
    auto s = llm::summarize(std::move(c), options_.prices.get(), f.started_at, hit);
    s.first_token_ms = st->first_token_ms;
    s.usage_injected = st->injected;
    if (!s.cost_usd && options_.prices && !s.call.usage.empty()) {
        warn_unpriced(llm::billed_model(s.call));
    }
    f.llm = std::make_shared<const llm::summary>(std::move(s));
    st->parser.reset();
}

void llm_observer::warn_unpriced(const std::string& model) {
    std::lock_guard lock(warned_mutex_);
    // Clients choose model names: the names remembered (to warn once each) are bounded.
    constexpr std::size_t max_warned = 1000;
    if (warned_.size() == max_warned) {
        return;
    }
    if (warned_.insert(model).second) {
        spdlog::warn(
            "no price is known for model '{}': its calls are recorded with cost null{}", model,
            warned_.size() == max_warned ? " (further unpriced models are not named)" : "");
    }
}

}  // namespace llm_proxy::addons

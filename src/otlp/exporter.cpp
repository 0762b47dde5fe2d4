// The OTLP exporter thread: queue -> batches -> POST, with the spool for what the collector
// did not take.
#include "llm_proxy/otlp/exporter.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

#include <pthread.h>

#include "llm_proxy/otlp/spool.hpp"
#include "llm_proxy/record/body_decoder.hpp"
#include "llm_proxy/tls/contexts.hpp"
#include "llm_proxy/util/text.hpp"
#include "sender.hpp"

namespace llm_proxy::otlp {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

struct exporter::state {
    explicit state(const exporter_options& o) : options(o), wake(ioc) {}
    const exporter_options& options;
    target where;
    asio::io_context ioc;
    asio::steady_timer wake;

    std::mutex mutex;
    span_queue queue;
    std::uint64_t content_bytes = 0;  // flow_footprint of the queue's flows
    bool stopping = false;
    bool woken = false;
    bool warned_content = false;

    std::atomic<std::uint64_t> exported{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> failed{0};
    std::atomic<std::uint64_t> queued{0};
    std::atomic<std::uint64_t> without_content{0};
    std::atomic<std::uint64_t> spooled_spans{0};
    std::atomic<std::uint64_t> spooled_bytes{0};
};

namespace {

class sender_loop {
  public:
    explicit sender_loop(exporter::state& s)
        : s_(s), spool_(s.options.spool_dir, s.options.spool_bytes) {
        if (!spool_.problem.empty()) {
            spdlog::warn("otlp: {}", spool_.problem);
            spool_.problem.clear();
        }
        if (!spool_.empty()) {
            spdlog::info("otlp: {} spans from an earlier run wait in {}; sending them first",
                         spool_.spans(), spool_.directory().string());
        }
        if (s.where.scheme == "https") {
            tls_ = tls::make_upstream_context(false, s.options.extra_ca);
        }
        link_ = std::make_unique<connection>(s.where, tls_.get());
        post_.headers = s.options.headers;
        post_.timeout = s.options.timeout;
        publish();
    }

    asio::awaitable<void> run() {
        std::optional<clock::time_point> stop_deadline;
        // Spans of an earlier run go first; otherwise the first batch is due after a delay.
        bool wait_first = spool_.empty();
        for (;;) {
            if (wait_first) {
                co_await wait_for_work();
            }
            wait_first = true;
            bool stopping = false;
            {
                std::lock_guard lock(s_.mutex);
                taken_.swap(s_.queue);  // the workers get back the emptied buffers
                s_.content_bytes = 0;
                stopping = s_.stopping;
                s_.woken = false;
            }
            const auto taken = taken_.size();
            if (stopping && !stop_deadline) {
                stop_deadline = clock::now() + s_.options.shutdown_timeout;
                post_.timeout = std::min(s_.options.timeout, s_.options.shutdown_timeout);
            }
            s_.queued.fetch_sub(taken);
            try {
                co_await send_new();
                co_await drain(stop_deadline);
            } catch (const std::exception& e) {
                // Out of memory, a file system error...: this round's spans are lost, the
                // exporter goes on.
                spdlog::error("otlp: {} spans lost: {}", taken, e.what());
                s_.dropped.fetch_add(taken);
            }
            taken_.clear();
            if (taken_.captures.capacity() > max_kept_buffer) {
                std::string().swap(taken_.captures);  // after a burst of long spans
            }
            if (rendered_.capacity() > max_kept_buffer) {
                std::string().swap(rendered_);
            }
            if (batch_.body.capacity() > max_kept_buffer) {
                std::string().swap(batch_.body);
            }
            publish();
            if (stopping) {
                break;
            }
        }
        if (!spool_.empty()) {
            if (spool_.on_disk()) {
                spdlog::warn(
                    "otlp: {} spans the collector has not taken yet are kept in {} for "
                    "the next run",
                    spool_.spans(), spool_.directory().string());
            } else {
                spdlog::warn(
                    "otlp: {} spans the collector has not taken are lost (no spool "
                    "directory)",
                    spool_.spans());
                s_.dropped.fetch_add(spool_.spans());
            }
        }
        publish();
    }

  private:
    bool collector_ready() const { return clock::now() >= retry_at_; }

    // Until the batch delay passed, a batch is full, the proxy stops, or a spooled batch is
    // due again. A wake-up that came while the loop was busy (close(), a full batch) is seen
    // here through the flags, not lost.
    asio::awaitable<void> wait_for_work() {
        {
            std::lock_guard lock(s_.mutex);
            if (s_.stopping || s_.queue.size() >= s_.options.max_batch) {
                co_return;
            }
        }
        auto wait = std::chrono::duration_cast<clock::duration>(s_.options.batch_delay);
        if (!spool_.empty()) {
            wait = std::min(wait, std::max(clock::duration::zero(), retry_at_ - clock::now()));
        }
        s_.wake.expires_after(wait);
        boost::system::error_code ec;
        co_await s_.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }

    // New spans: straight to the collector when it is up and nothing older waits; else to the
    // end of the spool.
    asio::awaitable<void> send_new() {
        const auto max = std::max<std::size_t>(1, s_.options.max_batch);
        const auto& q = taken_;
        for (std::size_t i = 0, n = 0; i < q.size(); i += n) {
            n = std::min(max, q.size() - i);
            if (i < q.ends.size()) {
                n = std::min(n, q.ends.size() - i);  // a batch of texts, or of flows
            }
            const bool protobuf = s_.options.protobuf;
            spool::batch& b = batch_;  // its body's buffer kept from one batch to the next
            std::string rendered;
            std::string_view spans;  // the spans, joined
            if (i < q.ends.size()) {
                rendered_.clear();
                for (std::size_t j = i; j < i + n; ++j) {
                    const auto start = j == 0 ? 0 : q.ends[j - 1];
                    auto capture = std::string_view(q.captures).substr(start, q.ends[j] - start);
                    if (!protobuf && j != i) {
                        rendered_ += ',';
                    }
                    rendered_ += render_captured_span(capture, s_.options.spans, protobuf);
                }
                spans = rendered_;
            } else {
                for (std::size_t j = i - q.ends.size(); j < i - q.ends.size() + n; ++j) {
                    if (protobuf) {
                        append_span_protobuf(rendered, *q.flows[j], s_.options.spans);
                        continue;
                    }
                    if (!rendered.empty()) {
                        rendered += ',';
                    }
                    append_span(rendered, *q.flows[j], s_.options.spans);
                }
                spans = rendered;
            }
            b.spans = n;
            b.protobuf = protobuf;
            b.gzip = false;
            write_export_request(b.body, s_.options.resource, spans, protobuf);
            if (s_.options.gzip) {
                b.body = record::encode_body("gzip", b.body);
                b.gzip = true;
            }
            if (spool_.empty() && collector_ready()) {
                auto r = co_await send(b);
                if (handle(r, b.spans)) {
                    continue;
                }
                if (!r.retryable) {
                    continue;  // dropped and counted by handle()
                }
            }
            keep(b);
        }
    }

    // The spool, oldest first, while the collector takes batches.
    asio::awaitable<void> drain(std::optional<clock::time_point> deadline) {
        while (!spool_.empty() && collector_ready() && (!deadline || clock::now() < *deadline)) {
            auto b = spool_.front();
            report_spool_problem();
            if (!b) {
                break;
            }
            auto r = co_await send(*b);
            if (handle(r, b->spans)) {
                spool_.pop();
            } else if (!r.retryable) {
                spool_.pop();  // dropped and counted by handle()
            } else {
                break;
            }
            publish();
        }
    }

    // POSTs a batch with the headers of its encoding (a spooled batch keeps the encoding it
    // was made with, whatever this run's settings).
    asio::awaitable<post_result> send(const spool::batch& b) {
        post_.content_type = b.protobuf ? "application/x-protobuf" : "application/json";
        post_.content_encoding = b.gzip ? "gzip" : "";
        co_return co_await link_->post(b.body, post_);
    }

    void keep(const spool::batch& b) {
        if (!spool_.push(b)) {
            report_spool_problem();
        }
        publish();
    }

    void report_spool_problem() {
        if (!spool_.problem.empty()) {
            spdlog::warn("otlp: {}", spool_.problem);
            spool_.problem.clear();
        }
    }

    // True when the collector took the batch. A retryable failure sets the backoff; any other
    // drops the batch's spans.
    bool handle(const post_result& r, std::size_t spans) {
        if (r.ok) {
            s_.exported.fetch_add(spans);
            if (down_) {
                spdlog::info("otlp: the collector at {} takes spans again", s_.options.url);
                down_ = false;
            }
            backoff_ = clock::duration::zero();
            return true;
        }
        s_.failed.fetch_add(1);
        if (!r.retryable) {
            s_.dropped.fetch_add(spans);
            spdlog::warn("otlp: the collector at {} refused {} spans ({}); they are dropped",
                         s_.options.url, spans, r.error);
            return false;
        }
        auto min = std::chrono::duration_cast<clock::duration>(s_.options.min_backoff);
        auto max = std::chrono::duration_cast<clock::duration>(s_.options.max_backoff);
        backoff_ = backoff_ == clock::duration::zero() ? min : std::min(backoff_ * 2, max);
        auto wait = backoff_;
        if (r.retry_after) {
            wait = std::max(wait, std::chrono::duration_cast<clock::duration>(*r.retry_after));
        }
        retry_at_ = clock::now() + wait;
        if (!down_) {
            spdlog::warn(
                "otlp: the collector at {} did not take spans ({}); keeping them and "
                "trying again with backoff",
                s_.options.url, r.error);
            down_ = true;
        }
        return false;
    }

    void publish() {
        s_.spooled_spans.store(spool_.spans());
        s_.spooled_bytes.store(spool_.bytes());
        auto lost = spool_.dropped_spans();
        s_.dropped.fetch_add(lost - spool_dropped_seen_);
        spool_dropped_seen_ = lost;
    }

    // The texts buffer kept for the next round is let go past this size.
    static constexpr std::size_t max_kept_buffer = 4u << 20;

    exporter::state& s_;
    span_queue taken_;      // this round's spans; its buffers go back to the workers next round
    spool::batch batch_;    // the batch being sent
    std::string rendered_;  // its spans, rendered and joined
    spool spool_;
    std::unique_ptr<asio::ssl::context> tls_;
    std::unique_ptr<connection> link_;  // kept alive from one batch to the next
    post_options post_;
    clock::time_point retry_at_{};
    clock::duration backoff_{};
    bool down_ = false;
    std::uint64_t spool_dropped_seen_ = 0;
};

}  // namespace

exporter::exporter(exporter_options options)
    : options_(std::move(options)), state_(std::make_shared<state>(options_)) {
    auto t = parse_target(options_.url);
    if (!t) {
        throw std::invalid_argument("the OTLP endpoint '" + options_.url +
                                    "' is not an http:// or https:// URL");
    }
    state_->where = *t;
    auto s = state_;
    thread_ = std::thread([s] {
        // Named so that `top -H` and the benchmarks can tell its CPU from the workers'.
        pthread_setname_np(pthread_self(), "llm_proxy-otlp");
        try {
            sender_loop loop(*s);
            asio::co_spawn(s->ioc, loop.run(), asio::detached);
            s->ioc.run();
        } catch (const std::exception& e) {
            spdlog::error("otlp: the exporter stopped: {}", e.what());
        }
    });
}

exporter::~exporter() {
    close();
}

void exporter::push(std::shared_ptr<const flow> f) {
    // A span without message content is captured here: the few hundred bytes of the flow it
    // needs, packed into the queue's buffer (handed back and forth with the exporter thread, so
    // no allocation per span), and the flow is freed at once by the thread that allocated it.
    // The exporter thread renders the batch's spans together. With content the span decodes
    // and parses the request body: the flow itself is queued.
    const bool content = options_.spans.content;
    bool wake = false;
    bool warn = false;
    {
        std::lock_guard lock(state_->mutex);
        auto& q = state_->queue;
        if (state_->stopping || q.size() >= options_.max_queue) {
            state_->dropped.fetch_add(1);
            return;
        }
        bool whole = content;
        if (content) {
            // Flows with content hold their bodies until the exporter thread takes them: past
            // max_content_bytes of them a span goes without its content.
            const auto bytes = flow_footprint(*f);
            if (q.flows.empty() || state_->content_bytes + bytes <= options_.max_content_bytes) {
                state_->content_bytes += bytes;
            } else {
                whole = false;
                state_->without_content.fetch_add(1);
                warn = !std::exchange(state_->warned_content, true);
            }
        }
        if (whole) {
            q.flows.push_back(std::move(f));
        } else {
            capture_span(q.captures, *f);
            q.ends.push_back(q.captures.size());
        }
        // Counted under the lock, so the exporter thread never takes a span before its count.
        state_->queued.fetch_add(1);
        if (q.size() >= options_.max_batch && !state_->woken) {
            state_->woken = wake = true;
        }
    }
    if (warn) {
        spdlog::warn(
            "otlp: more than {:.1f} MiB of flows with message content wait for the exporter; "
            "their spans go without the content until it catches up (counted in "
            "llm_proxy_otlp_spans_without_content_total)",
            static_cast<double>(options_.max_content_bytes) / (1 << 20));
    }
    if (wake) {
        auto s = state_;
        asio::post(s->ioc, [s] { s->wake.cancel(); });
    }
}

void exporter::close() {
    if (!thread_.joinable()) {
        return;
    }
    {
        std::lock_guard lock(state_->mutex);
        state_->stopping = true;
    }
    auto s = state_;
    asio::post(s->ioc, [s] { s->wake.cancel(); });
    thread_.join();
}

exporter_stats exporter::stats() const {
    exporter_stats st;
    st.exported_spans = state_->exported.load();
    st.dropped_spans = state_->dropped.load();
    st.failed_exports = state_->failed.load();
    st.queued_spans = state_->queued.load();
    st.spans_without_content = state_->without_content.load();
    st.spooled_spans = state_->spooled_spans.load();
    st.spooled_bytes = state_->spooled_bytes.load();
    return st;
}

bool is_http_url(const std::string& url) {
    return parse_target(url).has_value();
}

std::string traces_url(std::string_view endpoint) {
    std::string url(endpoint);
    auto q = url.find_first_of("?#");
    std::string rest = q == std::string::npos ? "" : url.substr(q);
    std::string base = url.substr(0, q);
    constexpr std::string_view suffix = "/v1/traces";
    if (base.size() >= suffix.size() && base.compare(base.size() - suffix.size(), suffix.size(),
                                                     suffix.data(), suffix.size()) == 0) {
        return url;
    }
    while (!base.empty() && base.back() == '/') {
        base.pop_back();
    }
    return base + std::string(suffix) + rest;
}

std::vector<std::pair<std::string, std::string>> parse_headers(std::string_view text) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!text.empty()) {
        auto comma = text.find(',');
        auto item = trim_space(text.substr(0, comma));
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        if (item.empty()) {
            continue;
        }
        auto eq = item.find('=');
        auto key =
            eq == std::string_view::npos ? std::string_view{} : trim_space(item.substr(0, eq));
        if (key.empty()) {
            throw std::invalid_argument("'" + std::string(item) + "' is not key=value");
        }
        auto name = percent_decode(key);
        auto value = percent_decode(trim_space(item.substr(eq + 1)));
        for (char c : name) {
            if (c <= ' ' || c == ':' || c == 0x7f) {
                throw std::invalid_argument("'" + name + "' is not a header name");
            }
        }
        for (char c : value) {
            if (c == '\r' || c == '\n' || c == '\0') {
                throw std::invalid_argument("the value of header '" + name +
                                            "' holds a line break");
            }
        }
        out.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

}  // namespace llm_proxy::otlp

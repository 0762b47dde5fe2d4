#include "llm_proxy/addons/web_feed.hpp"

#include <algorithm>
#include <cctype>

namespace llm_proxy::addons {

namespace {

bool is_event_stream(const flow& f) {
    auto type = find_header(f.response->headers, "Content-Type");
    if (!type) {
        return false;
    }
    auto t = *type;
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) {
        t.remove_prefix(1);
    }
    constexpr std::string_view sse = "text/event-stream";
    return t.size() >= sse.size() &&
           std::equal(sse.begin(), sse.end(), t.begin(), [](char a, char b) {
               return a == std::tolower(static_cast<unsigned char>(b));
           });
}

}  // namespace

boost::asio::awaitable<void> web_feed::on_response_headers(flow& f) {
    store_->response_started(f);
    if (f.response && is_event_stream(f)) {
        auto coding = find_header(f.response->headers, "Content-Encoding");
        bool identity = !coding || coding->empty() || *coding == "identity";
        timelines_.emplace(f, std::make_shared<web::stream_timeline>(identity));
    }
    co_return;
}

void web_feed::on_response_body(flow& f, std::string_view piece) {
    if (auto* t = timelines_.find(f)) {
        auto ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - f.started)
                .count();
        (*t)->add(ms, piece);
    }
}

void web_feed::hand_over_timeline(flow& f) {
    if (auto* t = timelines_.find(f); t && *t) {
        store_->set_timeline(f.id, std::move(*t));
    }
}

}  // namespace llm_proxy::addons

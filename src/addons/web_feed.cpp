#include "llm_proxy/addons/web_feed.hpp"

#include <chrono>

namespace llm_proxy::addons {

boost::asio::awaitable<void> web_feed::on_response_headers(flow& f) {
    store_->response_started(f);
    if (f.response && is_event_stream(f.response->headers)) {
        auto coding = find_header(f.response->headers, "Content-Encoding");
        bool identity = !coding || coding->empty() || iequals(*coding, "identity");
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

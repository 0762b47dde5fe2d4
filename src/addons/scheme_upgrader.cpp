#include "llm_proxy/addons/scheme_upgrader.hpp"

namespace llm_proxy::addons {

void scheme_upgrader::on_request_headers(flow& f) {
    if (f.request.scheme != "http") {
        return;
    }
    f.request.scheme = "https";
    if (f.request.port == 80) {
        f.request.port = 443;
    }
    f.tags["scheme_upgraded"] = "true";
}

boost::asio::awaitable<void> scheme_upgrader::on_response_headers(flow& f) {
    if (f.response && f.tags.contains("scheme_upgraded")) {
        f.response->headers.emplace_back("X-Llm_proxy-scheme-upgraded", "true");
    }
    co_return;
}

}  // namespace llm_proxy::addons

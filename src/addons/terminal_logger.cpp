#include "llm_proxy/addons/terminal_logger.hpp"

#include <spdlog/spdlog.h>

namespace llm_proxy::addons {

void terminal_logger::on_response_end(flow& f) {
    std::string note;
    for (const auto& [k, v] : f.tags) {
        note += " " + k + "=" + v;
    }
    spdlog::info("{} {} {} -> {} {}B {:.1f}ms{}", f.client_address, f.request.method,
                 f.request.url(), f.response ? f.response->status : 0, f.response_bytes,
                 f.duration_ms(), note);
}

void terminal_logger::on_error(flow& f) {
    spdlog::warn("{} {} {} -> error {}: {} {:.1f}ms", f.client_address, f.request.method,
                 f.request.url(), to_string(f.error_kind), f.error, f.duration_ms());
}

}  // namespace llm_proxy::addons

#include "llm_proxy/addons/terminal_logger.hpp"

#include <spdlog/spdlog.h>

#include "llm_proxy/llm/summary.hpp"

namespace llm_proxy::addons {

namespace {

// " model=gpt-4o-mini tokens=1200(1024 cached)/85 cost=$0.000185 ttft=312ms"
std::string llm_note(const llm::summary& s) {
    std::string out = " model=" + llm::billed_model(s.call);
    const auto& u = s.call.usage;
    if (u.input_tokens || u.output_tokens) {
        out += " tokens=" + (u.input_tokens ? std::to_string(*u.input_tokens) : "?");
        if (u.cache_read_tokens && *u.cache_read_tokens > 0) {
            out += "(" + std::to_string(*u.cache_read_tokens) + " cached)";
        }
        out += "/" + (u.output_tokens ? std::to_string(*u.output_tokens) : "?");
    }
    if (s.cost_usd) {
        out += " cost=$" + s.cost_usd->total.to_string();
    }
    if (s.saved_usd) {
        out += " saved=$" + s.saved_usd->to_string();
    }
    if (s.first_token_ms) {
        out += " ttft=" + std::to_string(static_cast<long long>(*s.first_token_ms)) + "ms";
    }
    if (s.call.incomplete) {
        out += " incomplete";
    }
    return out;
}

}  // namespace

void terminal_logger::on_response_end(flow& f) {
    std::string note = f.llm ? llm_note(*f.llm) : std::string();
    for (const auto& [k, v] : f.tags) {
        note += " " + k + "=" + v;
    }
    spdlog::info("{} {} {} -> {} {}B {:.1f}ms{}", f.client_address, f.request.method,
                 f.request.url(), f.response ? f.response->status : 0, f.response_bytes,
                 f.duration_ms(), note);
}

void terminal_logger::on_error(flow& f) {
    // A refused request may have no URL: its target as received (or nothing) stands for it.
    std::string where = !f.request.host.empty() ? f.request.url()
                        : f.rejected            ? f.rejected->target
                                                : std::string();
    spdlog::warn("{} {} {} -> error {}: {} {:.1f}ms", f.client_address, f.request.method, where,
                 to_string(f.error_kind), f.error, f.duration_ms());
}

}  // namespace llm_proxy::addons

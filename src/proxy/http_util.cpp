#include "http_util.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <nlohmann/json.hpp>
#include <vector>

namespace llm_proxy::proxy {

namespace http = boost::beast::http;

namespace {

constexpr std::array<std::string_view, 11> hop_by_hop = {
    "Connection",        "Keep-Alive",        "Proxy-Connection", "Proxy-Authorization", "TE",
    "Trailer",           "Transfer-Encoding", "Upgrade",          "Content-Length",      "Expect",
    "Proxy-Authenticate"};

// Field names listed in Connection headers (comma separated tokens).
std::vector<std::string> connection_tokens(const http::fields& fields) {
    std::vector<std::string> out;
    for (auto it = fields.find(http::field::connection);
         it != fields.end() && it->name() == http::field::connection; ++it) {
        std::string_view v = it->value();
        while (!v.empty()) {
            auto comma = v.find(',');
            std::string_view tok = v.substr(0, comma);
            while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) {
                tok.remove_prefix(1);
            }
            while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) {
                tok.remove_suffix(1);
            }
            if (!tok.empty()) {
                out.emplace_back(tok);
            }
            if (comma == std::string_view::npos) {
                break;
            }
            v.remove_prefix(comma + 1);
        }
    }
    return out;
}

}  // namespace

header_list end_to_end_headers(const http::fields& fields) {
    auto listed = connection_tokens(fields);
    header_list out;
    for (const auto& f : fields) {
        std::string_view name = f.name_string();
        bool drop = false;
        for (auto h : hop_by_hop) {
            drop = drop || iequals(name, h);
        }
        for (const auto& t : listed) {
            drop = drop || iequals(name, t);
        }
        if (!drop) {
            out.emplace_back(std::string(name), std::string(f.value()));
        }
    }
    return out;
}

void append_headers(http::fields& fields, const header_list& headers) {
    for (const auto& [k, v] : headers) {
        fields.insert(k, v);
    }
}

void erase_header(header_list& headers, std::string_view name) {
    std::erase_if(headers, [&](const auto& kv) { return iequals(kv.first, name); });
}

std::string error_json(std::string_view code, std::string_view message) {
    nlohmann::json j = {{"error",
                         {{"message", std::string(message)},
                          {"type", "llm_proxy_error"},
                          {"code", std::string(code)}}}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

bool response_has_no_body(std::string_view method, unsigned status) {
    return method == "HEAD" || (status >= 100 && status < 200) || status == 204 || status == 304;
}

void shrink_idle_buffer(boost::beast::flat_buffer& buffer) {
    constexpr std::size_t keep = 4 * 1024;
    if (buffer.capacity() > 4 * keep && buffer.size() <= keep) {
        boost::beast::flat_buffer smaller(buffer.max_size());
        smaller.reserve(std::max(keep, buffer.size()));
        smaller.commit(boost::asio::buffer_copy(smaller.prepare(buffer.size()), buffer.data()));
        buffer = std::move(smaller);
    }
}

}  // namespace llm_proxy::proxy

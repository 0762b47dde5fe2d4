#include "llm_proxy/flow.hpp"

#include <algorithm>

namespace llm_proxy {

namespace {
char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

std::optional<std::string_view> find_header(const header_list& headers, std::string_view name) {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) {
            return std::string_view(v);
        }
    }
    return std::nullopt;
}

void captured_body::append(std::string_view chunk, std::size_t limit) {
    total += chunk.size();
    if (data.size() < limit) {
        std::size_t room = limit - data.size();
        data.append(chunk.substr(0, room));
    }
    truncated = total > data.size();
}

std::string request_head::authority() const {
    std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    bool default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
    if (!default_port && port != 0) {
        out += ":" + std::to_string(port);
    }
    return out;
}

std::string request_head::url() const {
    return scheme + "://" + authority() + target;
}

double flow::duration_ms() const {
    return std::chrono::duration<double, std::milli>(duration).count();
}

}  // namespace llm_proxy

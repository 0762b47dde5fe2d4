#include "llm_proxy/proxy/reverse_routes.hpp"

#include <boost/url/parse.hpp>
#include <stdexcept>

#include "llm_proxy/util/authority.hpp"

namespace llm_proxy {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

[[noreturn]] void reject(std::string_view text, const std::string& why) {
    throw std::invalid_argument("--reverse '" + std::string(text) + "': " + why);
}

std::string take_prefix(std::string_view text, std::string_view prefix) {
    if (!prefix.starts_with('/')) {
        reject(text, "the prefix must start with '/' (e.g. /openai=https://api.openai.com)");
    }
    if (prefix.find_first_of("?#=% \t") != std::string_view::npos) {
        reject(text, "the prefix may not contain '?', '#', '=', '%' or spaces");
    }
    if (prefix.find("//") != std::string_view::npos) {
        reject(text, "the prefix has an empty path segment");
    }
    while (!prefix.empty() && prefix.back() == '/') {
        prefix.remove_suffix(1);  // "/openai/" is "/openai"; "/" matches every path
    }
    return std::string(prefix);
}

}  // namespace

reverse_route parse_reverse_route(std::string_view text) {
    reverse_route route;
    std::string_view url = text;
    // A '=' before any "://" separates a prefix; one after it belongs to the URL.
    auto eq = text.find('=');
    auto sep = text.find("://");
    if (eq != std::string_view::npos && (sep == std::string_view::npos || eq < sep)) {
        route.prefix = take_prefix(text, text.substr(0, eq));
        url = text.substr(eq + 1);
    }
    if (url.find("://") == std::string_view::npos) {
        reject(text, "expected [PREFIX=]URL with a scheme, e.g. https://api.openai.com");
    }
    auto r = boost::urls::parse_uri(url);
    if (!r) {
        reject(text, "'" + std::string(url) + "' is not a URL");
    }
    route.scheme = lower(r->scheme());
    if (route.scheme != "http" && route.scheme != "https") {
        reject(text, "unsupported scheme '" + route.scheme + "' (use http or https)");
    }
    if (r->has_userinfo()) {
        reject(text, "the URL may not contain user information");
    }
    if (r->has_query() || r->has_fragment()) {
        reject(text, "the URL may not contain a query or a fragment");
    }
    if (r->host_type() == boost::urls::host_type::ipv6) {
        route.host = r->host_ipv6_address().to_string();
    } else {
        route.host = lower(r->encoded_host());
    }
    if (route.host.empty()) {
        reject(text, "the URL has no host");
    }
    if (r->has_port()) {
        auto port = parse_port(r->port());
        if (!port || *port == 0) {
            reject(text, "bad port in '" + std::string(url) + "'");
        }
        route.port = *port;
    } else {
        route.port = route.scheme == "https" ? 443 : 80;
    }
    std::string_view path = r->encoded_path();
    while (!path.empty() && path.back() == '/') {
        path.remove_suffix(1);
    }
    route.base_path = std::string(path);
    return route;
}

std::vector<reverse_route> parse_reverse_routes(const std::vector<std::string>& texts) {
    std::vector<reverse_route> routes;
    for (const auto& text : texts) {
        auto route = parse_reverse_route(text);
        for (const auto& other : routes) {
            if (other.prefix == route.prefix) {
                reject(text, route.prefix.empty()
                                 ? "a second rule without a prefix"
                                 : "the prefix '" + route.prefix + "' is given twice");
            }
        }
        routes.push_back(std::move(route));
    }
    return routes;
}

std::optional<reverse_match> match_reverse_route(const std::vector<reverse_route>& routes,
                                                 std::string_view target) {
    auto q = target.find('?');
    std::string_view path = target.substr(0, q);
    std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q);
    const reverse_route* best = nullptr;
    for (const auto& route : routes) {
        const auto& p = route.prefix;
        bool matches = path.starts_with(p) && (path.size() == p.size() || path[p.size()] == '/');
        if (matches && (best == nullptr || p.size() > best->prefix.size())) {
            best = &route;
        }
    }
    if (best == nullptr) {
        return std::nullopt;
    }
    reverse_match m;
    m.route = best;
    m.target = best->base_path;
    m.target += path.substr(best->prefix.size());
    if (m.target.empty()) {
        m.target = "/";
    }
    m.target += query;
    return m;
}

}  // namespace llm_proxy

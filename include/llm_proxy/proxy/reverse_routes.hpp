#pragma once
// Reverse (base-URL) mode: `--reverse [PREFIX=]URL` rules that send origin-form requests
// ("POST /v1/chat/completions", Host: the proxy) to a fixed upstream, so a client only needs
// its base URL pointed at the proxy (no CA to install).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_proxy {

struct reverse_route {
    std::string prefix;  // "" (every path) or "/seg[/seg...]" without a trailing '/'
    std::string scheme;  // "http" or "https"
    std::string host;    // lower case; an IPv6 literal without brackets
    std::uint16_t port = 0;
    std::string base_path;  // the URL's path without a trailing '/' ("" for none)
};

// Parses "[PREFIX=]URL": PREFIX starts with '/', URL is http(s)://host[:port][/base] without
// userinfo, query or fragment. Throws std::invalid_argument with a message for the user.
reverse_route parse_reverse_route(std::string_view text);

// Parses every rule and rejects two with the same prefix. Throws std::invalid_argument.
std::vector<reverse_route> parse_reverse_routes(const std::vector<std::string>& texts);

// Where an origin-form request goes: the route's upstream and the target to send it.
struct reverse_match {
    const reverse_route* route = nullptr;
    std::string target;  // base path + the path after the prefix + "?query", at least "/"
};

// The longest prefix matching `target` ("/path?query") on a segment boundary: "/openai"
// matches "/openai" and "/openai/v1" but not "/openaix". Nullopt when no rule matches.
std::optional<reverse_match> match_reverse_route(const std::vector<reverse_route>& routes,
                                                 std::string_view target);

}  // namespace llm_proxy

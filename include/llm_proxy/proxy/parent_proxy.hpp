#pragma once
// --upstream-proxy: the HTTP proxy ("parent") all upstream traffic goes through, and
// --upstream-no-proxy: the hosts that go direct anyway. Only ever set by these flags; the
// proxy never reads HTTP_PROXY / HTTPS_PROXY from its own environment.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llm_proxy {

struct parent_proxy {
    std::string host;  // an IPv6 literal without its brackets
    std::uint16_t port = 0;
    std::string user;      // percent-decoded
    std::string password;  // percent-decoded
    bool has_credentials = false;

    // "host:port" or "[v6]:port".
    std::string authority() const;
    // "Basic base64(user:password)"; empty without credentials.
    std::string authorization() const;
};

// Parses "http://[user:pass@]host:port[/]". Throws std::invalid_argument naming the problem
// (another scheme, no host, a missing or bad port, a path or query).
parent_proxy parse_parent_proxy(std::string_view url);

// "host:port", IPv6 in brackets.
std::string format_authority(std::string_view host, std::uint16_t port);

// The comma-separated --upstream-no-proxy list: host names (exact), ".suffix" or "*.suffix"
// (any subdomain of suffix), IP addresses, CIDR blocks (10.0.0.0/8, fd00::/8) and "*" (all).
class no_proxy_list {
  public:
    no_proxy_list() = default;
    // Throws std::invalid_argument for an entry that is none of the above.
    static no_proxy_list parse(std::string_view text);

    // Whether `host` (a name or an IP literal, IPv6 without brackets) goes direct.
    bool matches(std::string_view host) const;
    bool empty() const;

  private:
    struct cidr {
        bool v6 = false;
        std::array<unsigned char, 16> bytes{};
        unsigned bits = 0;
    };
    bool all_ = false;
    std::vector<std::string> names_;     // lower case, no trailing dot
    std::vector<std::string> suffixes_;  // ".example.com", lower case
    std::vector<cidr> blocks_;           // a lone address is a /32 or /128
};

}  // namespace llm_proxy

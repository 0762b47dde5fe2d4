#pragma once
// Which CONNECT tunnels and plain-HTTP requests the proxy intercepts (mitmproxy's
// --allow-hosts / --ignore-hosts): regular expressions searched, case-insensitively, in
// "host:port" of the request and in the TLS ClientHello's server name (SNI).

#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace llm_proxy {

class host_filter {
  public:
    enum class mode { intercept_all, allow, ignore };

    host_filter() = default;
    // Compiles `patterns` (ECMAScript, case-insensitive). Throws std::invalid_argument naming
    // the option (`option`) and the bad pattern.
    host_filter(mode m, const std::vector<std::string>& patterns, std::string_view option);

    // Patterns that allow exactly these host names (any port), e.g. the known LLM API hosts.
    static host_filter allow_hosts_exactly(const std::vector<std::string>& hosts);

    mode kind() const { return mode_; }
    bool intercepts_everything() const { return mode_ == mode::intercept_all; }
    // Whether any pattern is found in `name`.
    bool matches(std::string_view name) const;
    // The decision for a connection known by these names ("host:port", SNI, "sni:port"):
    // ignore mode: intercepted unless one matches; allow mode: intercepted when one matches.
    bool intercept(const std::vector<std::string>& names) const;

  private:
    mode mode_ = mode::intercept_all;
    std::vector<std::regex> patterns_;
};

// "host:port" as matched against the patterns (IPv6 literals in brackets).
std::string host_port_text(std::string_view host, unsigned port);

}  // namespace llm_proxy

#include "llm_proxy/proxy/host_patterns.hpp"

#include <stdexcept>

namespace llm_proxy {

host_filter::host_filter(mode m, const std::vector<std::string>& patterns, std::string_view option)
    : mode_(patterns.empty() ? mode::intercept_all : m) {
    for (const auto& p : patterns) {
        if (p.empty()) {
            throw std::invalid_argument(std::string(option) + ": empty pattern");
        }
        try {
            patterns_.emplace_back(
                p, std::regex::ECMAScript | std::regex::icase | std::regex::optimize);
        } catch (const std::regex_error& e) {
            throw std::invalid_argument(std::string(option) + ": bad regular expression '" + p +
                                        "': " + e.what());
        }
    }
}

host_filter host_filter::allow_hosts_exactly(const std::vector<std::string>& hosts) {
    std::vector<std::string> patterns;
    for (const auto& h : hosts) {
        std::string escaped;
        for (char c : h) {
            if (std::string_view("\\^$.|?*+()[]{}-").find(c) != std::string_view::npos) {
                escaped.push_back('\\');
            }
            escaped.push_back(c);
        }
        // The host alone (an SNI) or with a port (a CONNECT target); IPv6 in brackets.
        bool v6 = h.find(':') != std::string::npos;
        patterns.push_back(v6 ? "^(\\[" + escaped + "\\]:[0-9]+|" + escaped + ")$"
                              : "^" + escaped + "(:[0-9]+)?$");
    }
    return host_filter(mode::allow, patterns, "--intercept llm");
}

bool host_filter::matches(std::string_view name) const {
    // libstdc++'s regex matcher recurses once per character: a name longer than any host:port
    // (a DNS name has at most 253 characters) matches no pattern rather than risk the stack.
    if (name.size() > 300) {
        return false;
    }
    for (const auto& re : patterns_) {
        if (std::regex_search(name.begin(), name.end(), re)) {
            return true;
        }
    }
    return false;
}

bool host_filter::intercept(const std::vector<std::string>& names) const {
    if (mode_ == mode::intercept_all) {
        return true;
    }
    bool any = false;
    for (const auto& n : names) {
        if (!n.empty() && matches(n)) {
            any = true;
            break;
        }
    }
    return mode_ == mode::allow ? any : !any;
}

std::string host_port_text(std::string_view host, unsigned port) {
    bool v6 = host.find(':') != std::string_view::npos;
    std::string out = v6 ? "[" + std::string(host) + "]" : std::string(host);
    return out + ":" + std::to_string(port);
}

}  // namespace llm_proxy

#include "llm_proxy/proxy/config.hpp"

#include <charconv>
#include <stdexcept>
#include <string_view>

namespace llm_proxy {

namespace {

// Splits off one "HOST" field (bracketed IPv6 allowed) ending at ':'.
std::string take_host(std::string_view& s, const std::string& whole) {
    std::string host;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) {
            throw std::invalid_argument("unbalanced '[' in --connect-to '" + whole + "'");
        }
        host = std::string(s.substr(1, close - 1));
        s.remove_prefix(close + 1);
    } else {
        auto colon = s.find(':');
        host = std::string(s.substr(0, colon));
        s.remove_prefix(colon == std::string_view::npos ? s.size() : colon);
    }
    if (s.empty() || s.front() != ':') {
        throw std::invalid_argument("expected HOST:PORT:HOST2:PORT2 in --connect-to '" + whole +
                                    "'");
    }
    s.remove_prefix(1);
    return host;
}

std::uint16_t take_port(std::string_view& s, const std::string& whole, bool last) {
    auto colon = last ? s.size() : s.find(':');
    if (colon == std::string_view::npos) {
        throw std::invalid_argument("expected HOST:PORT:HOST2:PORT2 in --connect-to '" + whole +
                                    "'");
    }
    std::string_view p = s.substr(0, colon);
    unsigned value = 0;
    if (!p.empty()) {
        auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
        if (ec != std::errc() || ptr != p.data() + p.size() || value == 0 || value > 65535) {
            throw std::invalid_argument("bad port '" + std::string(p) + "' in --connect-to '" +
                                        whole + "'");
        }
    }
    s.remove_prefix(last ? colon : colon + 1);
    return static_cast<std::uint16_t>(value);
}

}  // namespace

connect_to_rule parse_connect_to(const std::string& text) {
    std::string_view s = text;
    connect_to_rule r;
    r.host = take_host(s, text);
    r.port = take_port(s, text, false);
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) {
            throw std::invalid_argument("unbalanced '[' in --connect-to '" + text + "'");
        }
        r.connect_host = std::string(s.substr(1, close - 1));
        s.remove_prefix(close + 1);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) {
            throw std::invalid_argument("expected HOST:PORT:HOST2:PORT2 in --connect-to '" + text +
                                        "'");
        }
        r.connect_host = std::string(s.substr(0, colon));
        s.remove_prefix(colon);
    }
    if (s.empty() || s.front() != ':') {
        throw std::invalid_argument("expected HOST:PORT:HOST2:PORT2 in --connect-to '" + text +
                                    "'");
    }
    s.remove_prefix(1);
    r.connect_port = take_port(s, text, true);
    return r;
}

std::size_t connection_limit_for(std::size_t descriptor_limit) {
    std::size_t reserve = std::min<std::size_t>(256, descriptor_limit / 4);
    return std::max<std::size_t>(1, (descriptor_limit - reserve) / 2);
}

}  // namespace llm_proxy

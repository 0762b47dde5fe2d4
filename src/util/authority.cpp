#include "llm_proxy/util/authority.hpp"

#include <boost/url/authority_view.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

namespace llm_proxy {

std::optional<host_and_port> split_host_port(std::string_view text) {
    auto parsed = boost::urls::parse_authority(text);
    if (!parsed || parsed->has_userinfo() ||
        parsed->host_type() == boost::urls::host_type::ipvfuture) {
        return std::nullopt;
    }
    host_and_port out;
    // encoded_host_address: the host as written, IPv6 brackets removed.
    auto host = parsed->encoded_host_address();
    out.host.assign(host.data(), host.size());
    out.has_port = parsed->has_port();
    auto port = parsed->port();
    out.port = std::string_view(port.data(), port.size());
    return out;
}

std::optional<std::uint16_t> parse_port(std::string_view digits) {
    // Not authority_view::port_number(): Boost.URL 1.81 wraps numbers above 65535.
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() ||
        value > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep) {
    auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" +
           std::to_string(ep.port());
}

}  // namespace llm_proxy

#pragma once
// "host:port" text (an RFC 3986 authority, parsed by Boost.URL): the listen address and the
// target of a CONNECT request; and the text of a socket's endpoint.

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llm_proxy {

struct host_and_port {
    std::string host;       // an IPv6 literal without its brackets; may be empty (":8080")
    bool has_port = false;  // a ':' follows the host
    std::string_view port;  // the digits after the ':' (maybe none), a view into the input
};

// Splits "host:port", "[v6]:port", ":port" or a lone "host". Rejects userinfo ("user@host"),
// IPvFuture literals and a bare IPv6 address (it needs brackets). The host is returned as
// written (percent escapes are not decoded).
std::optional<host_and_port> split_host_port(std::string_view text);

// "0" to "65535" (leading zeros allowed); nullopt for anything else, the empty string included.
std::optional<std::uint16_t> parse_port(std::string_view digits);

// "1.2.3.4:80" or "[::1]:80".
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep);

}  // namespace llm_proxy

#pragma once
// A blind tunnel: bytes relayed both ways at once between two TCP sockets, as they come, with
// no look inside. Half-closes are passed on; the tunnel ends when both directions are done,
// on an error, when neither direction moved a byte for `idle_timeout`, or, once one direction
// has ended, for `half_closed_timeout`.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <string>

namespace llm_proxy::proxy {

struct tunnel_outcome {
    std::uint64_t from_client = 0;    // bytes relayed client -> upstream
    std::uint64_t from_upstream = 0;  // bytes relayed upstream -> client
    // "client_closed" / "upstream_closed" (the side that finished sending first),
    // "idle_timeout" or "error".
    std::string end;
    std::string error;          // what went wrong, with "error"
    bool client_fault = false;  // the error was on the client's side
};

// Each direction holds a buffer of this size while bytes flow; an idle direction holds none.
inline constexpr std::size_t tunnel_buffer_bytes = 8 * 1024;

boost::asio::awaitable<tunnel_outcome> relay_blind(boost::asio::ip::tcp::socket& client,
                                                   boost::asio::ip::tcp::socket& upstream,
                                                   std::chrono::milliseconds idle_timeout,
                                                   std::chrono::milliseconds half_closed_timeout);

}  // namespace llm_proxy::proxy

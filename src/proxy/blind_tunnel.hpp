#pragma once
// A blind tunnel: bytes relayed both ways at once between two TCP sockets, as they come, with
// no look inside. Half-closes are passed on; the tunnel ends when both directions are done,
// on an error, when neither direction moved a byte for the idle limit, or, once one direction
// has ended, for the half-closed limit. The relay itself runs on the worker's tunnel_loop.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "tunnel_loop.hpp"

namespace llm_proxy::proxy {

// Hands both sockets over to `loop` (they are closed when the tunnel ends) and waits for the
// tunnel's end.
boost::asio::awaitable<tunnel_outcome> relay_blind(tunnel_loop& loop,
                                                   boost::asio::ip::tcp::socket& client,
                                                   boost::asio::ip::tcp::socket& upstream,
                                                   tunnel_limits limits);

}  // namespace llm_proxy::proxy

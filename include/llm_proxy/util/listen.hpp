#pragma once
// Opening a listening socket, the same for the proxy's own listener and its side servers.

#include <boost/asio/ip/tcp.hpp>
#include <string>

namespace llm_proxy {

// Opens `acceptor` on `ep` (SO_REUSEADDR), binds and listens. Throws std::runtime_error
// "cannot listen<purpose> on ADDRESS:PORT: reason" when it cannot (purpose: "" or e.g. " for
// metrics").
void open_listener(boost::asio::ip::tcp::acceptor& acceptor,
                   const boost::asio::ip::tcp::endpoint& ep, const std::string& purpose = "");

}  // namespace llm_proxy

#include "llm_proxy/util/listen.hpp"

#include <stdexcept>

#include "llm_proxy/util/authority.hpp"

namespace llm_proxy {

void open_listener(boost::asio::ip::tcp::acceptor& acceptor,
                   const boost::asio::ip::tcp::endpoint& ep, const std::string& purpose) {
    namespace asio = boost::asio;
    boost::system::error_code ec;
    acceptor.open(ep.protocol(), ec);
    if (!ec) {
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        acceptor.bind(ep, ec);
    }
    if (!ec) {
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        throw std::runtime_error("cannot listen" + purpose + " on " + endpoint_text(ep) + ": " +
                                 ec.message());
    }
}

}  // namespace llm_proxy

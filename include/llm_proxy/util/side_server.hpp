#pragma once
// The listener of the proxy's small HTTP side servers (the metrics endpoint, the web view): an
// io_context and a thread of its own, apart from the proxy's workers, an acceptor bound at
// once, and a coroutine run for each accepted connection.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace llm_proxy {

class side_server {
  public:
    using session = std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket)>;

    // Binds address:port (port 0: any free one). Throws std::runtime_error "cannot listen for
    // WHAT on ADDRESS:PORT: reason" when it cannot.
    side_server(const boost::asio::ip::address& address, std::uint16_t port,
                const std::string& what);
    // stop().
    ~side_server();
    side_server(const side_server&) = delete;
    side_server& operator=(const side_server&) = delete;

    // Starts accepting on the thread: each connection runs `s` (on context()).
    void start(session s);
    boost::asio::io_context& context() { return ioc_; }
    boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
    // Closes the listener and the connections, joins the thread. Idempotent.
    void stop();

  private:
    boost::asio::awaitable<void> accept_loop(session s);

    boost::asio::io_context ioc_{1};
    boost::asio::ip::tcp::acceptor acceptor_{ioc_};
    std::string what_;
    std::thread thread_;
    std::once_flag stopped_;
};

}  // namespace llm_proxy

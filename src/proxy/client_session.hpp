#pragma once
// One client connection: the HTTP/1.1 keep-alive loop, CONNECT tunnels (TLS interception or
// plain HTTP inside) and, per request, one flow relayed to the upstream.

#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <optional>
#include <string>

#include "flex_stream.hpp"
#include "upstream.hpp"
#include "worker.hpp"

namespace llm_proxy::proxy {

namespace http = beast::http;

class client_session : public std::enable_shared_from_this<client_session> {
  public:
    client_session(worker& w, asio::ip::tcp::socket socket);
    ~client_session();
    static void start(worker& w, asio::ip::tcp::socket socket);

    // Closes the connection if it is waiting for a next request (graceful shutdown).
    void close_if_idle();

  private:
    using request_parser = http::request_parser<http::buffer_body>;
    using response_parser = http::response_parser<http::buffer_body>;

    asio::awaitable<void> run();
    asio::awaitable<bool> handle_connect(request_parser& parser);
    asio::awaitable<bool> start_tunnel_tls();

    // Runs one flow. Returns true when the client connection may serve another request.
    asio::awaitable<bool> handle_request(request_parser& parser);
    // Reads the request body into f.request_body, at most a little past the capture limit.
    // overflow: the body is longer; f.request_body.data holds every byte read so far.
    enum class body_read { failed, complete, overflow };
    asio::awaitable<body_read> read_request_body(request_parser& parser, flow& f);
    asio::awaitable<bool> answer_locally(flow& f, bool keep_alive);
    asio::awaitable<bool> send_error(unsigned status, std::string_view code,
                                     std::string_view message, bool keep_alive);
    void fail_flow(flow& f, std::string kind, std::string message);

    worker& worker_;
    shared_state& shared_;
    flex_stream client_;
    beast::flat_buffer buffer_;
    std::string client_address_;
    bool idle_ = true;

    // Inside a CONNECT tunnel: the authority every request goes to.
    std::optional<std::string> tunnel_host_;
    std::uint16_t tunnel_port_ = 0;
    std::string tunnel_scheme_;

    // Left uninitialised on purpose: zero-filling would make all 16 KiB resident for every
    // connection, idle ones included; only the bytes a body read writes are ever read.
    std::array<char, 16 * 1024> body_buffer_;
};

}  // namespace llm_proxy::proxy

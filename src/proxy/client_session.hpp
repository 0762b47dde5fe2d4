#pragma once
// One client connection: the HTTP/1.1 keep-alive loop, CONNECT tunnels (TLS interception or
// plain HTTP inside) and, per request, one flow relayed to the upstream.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <optional>
#include <string>

#include "body_relay.hpp"
#include "flex_stream.hpp"
#include "http_util.hpp"
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
    // The first byte the client sends, left unread (nullopt: closed, timed out or failed).
    asio::awaitable<std::optional<unsigned char>> peek_first_byte();
    // Reverse mode over TLS: a connection opening with a TLS handshake gets the listener's
    // certificate. False when the client went away or the handshake failed.
    asio::awaitable<bool> accept_listener_tls();
    // Proxy authentication (proxy_auth.cpp): whether the request may pass, and the 407.
    // Whether the request carries accepted proxy credentials; a slow hash check (a hashed
    // --proxy-auth-file line) runs on the minting thread, not on this event loop.
    asio::awaitable<bool> authorized(const request_parser& parser);
    asio::awaitable<bool> send_auth_required(const request_parser& parser);
    // Peeks at the client's first bytes (a ClientHello) without consuming them; nullopt when
    // the client went away or stayed silent.
    asio::awaitable<std::optional<std::string>> peek_sni(bool& client_gone);
    // A CONNECT that is not intercepted (blind_tunnel.cpp): connects to the target, answers
    // 200 unless `answered`, then relays bytes both ways until both sides are done.
    asio::awaitable<bool> run_blind_tunnel(const std::string& host, std::uint16_t port,
                                           std::string sni, bool answered);

    // Runs one flow. Returns true when the client connection may serve another request.
    // The stages are in flow_handler.cpp, in the order they run.
    struct flow_context;
    asio::awaitable<bool> handle_request(request_parser& parser);
    std::string admit(flow_context& ctx);
    asio::awaitable<bool> run_flow(flow_context& ctx);
    asio::awaitable<bool> fail_addon(flow_context& ctx);
    using body_taker = std::function<bool(std::string_view)>;
    asio::awaitable<bool> read_request_body(flow_context& ctx, const body_taker& take);
    asio::awaitable<bool> read_body_for_addons(flow_context& ctx, std::size_t limit);
    asio::awaitable<bool> use_replaced_body(flow_context& ctx);
    asio::awaitable<bool> fail_request_body(flow_context& ctx, bool bad_framing,
                                            const beast::error_code& ec);
    asio::awaitable<std::optional<bool>> exchange_with_upstream(flow_context& ctx);
    head_framing upstream_framing(flow_context& ctx);
    asio::awaitable<relay_result> send_request(flow_context& ctx);
    asio::awaitable<relay_result> relay_request_body(flow_context& ctx, body_sink& sink);
    asio::awaitable<beast::error_code> read_response_head(flow_context& ctx);
    asio::awaitable<bool> fail_upstream(flow_context& ctx, const upstream_target& target,
                                        const beast::error_code& ec);
    framing_decoder take_response_head(flow_context& ctx, std::optional<std::string>& head_length);
    asio::awaitable<bool> relay_response(flow_context& ctx);
    head_framing client_framing(flow_context& ctx, const framing_decoder& decoder,
                                const std::optional<std::string>& head_length);
    bool transform_body(flow& f, const std::vector<std::shared_ptr<body_transform>>& transforms,
                        std::vector<std::string_view>& pieces, bool last, std::string& scratch);
    asio::awaitable<bool> finish_response(flow_context& ctx, const relay_result& result,
                                          const framing_decoder& decoder, bool switching,
                                          bool head_sent);
    asio::awaitable<bool> answer_locally(flow& f, bool keep_alive);
    void hold_response_end(flow& f, body_sink& sink, bool& ended);
    bool local_reply_pieces(flow& f, std::vector<std::string>& out);
    asio::awaitable<bool> send_error(unsigned status, std::string_view code,
                                     std::string_view message, bool keep_alive);
    // Reads until the buffer holds a whole request head and checks its bytes (see
    // scan_request_head, request_head_problem): an I/O error, a head over the limit, or a
    // problem that makes it unreadable.
    struct head_bytes {
        beast::error_code ec;
        bool too_large = false;
        std::string problem;
        std::size_t length = 0;  // of the complete head, its empty line included
    };
    asio::awaitable<head_bytes> read_head_bytes(std::chrono::steady_clock::duration timeout);
    asio::awaitable<head_bytes> scan_head_bytes();
    // A request refused before it became a flow (or when admission failed): a record with the
    // status, the error kind, the client and what was parsed (`parsed`, else the raw head in
    // the buffer) goes through the addons' on_error and on_flow_done; reject() also answers.
    void record_rejection(unsigned status, flow_error kind, std::string message,
                          const request_parser* parsed);
    asio::awaitable<bool> reject(unsigned status, flow_error kind, std::string message,
                                 const request_parser* parsed, bool keep_alive = false);
    void fail_flow(flow& f, flow_error kind, std::string message);

    worker& worker_;
    shared_state& shared_;
    flex_stream client_;
    beast::flat_buffer buffer_;
    std::string client_address_;
    std::string client_ip_;  // without port or brackets (X-Forwarded-For)
    bool idle_ = true;
    // The addons the current flow goes through: all of them, or none for a plain-HTTP
    // request to a host that is not intercepted.
    addon_chain* flow_chain_ = nullptr;

    // Inside a CONNECT tunnel: the authority every request goes to.
    std::optional<std::string> tunnel_host_;
    std::uint16_t tunnel_port_ = 0;
    std::string tunnel_scheme_;
    // Where the tunnel's upstream is when the ClientHello named another server than the
    // CONNECT target (that target), else empty.
    std::string tunnel_address_;
    // The upstream connection opened while the client handshakes, until a request takes it.
    std::shared_ptr<early_connection> early_;
};

}  // namespace llm_proxy::proxy

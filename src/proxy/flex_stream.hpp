#pragma once
// A byte stream that is plain TCP or TLS over TCP, switchable at run time (a CONNECT tunnel
// turns a plain client connection into TLS). One type lets the HTTP code exist once.

#include <boost/asio/async_result.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <optional>
#include <utility>

#include "tls_stream.hpp"

namespace llm_proxy::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;

class flex_stream {
  public:
    using executor_type = beast::tcp_stream::executor_type;

    explicit flex_stream(beast::tcp_stream tcp) : tcp_(std::move(tcp)) {}

    executor_type get_executor() { return tcp().get_executor(); }
    beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *tcp_; }
    bool is_tls() const { return tls_.has_value(); }
    tls_stream& tls() { return *tls_; }
    // TLS bytes read from the socket but not yet by the caller (see tls_stream).
    bool has_unread_input() const { return tls_ && tls_->has_unread_input(); }

    // Wraps the TCP stream in TLS; the handshake is the caller's.
    void start_tls(asio::ssl::context& ctx) {
        tls_.emplace(std::move(*tcp_), ctx);
        tcp_.reset();
    }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
            [this](auto handler, const MutableBuffers& b) {
                if (tls_) {
                    tls_->async_read_some(b, std::move(handler));
                } else {
                    tcp_->async_read_some(b, std::move(handler));
                }
            },
            token, buffers);
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
            [this](auto handler, const ConstBuffers& b) {
                if (tls_) {
                    tls_->async_write_some(b, std::move(handler));
                } else {
                    tcp_->async_write_some(b, std::move(handler));
                }
            },
            token, buffers);
    }

    // Gives back buffer memory an idle connection does not need (see tls_stream).
    void shrink_idle() {
        if (tls_) {
            tls_->shrink_idle();
        }
    }

    void close() {
        beast::error_code ec;
        tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        tcp().close();
    }

  private:
    std::optional<beast::tcp_stream> tcp_;
    std::optional<tls_stream> tls_;
};

}  // namespace llm_proxy::proxy

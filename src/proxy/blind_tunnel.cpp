#include "blind_tunnel.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/write.hpp>
#include <memory>

#include <unistd.h>

#include "client_session.hpp"
#include "llm_proxy/util/ids.hpp"

namespace llm_proxy::proxy {

namespace {

using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

asio::awaitable<tunnel_outcome> relay_blind(tunnel_loop& loop, tcp::socket& client,
                                            tcp::socket& upstream, tunnel_limits limits) {
    tunnel_outcome out;
    beast::error_code ec;
    const int client_fd = client.release(ec);
    if (ec) {
        out.end = "error";
        out.error = "taking over the client's socket: " + ec.message();
        co_return out;
    }
    const int upstream_fd = upstream.release(ec);
    if (ec) {
        ::close(client_fd);
        out.end = "error";
        out.error = "taking over the upstream socket: " + ec.message();
        co_return out;
    }
    // The loop's callback posts here; it finds the timer only while this frame waits on it
    // (a frame destroyed at shutdown unhooks it first).
    struct waiting {
        tunnel_outcome out;
        asio::steady_timer* timer = nullptr;
    };
    auto state = std::make_shared<waiting>();
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             std::chrono::steady_clock::time_point::max());
    state->timer = &timer;
    struct unhook {
        waiting& w;
        ~unhook() { w.timer = nullptr; }
    } unhook_on_exit{*state};
    loop.add(client_fd, upstream_fd, limits,
             [state, ex = timer.get_executor()](tunnel_outcome result) {
                 asio::post(ex, [state, result = std::move(result)]() mutable {
                     if (state->timer != nullptr) {
                         state->out = std::move(result);
                         state->timer->cancel();
                     }
                 });
             });
    auto [wait_ec] = co_await timer.async_wait(use_tuple);
    (void)wait_ec;
    out = std::move(state->out);
    co_return out;
}

asio::awaitable<bool> client_session::run_blind_tunnel(const std::string& host, std::uint16_t port,
                                                       std::string sni, bool answered) {
    const auto& config = shared_.config;
    struct counted {
        std::atomic<std::size_t>& n;
        explicit counted(std::atomic<std::size_t>& count) : n(count) {
            n.fetch_add(1, std::memory_order_relaxed);
        }
        ~counted() { n.fetch_sub(1, std::memory_order_relaxed); }
        counted(const counted&) = delete;
        counted& operator=(const counted&) = delete;
    };
    const counted tunnel_open(shared_.open_tunnels);
    auto record = std::make_shared<flow>();
    auto& f = *record;
    f.id = make_uuid();
    f.client_address = client_address_;
    f.started_at = std::chrono::system_clock::now();
    f.started = std::chrono::steady_clock::now();
    f.request.method = "CONNECT";
    f.request.scheme = "https";
    f.request.host = host;
    f.request.port = port;
    f.tunnel.emplace();
    f.tunnel->sni = std::move(sni);
    auto finish = [&](std::string end) {
        f.duration = std::chrono::steady_clock::now() - f.started;
        f.tunnel->end = std::move(end);
        spdlog::debug("{} blind tunnel to {}:{} ended ({}): {} bytes up, {} down", client_address_,
                      host, port, f.tunnel->end, f.tunnel->bytes_from_client,
                      f.tunnel->bytes_from_upstream);
        if (config.log_tunnels) {
            shared_.chain->on_flow_done(std::move(record));
        }
    };

    spdlog::debug("{} CONNECT {}:{} relayed blind", client_address_, host, port);
    // Named: GCC 12 destroys temporaries with destructors inside a co_await expression twice.
    const upstream_target target{"tcp", host, port, {}};
    auto connected = co_await connect_tcp(worker_.ioc, config, target);
    if (!connected.stream) {
        f.error_kind = connected.error.kind;
        f.error = connected.error.message;
        finish("error");
        if (!answered) {
            co_await send_error(connected.error.status, to_string(connected.error.kind),
                                connected.error.message, false);
        }
        co_return false;
    }
    auto& upstream = connected.stream->socket();
    if (!answered) {
        static constexpr std::string_view established =
            "HTTP/1.1 200 Connection established\r\n\r\n";
        client_.tcp().expires_after(config.client_io_timeout);
        auto [wec, wn] = co_await asio::async_write(client_, asio::buffer(established), use_tuple);
        if (wec) {
            f.error_kind = flow_error::client_disconnected;
            f.error = "writing the CONNECT response: " + wec.message();
            finish("error");
            co_return false;
        }
    }
    // Beast's timers do not cover the raw socket operations below; the watchdog does.
    client_.tcp().expires_never();
    connected.stream->expires_never();
    if (buffer_.size() == 0) {
        // The session's read buffer has no use in the relay: give its memory back.
        buffer_ = beast::flat_buffer(buffer_.max_size());
    }
    const tunnel_limits limits{config.tunnel_idle_timeout, config.tunnel_half_closed_timeout};
    auto outcome = co_await relay_blind(worker_.tunnels, client_.tcp().socket(), upstream, limits);
    f.tunnel->bytes_from_client = outcome.from_client;
    f.tunnel->bytes_from_upstream = outcome.from_upstream;
    if (outcome.end == "error") {
        f.error_kind =
            outcome.client_fault ? flow_error::client_disconnected : flow_error::upstream_reset;
        f.error = outcome.error;
    }
    connected.stream->close();
    finish(outcome.end);
    co_return false;
}

}  // namespace llm_proxy::proxy

#include "blind_tunnel.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
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
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct tunnel_state {
    tunnel_state(tcp::socket& c, tcp::socket& u)
        : client(c), upstream(u), timer(c.get_executor()) {}
    tcp::socket& client;
    tcp::socket& upstream;
    asio::steady_timer timer;  // the watchdog's
    bool half_closed = false;  // one direction has ended
    std::chrono::steady_clock::time_point last_activity = std::chrono::steady_clock::now();
    std::string first_closed;  // which side finished sending first
    std::string error;
    bool client_fault = false;  // the error was on the client's side
    bool timed_out = false;

    // Stops both directions: an error on one side ends the tunnel.
    void abort() {
        beast::error_code ec;
        client.cancel(ec);
        upstream.cancel(ec);
    }
};

// One direction: reads from `from`, writes everything to `to`, until `from` ends its sending
// (then `to` gets a FIN and the other direction goes on) or something fails. The buffer is
// held only while bytes flow: a read that did not fill it means the sender paused, so the
// buffer goes back and the pump waits for readability without one (an idle tunnel holds no
// relay buffer). A full read reads again at once (a bulk transfer keeps its buffer). Both
// sockets are non-blocking: a read after readability and a write that the socket takes whole
// (the usual case) complete at once, without a trip through the event loop; only a write the
// peer is not ready for waits.
asio::awaitable<void> pump(tunnel_state& st, tcp::socket& from, tcp::socket& to,
                           std::uint64_t& count, const char* side) {
    std::unique_ptr<char[]> buffer;
    bool more = false;  // the last read filled the buffer: more is likely waiting
    while (true) {
        beast::error_code rec;
        std::size_t n = 0;
        if (!more) {
            buffer.reset();
            auto [wec] = co_await from.async_wait(tcp::socket::wait_read, use_tuple);
            rec = wec;
        }
        if (!rec) {
            if (!buffer) {
                buffer = std::make_unique<char[]>(tunnel_buffer_bytes);
            }
            n = from.read_some(asio::buffer(buffer.get(), tunnel_buffer_bytes), rec);
            if (rec == asio::error::would_block || rec == asio::error::try_again) {
                more = false;  // a spurious wake-up: wait again
                continue;
            }
        }
        more = n == tunnel_buffer_bytes;
        if (n > 0) {
            st.last_activity = std::chrono::steady_clock::now();
            beast::error_code wec;
            std::size_t wn = to.write_some(asio::buffer(buffer.get(), n), wec);
            if (wec == asio::error::would_block || wec == asio::error::try_again) {
                wec = {};
            }
            if (!wec && wn < n) {
                auto [e, rest] = co_await asio::async_write(
                    to, asio::buffer(buffer.get() + wn, n - wn), use_tuple);
                wec = e;
                wn += rest;
            }
            count += wn;
            st.last_activity = std::chrono::steady_clock::now();
            if (wec) {
                if (st.error.empty() && !st.timed_out && wec != asio::error::operation_aborted) {
                    st.error = std::string("writing to the ") +
                               (side[0] == 'c' ? "upstream" : "client") + ": " + wec.message();
                    st.client_fault = side[0] != 'c';
                }
                st.abort();
                co_return;
            }
        }
        if (rec == asio::error::eof) {
            beast::error_code ec;
            to.shutdown(tcp::socket::shutdown_send, ec);
            if (st.first_closed.empty()) {
                st.first_closed = side;
                // The other direction now has the shorter half-closed limit.
                st.half_closed = true;
                st.timer.cancel();
            }
            co_return;
        }
        if (rec) {
            if (st.error.empty() && !st.timed_out && rec != asio::error::operation_aborted) {
                st.error = std::string("reading from the ") +
                           (side[0] == 'c' ? "client" : "upstream") + ": " + rec.message();
                st.client_fault = side[0] == 'c';
            }
            st.abort();
            co_return;
        }
    }
}

// Closes the tunnel when no byte moved either way for `idle`, or for `half_closed_idle` once
// one direction has ended (a peer that sent its FIN and never closes would otherwise hold the
// tunnel for the whole idle timeout).
asio::awaitable<void> watchdog(tunnel_state& st, std::chrono::milliseconds idle,
                               std::chrono::milliseconds half_closed_idle) {
    // Cancellation (the relay finished) is checked, not thrown: a wake-up for the half-close
    // may race with it.
    co_await asio::this_coro::throw_if_cancelled(false);
    while (true) {
        auto state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none) {
            co_return;
        }
        auto limit = st.half_closed ? std::min(idle, half_closed_idle) : idle;
        st.timer.expires_at(st.last_activity + limit);
        auto [ec] = co_await st.timer.async_wait(use_tuple);
        if (ec) {
            continue;  // the relay finished (checked above) or a direction ended
        }
        if (std::chrono::steady_clock::now() >= st.last_activity + limit) {
            st.timed_out = true;
            st.abort();
            co_return;
        }
    }
}

}  // namespace

asio::awaitable<tunnel_outcome> relay_blind(tcp::socket& client, tcp::socket& upstream,
                                            std::chrono::milliseconds idle_timeout,
                                            std::chrono::milliseconds half_closed_timeout) {
    tunnel_outcome out;
    tunnel_state st(client, upstream);
    beast::error_code nb;
    // A socket asio connected stays registered for writability (EPOLLOUT) with the reactor,
    // and each async_wait below re-arms it (EPOLL_CTL_MOD), which reports a writable socket at
    // once: a wake-up for nothing every time the upstream pauses. Registered afresh, it waits
    // for readability only.
    if (auto protocol = upstream.local_endpoint(nb).protocol(); !nb) {
        auto fd = upstream.release(nb);
        if (!nb) {
            upstream.assign(protocol, fd, nb);
            if (nb) {
                ::close(fd);  // released, not taken back: nobody else owns it
            }
        }
    }
    if (nb) {
        out.end = "error";
        out.error = "registering the upstream socket: " + nb.message();
        co_return out;
    }
    client.non_blocking(true, nb);
    upstream.non_blocking(true, nb);
    if (nb) {
        out.end = "error";
        out.error = "setting the sockets non-blocking: " + nb.message();
        co_return out;
    }
    // Named awaitables: the operators below take them by value.
    auto up = pump(st, client, upstream, out.from_client, "client_closed");
    auto down = pump(st, upstream, client, out.from_upstream, "upstream_closed");
    auto guard = watchdog(st, idle_timeout, half_closed_timeout);
    co_await ((std::move(up) && std::move(down)) || std::move(guard));
    if (st.timed_out) {
        out.end = "idle_timeout";
    } else if (!st.error.empty()) {
        out.end = "error";
        out.error = std::move(st.error);
        out.client_fault = st.client_fault;
    } else {
        out.end = st.first_closed;
    }
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
    auto outcome =
        co_await relay_blind(client_.tcp().socket(), upstream, config.tunnel_idle_timeout,
                             config.tunnel_half_closed_timeout);
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

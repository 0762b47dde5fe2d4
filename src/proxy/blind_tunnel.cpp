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

using steady = std::chrono::steady_clock;

// The relay of one tunnel, driven by plain completion callbacks (no coroutine per direction:
// at one request in flight, each request is a wake-up per direction, and resuming coroutine
// frames through the awaitable machinery cost more than the callbacks). It lives in the frame
// of relay_blind, which waits until its last callback has run.
//
// Each direction reads from `from` and writes everything to `to`, until `from` ends its
// sending (then `to` gets a FIN and the other direction goes on) or something fails. Its
// buffer is held only while bytes flow: a read that did not fill it means the sender paused,
// so the buffer goes back and the direction waits for readability without one (an idle tunnel
// holds no relay buffer). A full read reads again at once (a bulk transfer keeps its buffer).
// Both sockets are non-blocking: a read after readability and a write that the socket takes
// whole (the usual case) complete at once, without a trip through the event loop; only a
// write the peer is not ready for waits.
//
// The watchdog closes the tunnel when no byte moved either way for `idle`, or for
// `half_closed_idle` once one direction has ended (a peer that sent its FIN and never closes
// would otherwise hold the tunnel for the whole idle timeout).
class relay {
  public:
    relay(tcp::socket& client, tcp::socket& upstream, std::chrono::milliseconds idle,
          std::chrono::milliseconds half_closed_idle)
        : client_(client),
          upstream_(upstream),
          up_{client, upstream, "client_closed", {}, 0},
          down_{upstream, client, "upstream_closed", {}, 0},
          timer_(client.get_executor()),
          done_(client.get_executor(), steady::time_point::max()),
          idle_(idle),
          half_closed_idle_(half_closed_idle) {}

    asio::awaitable<void> run() {
        wait(up_);
        wait(down_);
        arm_watchdog();
        // Cancelled by the last callback (all of them complete later, on this thread).
        auto [ec] = co_await done_.async_wait(use_tuple);
        (void)ec;
    }

    void fill(tunnel_outcome& out) {
        out.from_client = up_.count;
        out.from_upstream = down_.count;
        if (timed_out_) {
            out.end = "idle_timeout";
        } else if (!error_.empty()) {
            out.end = "error";
            out.error = std::move(error_);
            out.client_fault = client_fault_;
        } else {
            out.end = first_closed_;
        }
    }

  private:
    struct direction {
        tcp::socket& from;
        tcp::socket& to;
        const char* side;  // how the tunnel ended if this direction finishes first
        std::unique_ptr<char[]> buffer;
        std::uint64_t count = 0;
        bool from_client() const { return side[0] == 'c'; }
    };

    // Waits, without a buffer, until `d.from` has something to read.
    void wait(direction& d) {
        d.buffer.reset();
        d.from.async_wait(tcp::socket::wait_read, [this, &d](beast::error_code ec) {
            if (ec) {
                read_failed(d, ec);
            } else {
                transfer(d);
            }
        });
    }

    // Reads what is there and writes it on, again as long as reads fill the buffer.
    void transfer(direction& d) {
        for (;;) {
            if (!d.buffer) {
                d.buffer = std::make_unique_for_overwrite<char[]>(tunnel_buffer_bytes);
            }
            beast::error_code rec;
            std::size_t n =
                d.from.read_some(asio::buffer(d.buffer.get(), tunnel_buffer_bytes), rec);
            if (rec == asio::error::would_block || rec == asio::error::try_again) {
                wait(d);  // a spurious wake-up
                return;
            }
            if (rec) {
                read_failed(d, rec);
                return;
            }
            last_activity_ = steady::now();
            const bool full = n == tunnel_buffer_bytes;
            beast::error_code wec;
            std::size_t wn = d.to.write_some(asio::buffer(d.buffer.get(), n), wec);
            if (wec == asio::error::would_block || wec == asio::error::try_again) {
                wec = {};
                wn = 0;
            }
            d.count += wn;
            if (wec) {
                write_failed(d, wec);
                return;
            }
            if (wn < n) {
                // The peer is not ready for all of it: the rest waits for writability.
                asio::async_write(d.to, asio::buffer(d.buffer.get() + wn, n - wn),
                                  [this, &d, full](beast::error_code ec, std::size_t written) {
                                      d.count += written;
                                      last_activity_ = steady::now();
                                      if (ec) {
                                          write_failed(d, ec);
                                      } else if (full) {
                                          transfer(d);
                                      } else {
                                          wait(d);
                                      }
                                  });
                return;
            }
            if (!full) {
                wait(d);
                return;
            }
        }
    }

    void read_failed(direction& d, beast::error_code ec) {
        if (ec == asio::error::eof) {
            beast::error_code ignored;
            d.to.shutdown(tcp::socket::shutdown_send, ignored);
            if (first_closed_.empty()) {
                first_closed_ = d.side;
                // The other direction now has the shorter half-closed limit.
                half_closed_ = true;
                timer_.cancel();
            }
        } else {
            if (error_.empty() && !timed_out_ && ec != asio::error::operation_aborted) {
                error_ = std::string("reading from the ") +
                         (d.from_client() ? "client" : "upstream") + ": " + ec.message();
                client_fault_ = d.from_client();
            }
            abort();
        }
        direction_done(d);
    }

    void write_failed(direction& d, beast::error_code ec) {
        if (error_.empty() && !timed_out_ && ec != asio::error::operation_aborted) {
            error_ = std::string("writing to the ") + (d.from_client() ? "upstream" : "client") +
                     ": " + ec.message();
            client_fault_ = !d.from_client();
        }
        abort();
        direction_done(d);
    }

    void direction_done(direction& d) {
        d.buffer.reset();
        if (--directions_open_ == 0) {
            timer_.cancel();  // the watchdog's callback sees the relay over
        }
        one_done();
    }

    void arm_watchdog() {
        const auto limit = half_closed_ ? std::min(idle_, half_closed_idle_) : idle_;
        timer_.expires_at(last_activity_ + limit);
        timer_.async_wait([this, limit](beast::error_code ec) {
            if (directions_open_ == 0) {
                one_done();
                return;
            }
            if (!ec && steady::now() >= last_activity_ + limit) {
                timed_out_ = true;
                abort();
                one_done();
                return;
            }
            arm_watchdog();  // bytes moved since, or a direction ended (shorter limit)
        });
    }

    // Stops both directions: an error on one side ends the tunnel.
    void abort() {
        beast::error_code ignored;
        client_.cancel(ignored);
        upstream_.cancel(ignored);
    }

    void one_done() {
        if (--pending_ == 0) {
            done_.cancel();
        }
    }

    tcp::socket& client_;
    tcp::socket& upstream_;
    direction up_;
    direction down_;
    asio::steady_timer timer_;  // the watchdog's
    asio::steady_timer done_;   // what relay_blind waits on
    std::chrono::milliseconds idle_;
    std::chrono::milliseconds half_closed_idle_;
    steady::time_point last_activity_ = steady::now();
    int directions_open_ = 2;
    int pending_ = 3;  // the two directions and the watchdog
    bool half_closed_ = false;
    bool timed_out_ = false;
    bool client_fault_ = false;  // the error was on the client's side
    std::string first_closed_;   // which side finished sending first
    std::string error_;
};

}  // namespace

asio::awaitable<tunnel_outcome> relay_blind(tcp::socket& client, tcp::socket& upstream,
                                            std::chrono::milliseconds idle_timeout,
                                            std::chrono::milliseconds half_closed_timeout) {
    tunnel_outcome out;
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
    relay r(client, upstream, idle_timeout, half_closed_timeout);
    co_await r.run();
    r.fill(out);
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

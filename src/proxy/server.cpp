#include "llm_proxy/proxy/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>

#include "client_session.hpp"
#include "llm_proxy/tls/contexts.hpp"
#include "llm_proxy/util/authority.hpp"
#include "llm_proxy/util/listen.hpp"
#include "worker.hpp"

namespace llm_proxy::proxy {

using asio::ip::tcp;
namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}

class server_impl {
  public:
    server_impl(proxy_config config, std::shared_ptr<addon_chain> chain,
                std::shared_ptr<tls::certificate_authority> ca)
        : acceptor_(control_), signals_(control_, SIGINT, SIGTERM), grace_timer_(control_) {
        shared_.config = std::move(config);
        shared_.chain = std::move(chain);
        shared_.ca = std::move(ca);
        shared_.server_tls = tls::make_server_context(shared_.ca);
        shared_.upstream_tls = tls::make_upstream_context(shared_.config.skip_upstream_tls_verify,
                                                          shared_.config.upstream_ca);
        if (shared_.config.reverse_tls_cert && shared_.config.reverse_tls_key) {
            shared_.listener_tls = tls::make_listener_context(*shared_.config.reverse_tls_cert,
                                                              *shared_.config.reverse_tls_key);
        }

        unsigned n = shared_.config.threads;
        if (n == 0) {
            n = std::max(1u, std::thread::hardware_concurrency());
        }
        for (unsigned i = 0; i < n; ++i) {
            workers_.push_back(std::make_unique<worker>(shared_));
        }

        beast::error_code ec;
        auto address = asio::ip::make_address(shared_.config.listen_host, ec);
        if (ec) {
            throw std::runtime_error("bad listen address '" + shared_.config.listen_host +
                                     "': " + ec.message());
        }
        max_connections_ = shared_.config.max_connections;
        if (max_connections_ == 0) {
            max_connections_ = connection_limit_for(raise_descriptor_limit());
        }
        spdlog::debug("at most {} client connections at once", max_connections_);

        open_listener(acceptor_, tcp::endpoint(address, shared_.config.listen_port));
    }

    // Raises the soft descriptor limit to the hard one (a proxy holds two descriptors per
    // connection; 1,024 is a common soft default) and returns the limit now in force.
    static std::size_t raise_descriptor_limit() {
        rlimit rl{};
        if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
            return 1024;
        }
        if (rl.rlim_cur < rl.rlim_max) {
            rlimit raised{rl.rlim_max, rl.rlim_max};
            if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
                rl.rlim_cur = rl.rlim_max;
            }
        }
        constexpr rlim_t cap = 1 << 20;
        return static_cast<std::size_t>(rl.rlim_cur == RLIM_INFINITY ? cap
                                                                     : std::min(rl.rlim_cur, cap));
    }

    tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

    server_stats stats() const {
        server_stats s;
        s.client_connections = shared_.open_connections.load(std::memory_order_relaxed);
        s.tunnels = shared_.open_tunnels.load(std::memory_order_relaxed);
        for (const auto& w : workers_) {
            s.upstream_idle += w->pool.idle_count_published();
        }
        return s;
    }

    void run() {
        std::vector<std::thread> threads;
        std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
        for (auto& w : workers_) {
            guards.emplace_back(w->ioc.get_executor());
        }
        for (auto& w : workers_) {
            threads.emplace_back([&ioc = w->ioc] { ioc.run(); });
        }
        signals_.async_wait([this](const beast::error_code& ec, int sig) {
            if (!ec) {
                spdlog::info("received signal {}, shutting down", sig);
                begin_shutdown();
            }
        });
        asio::co_spawn(control_, accept_loop(), asio::detached);
        spdlog::info("llm_proxy listening on {}", endpoint_text(local_endpoint()));
        control_.run();

        // Everything in flight has finished or the grace period is over.
        for (auto& g : guards) {
            g.reset();
        }
        for (auto& w : workers_) {
            asio::post(w->ioc, [&w = *w] { w.pool.close_all(); });
        }
        // Workers return once their last session is gone; whatever is still open after the
        // grace period is cut off.
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        for (auto& w : workers_) {
            while (!w->ioc.stopped() && w->session_count.load() == 0 &&
                   std::chrono::steady_clock::now() < give_up) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
            w->ioc.stop();
        }
        for (auto& t : threads) {
            t.join();
        }
        for (auto& w : workers_) {
            w->tunnels.stop();  // tunnels still open after the grace period are cut off
            w->pool.close_all();
        }
        shared_.mint_pool.join();
        shared_.chain->close();
        spdlog::info("llm_proxy stopped");
    }

    void stop() {
        asio::post(control_, [this] { begin_shutdown(); });
    }

  private:
    asio::awaitable<void> accept_loop() {
        std::size_t next = 0;
        bool at_limit = false;  // --max-connections reached: not accepting
        // accept() failures (out of descriptors...): when the last warning was given, the
        // failures since, and whether accepting again was said after it.
        std::chrono::steady_clock::time_point last_warning{};
        bool warned_failure = false;
        std::size_t failures = 0;
        bool said_resumed = true;
        for (;;) {
            if (shared_.open_connections.load() >= max_connections_) {
                // New connections wait in the listen backlog until one closes.
                if (!at_limit) {
                    spdlog::warn(
                        "{} client connections open (--max-connections): new "
                        "connections wait until one closes",
                        max_connections_);
                    at_limit = true;
                }
                asio::steady_timer t(control_, std::chrono::milliseconds(10));
                co_await t.async_wait(use_tuple);
                if (!acceptor_.is_open()) {
                    break;
                }
                continue;
            }
            if (at_limit) {
                spdlog::info("below --max-connections again: accepting");
                at_limit = false;
            }
            auto& w = *workers_[next++ % workers_.size()];
            auto [ec, socket] = co_await acceptor_.async_accept(w.ioc, use_tuple);
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
                    break;
                }
                // Out of file descriptors and similar: back off instead of spinning. While
                // it lasts (a connection closing may let one accept through, then it fails
                // again), warn at most every 10 s.
                auto now = std::chrono::steady_clock::now();
                if (!warned_failure || now - last_warning >= std::chrono::seconds(10)) {
                    spdlog::warn(
                        "accept failed: {}; retrying every 50 ms ({} more failures "
                        "since the last warning)",
                        ec.message(), failures);
                    last_warning = now;
                    warned_failure = true;
                    said_resumed = false;
                    failures = 0;
                } else {
                    ++failures;
                    spdlog::debug("accept failed: {}", ec.message());
                }
                asio::steady_timer t(control_, std::chrono::milliseconds(50));
                co_await t.async_wait(use_tuple);
                continue;
            }
            if (warned_failure && !said_resumed) {
                spdlog::info("accepting connections again");
                said_resumed = true;
            }
            ++shared_.open_connections;
            asio::post(w.ioc, [&w, s = std::move(socket)]() mutable {
                client_session::start(w, std::move(s));
            });
        }
    }

    void begin_shutdown() {
        if (shutting_down_) {
            return;
        }
        shutting_down_ = true;
        shared_.stopping = true;
        beast::error_code ec;
        acceptor_.close(ec);
        signals_.cancel(ec);
        for (auto& w : workers_) {
            asio::post(w->ioc, [&w = *w] { w.close_idle_sessions(); });
        }
        deadline_ = std::chrono::steady_clock::now() + shared_.config.shutdown_grace;
        asio::co_spawn(control_, drain_loop(), asio::detached);
    }

    // Waits until no session is left or the grace period is over.
    asio::awaitable<void> drain_loop() {
        for (;;) {
            std::size_t open = 0;
            for (auto& w : workers_) {
                open += w->session_count.load();
            }
            if (open == 0) {
                break;
            }
            if (std::chrono::steady_clock::now() >= deadline_) {
                spdlog::warn("shutdown grace period over; closing {} connection(s)", open);
                break;
            }
            grace_timer_.expires_after(std::chrono::milliseconds(20));
            co_await grace_timer_.async_wait(use_tuple);
            for (auto& w : workers_) {
                asio::post(w->ioc, [&w = *w] { w.close_idle_sessions(); });
            }
        }
        control_.stop();
    }

    shared_state shared_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::size_t max_connections_ = 1;
    asio::io_context control_{1};
    tcp::acceptor acceptor_;
    asio::signal_set signals_;
    asio::steady_timer grace_timer_;
    bool shutting_down_ = false;
    std::chrono::steady_clock::time_point deadline_{};
};

server::server(proxy_config config, std::shared_ptr<addon_chain> chain,
               std::shared_ptr<tls::certificate_authority> ca)
    : impl_(std::make_unique<server_impl>(std::move(config), std::move(chain), std::move(ca))) {}
server::~server() = default;
boost::asio::ip::tcp::endpoint server::local_endpoint() const {
    return impl_->local_endpoint();
}
server_stats server::stats() const {
    return impl_->stats();
}
void server::run() {
    impl_->run();
}
void server::stop() {
    impl_->stop();
}

}  // namespace llm_proxy::proxy

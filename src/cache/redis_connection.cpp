#include "redis_connection.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <utility>

namespace llm_proxy::cache {

redis_connection::redis_connection(asio::io_context& io, redis_url url, std::string display,
                                   redis_store_options options, std::vector<lua_script*> scripts)
    : io_(io),
      url_(std::move(url)),
      display_(std::move(display)),
      options_(std::move(options)),
      scripts_(std::move(scripts)),
      wake_(io),
      watchdog_(io),
      resolver_(io) {}

std::future<std::string> redis_connection::first_connect() {
    initial_.emplace();
    return initial_->get_future();
}

void redis_connection::start() {
    if (closing_ || running_) {
        return;
    }
    running_ = true;
    asio::co_spawn(io_, run(), [this](std::exception_ptr error) { loop_ended(error); });
}

// --- the connection loop --------------------------------------------------------------------

// Connect; while connected, wait for the link to fail; then wait the backoff delay and start
// over. Ends when closing (after the replies to the commands already sent, bounded by the
// watchdog) or when the very first attempt fails (the constructor reports it; no retrying).
asio::awaitable<void> redis_connection::run() {
    while (!closing_) {
        std::string why = co_await connect_once();
        if (closing_) {
            break;
        }
        if (why.empty()) {
            link_up();
            while (!events_.failed && !closing_) {
                co_await wait(steady::time_point::max());
            }
            if (closing_) {
                break;
            }
            why = *events_.failed;
            state_ = phase::down;
            last_error_ = why;
            report_down(why, false);
        } else {
            state_ = phase::down;
            last_error_ = why;
            if (initial_) {
                initial_->set_value(why);  // the constructor throws
                initial_.reset();
                co_return;
            }
            report_down(why, true);
        }
        const auto until = steady::now() + next_delay();
        while (!closing_ && steady::now() < until) {
            co_await wait(until);
        }
    }
    // Queued writes go out if Redis is there: wait for their replies.
    while (state_ == phase::up && conn_ && !conn_->inflight.empty() && !events_.failed) {
        co_await wait(steady::time_point::max());
    }
}

// One attempt, bounded by connect_timeout: resolve, then each address in turn until one
// connects and answers the handshake. Returns "" once the link is usable, else why not.
asio::awaitable<std::string> redis_connection::connect_once() {
    state_ = phase::connecting;
    ++attempt_;
    const auto deadline = steady::now() + options_.connect_timeout;
    const std::string timed_out =
        "timed out after " + std::to_string(options_.connect_timeout.count()) + " ms";

    std::vector<std::string> endpoints;
    boost::system::error_code not_an_address;
    if (url_.is_unix()) {
        endpoints.push_back(url_.socket_path);
    } else if (asio::ip::make_address(url_.host, not_an_address); !not_an_address) {
        endpoints.push_back(url_.host);
    } else {
        co_await resolve(deadline);
        if (closing_) {
            co_return "store closed";
        }
        if (!resolved_) {
            co_return timed_out;
        }
        if (!resolved_->error.empty()) {
            co_return resolved_->error;
        }
        endpoints = std::move(resolved_->addresses);
    }

    std::string why;
    for (const auto& endpoint : endpoints) {
        why = open_link(endpoint);
        if (!why.empty()) {
            continue;
        }
        const auto link = conn_;
        while (!events_.handshake_done && events_.refused.empty() && !events_.failed && !closing_) {
            if (steady::now() >= deadline) {
                drop_link(timed_out);
                co_return timed_out;
            }
            co_await wait(deadline);
        }
        if (closing_) {
            co_return "store closed";
        }
        if (!events_.refused.empty()) {
            // A protocol-level refusal: no point in trying other addresses.
            link->error = events_.refused;
            drop_link(events_.refused);
            co_return events_.refused;
        }
        if (events_.handshake_done) {
            co_return std::string();  // if the link failed since, run() sees it at once
        }
        why = *events_.failed;
        if (events_.ends_attempt) {
            co_return why;
        }
    }
    co_return why;
}

// Resolves the host name without blocking the store thread; sets resolved_, or leaves it
// empty when the deadline passed first.
asio::awaitable<void> redis_connection::resolve(steady::time_point deadline) {
    resolved_.reset();
    const std::uint64_t attempt = attempt_;
    resolver_.async_resolve(
        url_.host, std::to_string(url_.port),
        [this, attempt](const boost::system::error_code& error,
                        const asio::ip::tcp::resolver::results_type& results) {
            if (attempt != attempt_ || error == asio::error::operation_aborted) {
                return;
            }
            resolution r;
            if (error) {
                r.error = url_.host + ": " + error.message();
            } else {
                std::vector<std::string> v6;
                for (const auto& entry : results) {
                    const auto address = entry.endpoint().address();
                    auto& list = address.is_v4() ? r.addresses : v6;
                    if (std::find(list.begin(), list.end(), address.to_string()) == list.end()) {
                        list.push_back(address.to_string());
                    }
                }
                r.addresses.insert(r.addresses.end(), v6.begin(), v6.end());
                if (r.addresses.empty()) {
                    r.error = url_.host + ": no address";
                }
            }
            resolved_ = std::move(r);
            notify();
        });
    while (!resolved_ && !closing_ && steady::now() < deadline) {
        co_await wait(deadline);
    }
    if (!resolved_) {
        resolver_.cancel();
    }
}

asio::awaitable<void> redis_connection::wait(steady::time_point deadline) {
    wake_.expires_at(deadline);
    boost::system::error_code ec;  // operation_aborted: notify()
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void redis_connection::notify() {
    wake_.cancel();
}

// Connects to one address (a unix socket path, or an IP address and the URL's port) and
// starts the handshake on the new link; returns why not when it cannot even start.
std::string redis_connection::open_link(const std::string& endpoint) {
    events_ = link_events{};
    redisAsyncContext* ac = url_.is_unix() ? redisAsyncConnectUnix(endpoint.c_str())
                                           : redisAsyncConnect(endpoint.c_str(), url_.port);
    if (!ac) {
        return "out of memory";
    }
    if (ac->err) {
        std::string why = ac->errstr;
        redisAsyncFree(ac);
        return why;
    }
    auto link = std::make_shared<redis_link>(*this, io_, ac);
    boost::system::error_code ec;
    link->socket.assign(ac->c.fd, ec);
    if (ec) {
        link->ac = nullptr;
        redisAsyncFree(ac);
        return "socket: " + ec.message();
    }
    link->self = link;
    attach_hooks(*link);
    if (!url_.is_unix()) {
        redisEnableKeepAlive(&ac->c);
    }
    conn_ = link;
    handshake(link);
    return {};
}

// AUTH, SELECT, SCRIPT LOAD and PING, pipelined; the PONG makes the link usable.
void redis_connection::handshake(const std::shared_ptr<redis_link>& link) {
    auto required = [this, link](std::string what) {
        return [this, link, what](const redisReply* reply, const std::string&) {
            // No reply: the link failed, on_link_closed reports it.
            if (reply && link == conn_ && state_ == phase::connecting && is_error(reply) &&
                events_.refused.empty()) {
                events_.refused = what + ": " + reply_text(reply);
                notify();
            }
        };
    };
    if (url_.has_password) {
        if (url_.user.empty()) {
            issue({"AUTH", url_.password}, required("AUTH"));
        } else {
            issue({"AUTH", url_.user, url_.password}, required("AUTH"));
        }
    }
    if (url_.db != 0) {
        const std::string db = std::to_string(url_.db);
        issue({"SELECT", db}, required("SELECT " + db));
    }
    for (lua_script* script : scripts_) {
        script->sha.clear();
        // Optional: without a SHA the script is sent with EVAL.
        issue({"SCRIPT", "LOAD", script->source},
              [this, link, script](const redisReply* reply, const std::string&) {
                  if (link != conn_) {
                      return;
                  }
                  if (reply && reply->type == REDIS_REPLY_STRING) {
                      script->sha = reply_text(reply);
                  } else if (reply) {
                      spdlog::debug("redis {}: SCRIPT LOAD {}: {}", display_, script->name,
                                    reply_text(reply));
                  }
              });
    }
    issue({"PING"}, [this, link](const redisReply* reply, const std::string&) {
        if (!reply || link != conn_ || state_ != phase::connecting) {
            return;
        }
        if (is_error(reply)) {
            if (events_.refused.empty()) {
                events_.refused = "PING: " + reply_text(reply);
            }
        } else {
            events_.handshake_done = true;
        }
        notify();
    });
}

void redis_connection::link_up() {
    state_ = phase::up;
    failed_attempts_ = 0;
    last_error_.clear();
    if (initial_) {
        initial_->set_value(std::string());
        initial_.reset();
    }
    if (down_logged_) {
        spdlog::info("redis {} is reachable again; cache resumed", display_);
        down_logged_ = false;
    }
}

// One warning per outage; failed reconnects after it are debug lines.
void redis_connection::report_down(const std::string& why, bool retrying) {
    if (!down_logged_) {
        spdlog::warn("redis {} unreachable: {}; cache is pass-through until it is back", display_,
                     why);
        down_logged_ = true;
    } else if (retrying) {
        spdlog::debug("redis {}: reconnect failed: {}", display_, why);
    }
}

// The first attempt after losing a working connection is immediate (Redis may only have
// closed an idle connection); then reconnect_min, doubling up to reconnect_max.
std::chrono::milliseconds redis_connection::next_delay() {
    std::chrono::milliseconds delay{0};
    if (failed_attempts_ > 0) {
        delay = options_.reconnect_min;
        for (unsigned i = 1; i < failed_attempts_ && delay < options_.reconnect_max; ++i) {
            delay *= 2;
        }
        delay = std::min(delay, options_.reconnect_max);
    }
    ++failed_attempts_;
    return delay;
}

// --- losing the connection ------------------------------------------------------------------

void redis_connection::drop_link(const std::string& why) {
    auto link = std::move(conn_);
    if (!link) {
        return;
    }
    if (link->error.empty()) {
        link->error = why;
    }
    // Completes every pending command with "no reply" (now, or as soon as the running hiredis
    // callback returns) and, through the cleanup hook, releases the socket.
    if (link->ac) {
        redisAsyncFree(link->ac);
    }
}

// hiredis freed the link's context (the server closed the connection, or connecting failed).
void redis_connection::on_link_closed(const std::shared_ptr<redis_link>& link) {
    if (link != conn_) {
        return;  // dropped on purpose; already dealt with
    }
    conn_.reset();
    events_.failed = link->error.empty() ? "connection closed" : link->error;
    // Before the transport was up, the next address may do better.
    events_.ends_attempt = link->connected;
    if (state_ == phase::up) {
        state_ = phase::down;
        last_error_ = *events_.failed;
    }
    notify();
}

void redis_connection::on_link_error(const std::shared_ptr<redis_link>& link,
                                     const std::string& why) {
    link_failed(link, why);
}

// The link is broken (timeout, socket error): drop it and tell run().
void redis_connection::link_failed(const std::shared_ptr<redis_link>& link,
                                   const std::string& why) {
    if (!link || link != conn_) {
        return;
    }
    drop_link(why);
    events_.failed = why;
    events_.ends_attempt = true;
    if (state_ == phase::up) {
        state_ = phase::down;
        last_error_ = why;
    }
    notify();
}

// --- closing --------------------------------------------------------------------------------

void redis_connection::close(std::function<void()> closed) {
    closing_ = true;
    on_closed_ = std::move(closed);
    if (running_) {
        notify();  // run() returns, then loop_ended() finishes the close
    } else {
        finish_close();
    }
}

void redis_connection::after_reply(redis_link& link) {
    if (closing_ && conn_.get() == &link && link.inflight.empty()) {
        notify();
    }
}

void redis_connection::loop_ended(std::exception_ptr error) {
    running_ = false;
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            last_error_ = e.what();
        } catch (...) {
            last_error_ = "unknown error";
        }
        spdlog::error("redis {}: connection loop: {}", display_, last_error_);
        state_ = phase::down;
        drop_link(last_error_);
        if (initial_) {
            initial_->set_value(last_error_);
            initial_.reset();
        }
    }
    if (closing_) {
        finish_close();
    }
}

void redis_connection::finish_close() {
    if (state_ == phase::closed) {
        return;
    }
    state_ = phase::closed;
    wake_.cancel();
    watchdog_.cancel();
    resolver_.cancel();
    drop_link("store closed");
    if (initial_) {
        initial_->set_value("store closed");
        initial_.reset();
    }
    if (on_closed_) {
        std::exchange(on_closed_, nullptr)();
    }
}

// --- commands -------------------------------------------------------------------------------

bool redis_connection::issue(const std::vector<std::string_view>& args, reply_handler handler) {
    if (!conn_ || !conn_->ac) {
        handler(nullptr, last_error_.empty() ? "not connected" : last_error_);
        return false;
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (auto arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    auto* cmd = new pending_command{conn_, std::move(handler)};
    if (redisAsyncCommandArgv(conn_->ac, on_reply, cmd, static_cast<int>(argv.size()), argv.data(),
                              lengths.data()) != REDIS_OK) {
        std::unique_ptr<pending_command> owned(cmd);
        owned->handler(nullptr, "cannot send the command");
        return false;
    }
    conn_->inflight.push_back(steady::now());
    arm_watchdog();
    return true;
}

void redis_connection::run_script(const lua_script& script, std::size_t num_keys,
                                  std::vector<std::string> keys_and_args, reply_handler handler) {
    auto call = std::make_shared<script_call>(
        script_call{&script, num_keys, std::move(keys_and_args), std::move(handler)});
    send_script(std::move(call), !script.sha.empty());
}

void redis_connection::send_script(std::shared_ptr<script_call> call, bool use_sha) {
    const std::string num_keys = std::to_string(call->num_keys);
    std::vector<std::string_view> args;
    args.reserve(3 + call->keys_and_args.size());
    args.push_back(use_sha ? "EVALSHA" : "EVAL");
    args.push_back(use_sha ? call->script->sha : call->script->source);
    args.push_back(num_keys);
    args.insert(args.end(), call->keys_and_args.begin(), call->keys_and_args.end());
    issue(args, [this, call, use_sha](const redisReply* reply, const std::string& error) {
        if (use_sha && is_error(reply) && reply_text(reply).rfind("NOSCRIPT", 0) == 0 && usable()) {
            send_script(call, false);  // EVAL also puts the script back in the server's cache
            return;
        }
        call->handler(reply, error);
    });
}

// One timer watches the oldest command without a reply; replies arrive in order, so when it
// is late, the connection is.
void redis_connection::arm_watchdog() {
    if (watchdog_armed_ || !conn_ || conn_->inflight.empty()) {
        return;
    }
    watchdog_armed_ = true;
    watchdog_.expires_at(conn_->inflight.front() + options_.command_timeout);
    watchdog_.async_wait([this](const boost::system::error_code& ec) {
        watchdog_armed_ = false;
        if (!ec) {
            check_watchdog();
        }
    });
}

void redis_connection::check_watchdog() {
    // While connecting, the attempt's deadline is in charge.
    if (state_ != phase::up || !conn_ || conn_->inflight.empty()) {
        return;
    }
    if (steady::now() >= conn_->inflight.front() + options_.command_timeout) {
        link_failed(conn_,
                    "no reply within " + std::to_string(options_.command_timeout.count()) + " ms");
        return;
    }
    arm_watchdog();
}

}  // namespace llm_proxy::cache

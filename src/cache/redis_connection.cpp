#include "redis_connection.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <utility>

namespace llm_proxy::cache {

redis_connection::redis_connection(asio::io_context& io, redis_url url, std::string display,
                                   redis_store_options options, std::vector<lua_script*> scripts)
    : io_(io),
      url_(std::move(url)),
      display_(std::move(display)),
      options_(std::move(options)),
      scripts_(std::move(scripts)),
      attempt_timer_(io),
      reconnect_timer_(io),
      watchdog_(io),
      resolver_(io) {}

std::future<std::string> redis_connection::first_connect() {
    initial_.emplace();
    return initial_->get_future();
}

void redis_connection::start() {
    start_attempt();
}

// --- closing --------------------------------------------------------------------------------

void redis_connection::close(std::function<void()> closed) {
    closing_ = true;
    on_closed_ = std::move(closed);
    // Queued writes go out if Redis is there: wait for the replies (bounded by the watchdog).
    if (state_ == phase::up && conn_ && !conn_->inflight.empty()) {
        return;
    }
    finish_close();
}

void redis_connection::finish_close() {
    if (state_ == phase::closed) {
        return;
    }
    state_ = phase::closed;
    attempt_timer_.cancel();
    reconnect_timer_.cancel();
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

void redis_connection::after_reply(redis_link& link) {
    if (closing_ && state_ == phase::up && conn_.get() == &link && link.inflight.empty()) {
        asio::post(io_, [this] { finish_close(); });
    }
}

// --- connecting -----------------------------------------------------------------------------

void redis_connection::start_attempt() {
    if (state_ == phase::closed || closing_) {
        return;
    }
    state_ = phase::connecting;
    const std::uint64_t attempt = ++attempt_;
    attempt_timer_.expires_after(options_.connect_timeout);
    attempt_timer_.async_wait([this, attempt](const boost::system::error_code& ec) {
        if (!ec && attempt == attempt_ && state_ == phase::connecting) {
            attempt_failed("timed out after " + std::to_string(options_.connect_timeout.count()) +
                           " ms");
        }
    });
    endpoints_.clear();
    next_endpoint_ = 0;
    if (url_.is_unix()) {
        connect_next_endpoint();
        return;
    }
    boost::system::error_code ec;
    asio::ip::make_address(url_.host, ec);
    if (!ec) {
        endpoints_.push_back(url_.host);
        connect_next_endpoint();
        return;
    }
    // A host name: resolve without blocking the store thread; IPv4 first, like hiredis.
    resolver_.async_resolve(
        url_.host, std::to_string(url_.port),
        [this, attempt](const boost::system::error_code& error,
                        const asio::ip::tcp::resolver::results_type& results) {
            if (attempt != attempt_ || state_ != phase::connecting) {
                return;
            }
            if (error) {
                attempt_failed(url_.host + ": " + error.message());
                return;
            }
            std::vector<std::string> v6;
            for (const auto& entry : results) {
                const auto address = entry.endpoint().address();
                auto& list = address.is_v4() ? endpoints_ : v6;
                if (std::find(list.begin(), list.end(), address.to_string()) == list.end()) {
                    list.push_back(address.to_string());
                }
            }
            endpoints_.insert(endpoints_.end(), v6.begin(), v6.end());
            if (endpoints_.empty()) {
                attempt_failed(url_.host + ": no address");
                return;
            }
            connect_next_endpoint();
        });
}

void redis_connection::connect_next_endpoint() {
    redisAsyncContext* ac = nullptr;
    if (url_.is_unix()) {
        ac = redisAsyncConnectUnix(url_.socket_path.c_str());
    } else {
        ac = redisAsyncConnect(endpoints_[next_endpoint_].c_str(), url_.port);
    }
    ++next_endpoint_;
    if (!ac) {
        endpoint_failed("out of memory");
        return;
    }
    if (ac->err) {
        std::string why = ac->errstr;
        redisAsyncFree(ac);
        endpoint_failed(why);
        return;
    }
    auto link = std::make_shared<redis_link>(*this, io_, ac);
    boost::system::error_code ec;
    link->socket.assign(ac->c.fd, ec);
    if (ec) {
        link->ac = nullptr;
        redisAsyncFree(ac);
        endpoint_failed("socket: " + ec.message());
        return;
    }
    link->self = link;
    attach_hooks(*link);
    if (!url_.is_unix()) {
        redisEnableKeepAlive(&ac->c);
    }
    conn_ = link;
    handshake(link);
}

void redis_connection::endpoint_failed(const std::string& why) {
    if (state_ != phase::connecting) {
        return;
    }
    if (next_endpoint_ < endpoints_.size()) {
        connect_next_endpoint();
    } else {
        attempt_failed(why);
    }
}

// AUTH, SELECT, SCRIPT LOAD and PING, pipelined; the PONG makes the link usable.
void redis_connection::handshake(const std::shared_ptr<redis_link>& link) {
    auto required = [this, link](std::string what) {
        return [this, link, what](const redisReply* reply, const std::string&) {
            // No reply: the link failed, on_link_closed handles it.
            if (reply && link == conn_ && state_ == phase::connecting && is_error(reply)) {
                handshake_failed(link, what + ": " + reply_text(reply));
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
            handshake_failed(link, "PING: " + reply_text(reply));
        } else {
            link_up();
        }
    });
}

void redis_connection::handshake_failed(const std::shared_ptr<redis_link>& link,
                                        const std::string& why) {
    link->error = why;
    attempt_failed(why);  // a protocol-level refusal: no point in trying other addresses
}

void redis_connection::attempt_failed(const std::string& why) {
    attempt_timer_.cancel();
    resolver_.cancel();
    drop_link(why);
    if (state_ == phase::closed) {
        return;
    }
    state_ = phase::down;
    last_error_ = why;
    if (initial_) {
        initial_->set_value(why);  // the constructor throws; no reconnecting
        initial_.reset();
        return;
    }
    if (!down_logged_) {
        spdlog::warn("redis {} unreachable: {}; cache is pass-through until it is back", display_,
                     why);
        down_logged_ = true;
    } else {
        spdlog::debug("redis {}: reconnect failed: {}", display_, why);
    }
    schedule_reconnect();
}

void redis_connection::link_up() {
    attempt_timer_.cancel();
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
    if (closing_) {
        finish_close();
    }
}

void redis_connection::schedule_reconnect() {
    // The first attempt after losing a working connection is immediate (Redis may only have
    // closed an idle connection); then reconnect_min, doubling up to reconnect_max.
    std::chrono::milliseconds delay{0};
    if (failed_attempts_ > 0) {
        delay = options_.reconnect_min;
        for (unsigned i = 1; i < failed_attempts_ && delay < options_.reconnect_max; ++i) {
            delay *= 2;
        }
        delay = std::min(delay, options_.reconnect_max);
    }
    ++failed_attempts_;
    reconnect_timer_.expires_after(delay);
    reconnect_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec && state_ == phase::down) {
            start_attempt();
        }
    });
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

void redis_connection::on_link_closed(const std::shared_ptr<redis_link>& link) {
    if (link != conn_) {
        return;  // dropped on purpose; already dealt with
    }
    conn_.reset();
    const std::string why = link->error.empty() ? "connection closed" : link->error;
    if (closing_) {
        finish_close();
    } else if (state_ == phase::connecting) {
        if (link->connected) {
            attempt_failed(why);
        } else {
            endpoint_failed(why);
        }
    } else if (state_ == phase::up) {
        link_lost(why);
    }
}

void redis_connection::on_link_error(const std::shared_ptr<redis_link>& link,
                                     const std::string& why) {
    if (link == conn_) {
        link_failed(why);
    }
}

// The current link is broken (timeout, socket error): drop it and deal with the consequences.
void redis_connection::link_failed(const std::string& why) {
    drop_link(why);
    if (closing_) {
        finish_close();
    } else if (state_ == phase::connecting) {
        attempt_failed(why);
    } else if (state_ == phase::up) {
        link_lost(why);
    }
}

void redis_connection::link_lost(const std::string& why) {
    state_ = phase::down;
    last_error_ = why;
    if (!down_logged_) {
        spdlog::warn("redis {} unreachable: {}; cache is pass-through until it is back", display_,
                     why);
        down_logged_ = true;
    }
    schedule_reconnect();
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
    // While connecting, the attempt timer is in charge.
    if (state_ != phase::up || !conn_ || conn_->inflight.empty()) {
        return;
    }
    if (steady::now() >= conn_->inflight.front() + options_.command_timeout) {
        link_failed("no reply within " + std::to_string(options_.command_timeout.count()) + " ms");
        return;
    }
    arm_watchdog();
}

}  // namespace llm_proxy::cache

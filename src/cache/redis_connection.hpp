#pragma once
// The Redis store's connection: connecting (resolve, connect, AUTH, SELECT, SCRIPT LOAD,
// PING), reconnecting with backoff when the link is lost, the command watchdog, and sending
// commands and scripts. Private to the Redis store; everything but the constructor and
// first_connect() runs on the store thread (the io_context's one thread).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/cache/redis_store.hpp"
#include "redis_link.hpp"
#include "redis_scripts.hpp"

namespace llm_proxy::cache {

class redis_connection {
  public:
    // `scripts` are loaded (SCRIPT LOAD) on each new link; they must outlive the connection.
    redis_connection(asio::io_context& io, redis_url url, std::string display,
                     redis_store_options options, std::vector<lua_script*> scripts);

    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    // The outcome of the first attempt: "" once connected, else why it failed (after which
    // the connection does not retry). Call once, before start().
    std::future<std::string> first_connect();
    void start();

    // Connected and not closed: commands can be sent.
    bool usable() const { return state_ == phase::up && conn_ && conn_->ac; }
    bool closed() const { return state_ == phase::closed; }
    // Why the connection is down; empty while it is up.
    const std::string& last_error() const { return last_error_; }

    // Sends a command; false (after calling `handler` with no reply) when it cannot.
    bool issue(const std::vector<std::string_view>& args, reply_handler handler);
    // EVALSHA, falling back to EVAL when the server does not know the script.
    void run_script(const lua_script& script, std::size_t num_keys,
                    std::vector<std::string> keys_and_args, reply_handler handler);

    // Waits for the replies to the commands already sent (bounded by the watchdog), then drops
    // the link and cancels everything; `closed` runs once that is done.
    void close(std::function<void()> closed);

    // From the redis_link adapter and the hiredis callbacks.
    void on_link_closed(const std::shared_ptr<redis_link>& link);
    void on_link_error(const std::shared_ptr<redis_link>& link, const std::string& why);
    void after_reply(redis_link& link);

  private:
    enum class phase { connecting, up, down, closed };

    // A script invocation, kept until its reply so that it can be re-sent with EVAL after a
    // NOSCRIPT error (the server's script cache was flushed).
    struct script_call {
        const lua_script* script;
        std::size_t num_keys;
        std::vector<std::string> keys_and_args;
        reply_handler handler;
    };

    void start_attempt();
    void connect_next_endpoint();
    void endpoint_failed(const std::string& why);
    void handshake(const std::shared_ptr<redis_link>& link);
    void handshake_failed(const std::shared_ptr<redis_link>& link, const std::string& why);
    void attempt_failed(const std::string& why);
    void link_up();
    void link_lost(const std::string& why);
    void link_failed(const std::string& why);
    void drop_link(const std::string& why);
    void schedule_reconnect();
    void finish_close();
    void send_script(std::shared_ptr<script_call> call, bool use_sha);
    void arm_watchdog();
    void check_watchdog();

    asio::io_context& io_;
    const redis_url url_;
    const std::string display_;
    const redis_store_options options_;
    const std::vector<lua_script*> scripts_;

    asio::steady_timer attempt_timer_;
    asio::steady_timer reconnect_timer_;
    asio::steady_timer watchdog_;
    asio::ip::tcp::resolver resolver_;

    phase state_ = phase::down;
    std::shared_ptr<redis_link> conn_;
    std::uint64_t attempt_ = 0;           // identifies the current connection attempt
    std::vector<std::string> endpoints_;  // resolved addresses of the current attempt
    std::size_t next_endpoint_ = 0;
    unsigned failed_attempts_ = 0;  // since the last successful connection
    bool watchdog_armed_ = false;
    bool down_logged_ = false;
    bool closing_ = false;
    std::function<void()> on_closed_;
    std::string last_error_;
    std::optional<std::promise<std::string>> initial_;  // first_connect()
};

}  // namespace llm_proxy::cache

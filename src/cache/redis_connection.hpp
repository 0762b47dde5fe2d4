#pragma once
// The Redis store's connection: one coroutine (run()) connects (resolve, connect, AUTH,
// SELECT, SCRIPT LOAD, PING), waits while the link is up, and reconnects with backoff when it
// is lost; a watchdog fails the link when a reply is late; commands and scripts are sent over
// the current link. Private to the Redis store; everything but the constructor and
// first_connect() runs on the store thread (the io_context's one thread).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
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
    // Starts the connection loop.
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

    // What the callbacks tell run() about the current link (reset for each new link).
    struct link_events {
        bool handshake_done = false;        // PONG
        std::string refused;                // an error reply during the handshake
        std::optional<std::string> failed;  // the link is gone, and why
        bool ends_attempt = false;          // no other address is tried after that failure
    };

    struct resolution {
        std::string error;
        std::vector<std::string> addresses;  // IPv4 first, like hiredis
    };

    // The connection loop and its steps.
    asio::awaitable<void> run();
    asio::awaitable<std::string> connect_once();
    asio::awaitable<void> resolve(steady::time_point deadline);
    // Waits until notify() or `deadline`, whichever comes first.
    asio::awaitable<void> wait(steady::time_point deadline);
    void notify();

    std::string open_link(const std::string& endpoint);
    void handshake(const std::shared_ptr<redis_link>& link);
    void link_up();
    void report_down(const std::string& why, bool retrying);
    std::chrono::milliseconds next_delay();
    void link_failed(const std::shared_ptr<redis_link>& link, const std::string& why);
    void drop_link(const std::string& why);
    void loop_ended(std::exception_ptr error);
    void finish_close();

    void send_script(std::shared_ptr<script_call> call, bool use_sha);
    void arm_watchdog();
    void check_watchdog();

    asio::io_context& io_;
    const redis_url url_;
    const std::string display_;
    const redis_store_options options_;
    const std::vector<lua_script*> scripts_;

    asio::steady_timer wake_;  // run() waits on it; notify() cancels it
    asio::steady_timer watchdog_;
    asio::ip::tcp::resolver resolver_;

    phase state_ = phase::down;
    std::shared_ptr<redis_link> conn_;
    link_events events_;
    std::uint64_t attempt_ = 0;  // identifies the current connection attempt
    std::optional<resolution> resolved_;
    unsigned failed_attempts_ = 0;  // since the last successful connection
    bool running_ = false;          // run() has not returned
    bool watchdog_armed_ = false;
    bool down_logged_ = false;
    bool closing_ = false;
    std::function<void()> on_closed_;
    std::string last_error_;
    std::optional<std::promise<std::string>> initial_;  // first_connect()
};

}  // namespace llm_proxy::cache

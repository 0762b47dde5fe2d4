#pragma once
// The adapter between one hiredis async connection and a boost::asio::io_context, and the
// hiredis callbacks. Private to the Redis store.

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

namespace llm_proxy::cache {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

class redis_connection;

// Called with the reply (which may be an error reply), or with nullptr and the reason when
// the command got no reply (connection lost, timed out, store closing).
using reply_handler = std::function<void(const redisReply* reply, const std::string& error)>;

// The text of a string, status or error reply.
std::string reply_text(const redisReply* r);
bool is_error(const redisReply* r);

// One hiredis async connection attached to an io_context (the "adapter").
//
// hiredis owns the socket; `socket` only waits for readiness on it and is released, never
// closed, when hiredis frees the context (the `cleanup` hook). hiredis asks for read/write
// interest through the ev hooks; while an interest is on, one async_wait is kept outstanding
// and its completion calls redisAsyncHandleRead/Write.
//
// hiredis may free the context from inside those calls (on errors), so `ac` is cleared by
// the cleanup hook and checked after every call into hiredis. The link holds a reference to
// itself (`self`) for as long as hiredis has the context, so the hooks never see a dangling
// pointer, whoever else dropped the link.
struct redis_link : std::enable_shared_from_this<redis_link> {
    redis_link(redis_connection& owner, asio::io_context& io, redisAsyncContext* context)
        : owner(owner), ac(context), socket(io) {}
    ~redis_link() {
        if (socket.is_open()) {
            socket.release();  // never close hiredis' fd
        }
    }
    redis_link(const redis_link&) = delete;
    redis_link& operator=(const redis_link&) = delete;

    void arm(bool read);
    void on_ready(bool read, const boost::system::error_code& ec);

    redis_connection& owner;
    redisAsyncContext* ac;  // null once hiredis freed it
    asio::posix::stream_descriptor socket;
    std::shared_ptr<redis_link> self;
    bool want_read = false;
    bool want_write = false;
    bool read_waiting = false;
    bool write_waiting = false;
    bool connected = false;  // the transport connection is up (hiredis onConnect said OK)
    std::string error;       // why the link failed, once it did
    // When each command without a reply yet was sent, oldest first (replies come in order).
    std::deque<steady::time_point> inflight;
};

// A command queued in hiredis; owned by hiredis until its reply callback runs.
struct pending_command {
    std::shared_ptr<redis_link> link;
    reply_handler handler;
};

// Points hiredis' event hooks and callbacks at `link` (whose `ac` is set).
void attach_hooks(redis_link& link);

// The reply callback for redisAsyncCommandArgv; privdata is a pending_command it takes over.
void on_reply(redisAsyncContext* ac, void* reply_ptr, void* privdata);

}  // namespace llm_proxy::cache

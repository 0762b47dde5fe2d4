#include "redis_link.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <exception>

#include "redis_connection.hpp"

namespace llm_proxy::cache {

std::string reply_text(const redisReply* r) {
    return r->str ? std::string(r->str, r->len) : std::string();
}

bool is_error(const redisReply* r) {
    return r && r->type == REDIS_REPLY_ERROR;
}

namespace {

// --- hiredis hooks (run on the store thread, called from C: must not throw) ------------------

redis_link* link_of(void* p) {
    return static_cast<redis_link*>(p);
}

void ev_add_read(void* p) {
    link_of(p)->want_read = true;
    link_of(p)->arm(true);
}
void ev_del_read(void* p) {
    link_of(p)->want_read = false;
}
void ev_add_write(void* p) {
    link_of(p)->want_write = true;
    link_of(p)->arm(false);
}
void ev_del_write(void* p) {
    link_of(p)->want_write = false;
}

// hiredis is about to free the context and close the fd.
void ev_cleanup(void* p) {
    redis_link* link = link_of(p);
    link->ac = nullptr;
    link->want_read = link->want_write = false;
    if (link->socket.is_open()) {
        link->socket.release();  // cancels the outstanding waits
    }
    // Finish off outside hiredis: the store learns the link is gone, then the last reference
    // may go.
    auto self = std::move(link->self);
    if (!self) {
        return;
    }
    try {
        asio::post(self->socket.get_executor(), [self] { self->owner.on_link_closed(self); });
    } catch (const std::exception& e) {
        // hiredis still calls onDisconnect with this link: leak it rather than free it.
        link->self = std::move(self);
        spdlog::error("redis store: {}", e.what());
    }
}

void on_connect(const redisAsyncContext* ac, int status) {
    redis_link* link = link_of(ac->data);
    if (status == REDIS_OK) {
        link->connected = true;
    } else if (link->error.empty()) {
        link->error = ac->errstr && *ac->errstr ? ac->errstr : "cannot connect";
    }
}

void on_disconnect(const redisAsyncContext* ac, int status) {
    redis_link* link = link_of(ac->data);
    if (link->error.empty()) {
        link->error =
            status != REDIS_OK && ac->errstr && *ac->errstr ? ac->errstr : "connection closed";
    }
}

}  // namespace

void attach_hooks(redis_link& link) {
    redisAsyncContext* ac = link.ac;
    ac->data = &link;
    ac->ev.data = &link;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

void on_reply(redisAsyncContext* ac, void* reply_ptr, void* privdata) {
    std::unique_ptr<pending_command> cmd(static_cast<pending_command*>(privdata));
    redis_link& link = *cmd->link;
    if (!link.inflight.empty()) {
        link.inflight.pop_front();
    }
    const auto* reply = static_cast<const redisReply*>(reply_ptr);
    if (!reply && link.error.empty()) {
        link.error = ac->err && ac->errstr && *ac->errstr ? ac->errstr : "connection closed";
    }
    try {
        cmd->handler(reply, reply ? std::string() : link.error);
        if (reply) {
            link.owner.after_reply(link);
        }
    } catch (const std::exception& e) {
        spdlog::error("redis store: reply handler: {}", e.what());
    } catch (...) {
        spdlog::error("redis store: reply handler threw");
    }
}

void redis_link::arm(bool read) {
    bool& waiting = read ? read_waiting : write_waiting;
    if (!ac || waiting || !(read ? want_read : want_write)) {
        return;
    }
    try {
        waiting = true;
        socket.async_wait(read ? asio::posix::stream_descriptor::wait_read
                               : asio::posix::stream_descriptor::wait_write,
                          [self = shared_from_this(), read](const boost::system::error_code& ec) {
                              self->on_ready(read, ec);
                          });
    } catch (const std::exception& e) {
        waiting = false;
        spdlog::error("redis store: cannot wait on the socket: {}", e.what());
    }
}

void redis_link::on_ready(bool read, const boost::system::error_code& ec) {
    (read ? read_waiting : write_waiting) = false;
    if (ec == asio::error::operation_aborted || !ac) {
        return;
    }
    if (ec) {
        owner.on_link_error(shared_from_this(), "socket: " + ec.message());
        return;
    }
    if (!(read ? want_read : want_write)) {
        return;
    }
    // `this` stays alive through the call: the pending wait's handler holds a reference.
    if (read) {
        redisAsyncHandleRead(ac);
    } else {
        redisAsyncHandleWrite(ac);
    }
    // hiredis does not always re-request an interest it still has (e.g. while connecting).
    arm(read);
}

}  // namespace llm_proxy::cache

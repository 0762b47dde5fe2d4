#include "tls_stream.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <climits>
#include <cstring>

namespace llm_proxy::proxy {

// The BIO OpenSSL reads records from and writes records to: the stream's own buffers. A read
// with nothing buffered asks OpenSSL to retry (the stream then reads the socket); a write
// always takes everything, so OpenSSL never waits to write. While out_ is being sent (only a
// read calls OpenSSL then), writes go to spill_, so the bytes in flight never move.
struct tls_stream_bio {
    static tls_stream& stream(BIO* bio) { return *static_cast<tls_stream*>(BIO_get_data(bio)); }

    static int write(BIO* bio, const char* data, int len) {
        BIO_clear_retry_flags(bio);
        if (len <= 0) {
            return 0;
        }
        tls_stream& s = stream(bio);
        auto& out = s.flushing_ ? s.spill_ : s.out_;
        out.insert(out.end(), reinterpret_cast<const unsigned char*>(data),
                   reinterpret_cast<const unsigned char*>(data) + len);
        return len;
    }

    static int read(BIO* bio, char* data, int len) {
        BIO_clear_retry_flags(bio);
        tls_stream& s = stream(bio);
        std::size_t available = s.in_end_ - s.in_begin_;
        if (available == 0) {
            BIO_set_retry_read(bio);
            return -1;
        }
        std::size_t n = std::min(available, static_cast<std::size_t>(std::max(len, 0)));
        std::memcpy(data, s.in_.get() + s.in_begin_, n);
        s.in_begin_ += n;
        return static_cast<int>(n);
    }

    static long ctrl(BIO*, int cmd, long, void*) {
        // Nothing is held back on the way out, so a flush is always done; every other
        // control (pending counts, kTLS queries, push/pop) has no meaning here.
        return cmd == BIO_CTRL_FLUSH ? 1 : 0;
    }

    static int create(BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
    }

    static int destroy(BIO*) { return 1; }

    static BIO_METHOD* method() {
        static BIO_METHOD* const m = [] {
            BIO_METHOD* meth =
                BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "llm_proxy tls_stream");
            if (meth == nullptr || BIO_meth_set_write(meth, write) != 1 ||
                BIO_meth_set_read(meth, read) != 1 || BIO_meth_set_ctrl(meth, ctrl) != 1 ||
                BIO_meth_set_create(meth, create) != 1 ||
                BIO_meth_set_destroy(meth, destroy) != 1) {
                throw beast::system_error(beast::error_code(static_cast<int>(ERR_get_error()),
                                                            asio::error::get_ssl_category()),
                                          "BIO_meth_new");
            }
            return meth;
        }();
        return m;
    }
};

tls_stream::tls_stream(beast::tcp_stream tcp, asio::ssl::context& ctx)
    : tcp_(std::move(tcp)), ssl_(SSL_new(ctx.native_handle())), waiter_(tcp_.get_executor()) {
    BIO* bio = ssl_ != nullptr ? BIO_new(tls_stream_bio::method()) : nullptr;
    if (bio == nullptr) {
        auto code = static_cast<int>(ERR_get_error());
        SSL_free(ssl_);
        throw beast::system_error(beast::error_code(code, asio::error::get_ssl_category()),
                                  "SSL_new");
    }
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio);  // one reference, owned by ssl_
    SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    // Never expires: ops waiting for the other op are woken by cancel().
    waiter_.expires_at(asio::steady_timer::time_point::max());
}

tls_stream::~tls_stream() {
    SSL_free(ssl_);
}

void tls_stream::shrink_idle() {
    // A buffer a socket operation is using stays (a read waiting for the peer keeps its input
    // buffer; only an idle stream gives everything back).
    if (!reading_ && in_begin_ == in_end_) {
        in_.reset();
        in_capacity_ = in_begin_ = in_end_ = 0;
        grow_input_ = false;
    }
    if (!flushing_) {
        if (out_.empty()) {
            std::vector<unsigned char>().swap(out_);
        }
        if (spill_.empty()) {
            std::vector<unsigned char>().swap(spill_);
        }
    }
}

std::size_t tls_stream::buffer_capacity() const {
    return in_capacity_ + out_.capacity() + spill_.capacity();
}

unsigned char* tls_stream::scratch() {
    thread_local const std::unique_ptr<unsigned char[]> buffer =
        std::make_unique_for_overwrite<unsigned char[]>(max_write);
    return buffer.get();
}

asio::mutable_buffer tls_stream::input_space() {
    std::size_t unread = in_end_ - in_begin_;
    std::size_t want = grow_input_ ? large_input : small_input;
    if (in_capacity_ < want) {
        auto bigger = std::make_unique_for_overwrite<unsigned char[]>(want);
        if (unread > 0) {
            std::memcpy(bigger.get(), in_.get() + in_begin_, unread);
        }
        in_ = std::move(bigger);
        in_capacity_ = want;
    } else if (in_begin_ > 0 && unread > 0) {
        std::memmove(in_.get(), in_.get() + in_begin_, unread);
    }
    in_begin_ = 0;
    in_end_ = unread;
    return asio::buffer(in_.get() + in_end_, in_capacity_ - in_end_);
}

void tls_stream::commit_input(std::size_t n) {
    // A read that filled all the room offered means data is arriving faster than a small
    // buffer takes it: read in larger pieces from now on (until the stream goes idle).
    grow_input_ = grow_input_ || in_end_ + n == in_capacity_;
    in_end_ += n;
}

void tls_stream::read_done(const beast::error_code& ec, std::size_t n) {
    reading_ = false;
    if (!ec) {
        commit_input(n);
    }
    wake();
}

bool tls_stream::flush_done(const beast::error_code& ec) {
    out_.clear();
    if (ec) {
        spill_.clear();  // nothing more can be sent on this connection
    } else if (!spill_.empty()) {
        // Rare (post-handshake messages, an alert) and small: copied so that out_ keeps its
        // capacity and spill_ stays small.
        out_.insert(out_.end(), spill_.begin(), spill_.end());
        spill_.clear();
        return true;
    }
    flushing_ = false;
    wake();
    return false;
}

void tls_stream::wake() {
    if (waiters_ > 0) {
        waiter_.cancel();
    }
}

beast::error_code tls_stream::map_read_error(const beast::error_code& ec) const {
    if (ec != asio::error::eof) {
        return ec;
    }
    // TCP closed: a clean end only after the peer's close_notify.
    if ((SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0) {
        return ec;
    }
    return asio::ssl::error::stream_truncated;
}

tls_stream::step tls_stream::handshake_step(handshake_type type) {
    ERR_clear_error();
    return finish(type == asio::ssl::stream_base::client ? SSL_connect(ssl_) : SSL_accept(ssl_));
}

tls_stream::step tls_stream::shutdown_step() {
    ERR_clear_error();
    int result = SSL_shutdown(ssl_);
    if (result >= 0) {
        return {};  // close_notify is in the output buffer
    }
    step s = finish(result);
    s.want_input = false;  // waiting for the peer's close_notify is not needed
    return s;
}

tls_stream::step tls_stream::read_step(asio::mutable_buffer buffer) {
    if (buffer.size() == 0) {
        return {};
    }
    ERR_clear_error();
    return finish(SSL_read(ssl_, buffer.data(),
                           static_cast<int>(std::min<std::size_t>(buffer.size(), INT_MAX))));
}

tls_stream::step tls_stream::write_step(asio::const_buffer buffer) {
    if (buffer.size() == 0) {
        return {};
    }
    ERR_clear_error();
    return finish(SSL_write(ssl_, buffer.data(),
                            static_cast<int>(std::min<std::size_t>(buffer.size(), INT_MAX))));
}

tls_stream::step tls_stream::finish(int result) {
    step s;
    int error = SSL_get_error(ssl_, result);
    auto code = static_cast<int>(ERR_get_error());
    switch (error) {
        case SSL_ERROR_NONE:
            s.bytes = result > 0 ? static_cast<std::size_t>(result) : 0;
            break;
        case SSL_ERROR_WANT_READ:
            s.want_input = true;
            break;
        case SSL_ERROR_ZERO_RETURN:
            s.ec = asio::error::eof;
            break;
        case SSL_ERROR_SSL:
        case SSL_ERROR_SYSCALL:
            if (code != 0) {
                s.ec = beast::error_code(code, asio::error::get_ssl_category());
            } else {
                s.ec = error == SSL_ERROR_SSL ? asio::ssl::error::unexpected_result
                                              : asio::ssl::error::unspecified_system_error;
            }
            break;
        default:
            // SSL_ERROR_WANT_WRITE cannot happen (the BIO takes every write); anything else is
            // not expected from a plain TLS connection.
            s.ec = asio::ssl::error::unexpected_result;
            break;
    }
    return s;
}

}  // namespace llm_proxy::proxy

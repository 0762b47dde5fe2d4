#pragma once
// A TLS stream over beast::tcp_stream that drives OpenSSL through a BIO of its own: OpenSSL
// reads records from an input buffer this object fills from the socket and appends what it
// writes to an output buffer this object sends. Compared with asio::ssl::stream (two 17 KiB
// record buffers per stream, always allocated, plus a 17 KiB-per-side BIO pair) the buffers
// exist only while data flows: an idle stream gives them back (shrink_idle), so a thousand
// idle intercepted connections cost little more than OpenSSL's connection objects. Each
// direction also makes one copy less.
//
// Timeouts stay those of the beast::tcp_stream underneath (next_layer().expires_after()).
// Errors are those asio::ssl::stream reports: OpenSSL failures in asio::error::ssl_category,
// asio::error::eof after the peer's close_notify, asio::ssl::error::stream_truncated when the
// peer closes TCP without one.
//
// Full duplex, as asio::ssl::stream: one async_read_some and one async_write_some may be in
// flight at once (a handshake or a shutdown counts as the write; a handshake runs alone). Both
// share the SSL object and the buffers, on one thread:
//  * Output. At most one socket write of ciphertext is in flight (flushing_), owned by the op
//    that started it. A write (or handshake, shutdown) calls OpenSSL only when no flush is in
//    flight, waiting for the other's flush to end first. A read may call SSL_read during the
//    writer's flush; what OpenSSL then writes (handshake messages answering a post-handshake
//    certificate request or a TLS 1.2 renegotiation, an alert) goes to spill_, and the flush
//    owner sends it right after its own bytes, before it completes. The read does not wait
//    for it, so it goes on reading while the writer waits for the peer. With no flush in
//    flight, a read sends its own output before completing (as asio's stream does).
//  * Input. At most one socket read into the input buffer is in flight (reading_). An op that
//    needs input while the other op is reading waits for that read, then tries again.
//  * Waiting is on waiter_, a timer that never expires: the owner of a flush or socket read
//    cancels it when done, if anyone waits. Nothing waits on the usual path (a reader and a
//    writer each own their own socket operation).

#include <openssl/ssl.h>

#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cstddef>
#include <memory>
#include <vector>

namespace llm_proxy::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;

class tls_stream {
  public:
    using executor_type = beast::tcp_stream::executor_type;
    using handshake_type = asio::ssl::stream_base::handshake_type;

    // Input buffer sizes: what a read starts with, and what it grows to once a read fills it
    // (a large body), which takes a couple of full TLS records per system call.
    static constexpr std::size_t small_input = 4096;
    static constexpr std::size_t large_input = 34 * 1024;
    // Most plaintext handed to OpenSSL per write; more than one buffer is first gathered into
    // one so a message head and its body become one record, not one per header field.
    static constexpr std::size_t max_write = 64 * 1024;

    tls_stream(beast::tcp_stream tcp, asio::ssl::context& ctx);
    ~tls_stream();
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;

    executor_type get_executor() { return tcp_.get_executor(); }
    beast::tcp_stream& next_layer() { return tcp_; }
    SSL* native_handle() { return ssl_; }
    // Bytes the peer sent that no read has taken yet: ciphertext read from the socket, or
    // plaintext OpenSSL holds.
    bool has_unread_input() const { return in_end_ > in_begin_ || SSL_pending(ssl_) > 0; }

    // Frees the buffers when nothing is buffered in them; call before an idle wait.
    void shrink_idle();
    // Bytes of buffer memory held now (input + output capacity), for tests and diagnostics.
    std::size_t buffer_capacity() const;

    template <class Token>
    auto async_handshake(handshake_type type, Token&& token) {
        return asio::async_compose<Token, void(beast::error_code)>(
            make_op<false, false>([this, type] { return handshake_step(type); }), token, tcp_);
    }

    // Sends close_notify and completes once it is written; it does not wait for the peer's
    // (RFC 8446 section 6.1 lets the closing side go without it).
    template <class Token>
    auto async_shutdown(Token&& token) {
        return asio::async_compose<Token, void(beast::error_code)>(
            make_op<false, false>([this] { return shutdown_step(); }), token, tcp_);
    }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        asio::mutable_buffer first;
        for (auto it = asio::buffer_sequence_begin(buffers);
             it != asio::buffer_sequence_end(buffers); ++it) {
            if (asio::mutable_buffer b(*it); b.size() > 0) {
                first = b;
                break;
            }
        }
        return asio::async_compose<Token, void(beast::error_code, std::size_t)>(
            make_op<true, true>([this, first] { return read_step(first); }), token, tcp_);
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        // Re-gathered on every call of the step: a write OpenSSL asks to repeat must see the
        // same bytes, and the caller keeps them alive until completion.
        return asio::async_compose<Token, void(beast::error_code, std::size_t)>(
            make_op<true, false>([this, buffers] { return write_step(gather(buffers)); }), token,
            tcp_);
    }

  private:
    // The outcome of one call into OpenSSL.
    struct step {
        bool want_input = false;  // call again once more input has been read
        beast::error_code ec;
        std::size_t bytes = 0;
    };

    step handshake_step(handshake_type type);
    step shutdown_step();
    step read_step(asio::mutable_buffer buffer);
    step write_step(asio::const_buffer buffer);
    step finish(int result);

    // One buffer of at most max_write bytes: the first one when it is the only non-empty one,
    // else the sequence's first bytes copied into a per-thread scratch buffer.
    template <class ConstBuffers>
    static asio::const_buffer gather(const ConstBuffers& buffers) {
        auto begin = asio::buffer_sequence_begin(buffers);
        auto end = asio::buffer_sequence_end(buffers);
        asio::const_buffer single;
        std::size_t non_empty = 0;
        for (auto it = begin; it != end; ++it) {
            asio::const_buffer b(*it);
            if (b.size() > 0 && non_empty++ == 0) {
                single = b;
            }
        }
        if (non_empty <= 1) {
            return asio::buffer(single, max_write);
        }
        unsigned char* out = scratch();
        std::size_t n = 0;
        for (auto it = begin; it != end && n < max_write; ++it) {
            n += asio::buffer_copy(asio::buffer(out + n, max_write - n), asio::const_buffer(*it));
        }
        return asio::const_buffer(out, n);
    }
    static unsigned char* scratch();

    // Input: bytes read from the socket that OpenSSL has not taken yet. input_space() may move
    // or grow the buffer: only called to start a socket read, none being in flight.
    asio::mutable_buffer input_space();
    void commit_input(std::size_t n);
    void read_done(const beast::error_code& ec, std::size_t n);
    beast::error_code map_read_error(const beast::error_code& ec) const;
    // Output: bytes OpenSSL produced that are not sent yet (out_, then spill_ during a flush).
    bool has_output() const { return !out_.empty(); }
    // A flush of out_ ended; true when spill_ had more, now in out_ and to be sent next.
    bool flush_done(const beast::error_code& ec);
    // Lets an op waiting on waiter_ go on.
    void wake();

    friend struct tls_stream_bio;

    // One operation: calls OpenSSL (Step), sends what it produced, reads the socket when it
    // wants input, and waits when the other operation owns the flush or the socket read it
    // needs. IsRead: the reading side, which may call OpenSSL during the other's flush.
    template <bool WithBytes, bool IsRead, class Step>
    struct io_op {
        tls_stream& s;
        Step call;
        step last{};
        enum { starting, flushing, reading, waiting, immediate } state = starting;

        template <class Self>
        void operator()(Self& self, beast::error_code ec = {}, std::size_t n = 0) {
            switch (state) {
                case starting:
                    break;
                case immediate:
                    return done(self, last.ec, last.bytes);
                case waiting:
                    // Woken by the other op (our timer is cancelled), or cancelled ourselves.
                    --s.waiters_;
                    if (self.cancelled() != asio::cancellation_type::none) {
                        return done(self, asio::error::operation_aborted, 0);
                    }
                    break;
                case flushing:
                    if (s.flush_done(ec)) {
                        return flush(self);  // what the reader produced meanwhile
                    }
                    if (ec) {
                        return done(self, ec, 0);
                    }
                    if (!last.want_input) {
                        return done(self, last.ec, last.bytes);
                    }
                    return need_input(self);
                case reading:
                    s.read_done(ec, n);
                    if (ec) {
                        return done(self, s.map_read_error(ec), 0);
                    }
                    break;
            }
            if constexpr (!IsRead) {
                // Our output must follow what is being sent, and stay within one buffer.
                if (s.flushing_) {
                    return wait(self);
                }
            }
            last = call();
            if (!s.flushing_ && s.has_output()) {
                return flush(self);
            }
            // (A read's output during the writer's flush is in spill_: the writer sends it.)
            if (last.want_input) {
                return need_input(self);
            }
            if (state == starting) {
                // Never complete inside the initiating call.
                state = immediate;
                return asio::post(s.get_executor(), std::move(self));
            }
            done(self, last.ec, last.bytes);
        }

        template <class Self>
        void flush(Self& self) {
            state = flushing;
            s.flushing_ = true;
            asio::async_write(s.tcp_, asio::buffer(s.out_), std::move(self));
        }

        template <class Self>
        void need_input(Self& self) {
            if (s.reading_) {
                return wait(self);  // the other op's socket read brings it
            }
            state = reading;
            s.reading_ = true;
            s.tcp_.async_read_some(s.input_space(), std::move(self));
        }

        template <class Self>
        void wait(Self& self) {
            state = waiting;
            ++s.waiters_;
            s.waiter_.async_wait(std::move(self));
        }

        template <class Self>
        void done(Self& self, const beast::error_code& ec, std::size_t n) {
            if constexpr (WithBytes) {
                self.complete(ec, n);
            } else {
                self.complete(ec);
            }
        }
    };

    template <bool WithBytes, bool IsRead, class Step>
    io_op<WithBytes, IsRead, Step> make_op(Step call) {
        return io_op<WithBytes, IsRead, Step>{*this, std::move(call)};
    }

    beast::tcp_stream tcp_;
    SSL* ssl_ = nullptr;
    std::unique_ptr<unsigned char[]> in_;
    std::size_t in_capacity_ = 0;
    std::size_t in_begin_ = 0;
    std::size_t in_end_ = 0;
    bool grow_input_ = false;
    bool reading_ = false;   // a socket read into in_ is in flight
    bool flushing_ = false;  // a socket write of out_ is in flight
    std::vector<unsigned char> out_;
    std::vector<unsigned char> spill_;  // output produced during a flush
    int waiters_ = 0;                   // ops waiting on waiter_
    asio::steady_timer waiter_;
};

}  // namespace llm_proxy::proxy

// The engine's own TLS stream (src/proxy/tls_stream.*) over real loopback sockets, against
// itself and against asio::ssl::stream as an independent implementation: one operation at a
// time, and full duplex (a read and a write in flight at once on one stream).

#include "proxy/tls_stream.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"

namespace llm_proxy::proxy {
namespace {

namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    }
    return s;
}

// Deterministic bytes: byte `offset` of the stream named `seed`, for any offset, so a reader can
// check what arrives piece by piece without keeping what was sent.
std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void pattern_bytes(std::uint64_t seed, std::uint64_t offset, unsigned char* out, std::size_t n) {
    std::uint64_t word = offset / 8;
    std::size_t skip = offset % 8;
    while (n > 0) {
        unsigned char bytes[8];
        std::uint64_t v = splitmix64(seed ^ (word++ * 0x2545f4914f6cdd1dULL));
        std::memcpy(bytes, &v, sizeof bytes);
        std::size_t take = std::min<std::size_t>(8 - skip, n);
        std::memcpy(out, bytes + skip, take);
        out += take;
        n -= take;
        skip = 0;
    }
}

// Writes `total` pattern bytes in pieces of varied sizes, some as one buffer, some as a
// sequence of three (gathered into one record by tls_stream). before_write(sent) runs before
// each write, after_write() after it.
template <class Stream>
asio::awaitable<void> send_pattern(Stream& s, std::uint64_t seed, std::size_t total,
                                   std::function<void(std::size_t)> before_write = {},
                                   std::function<void()> after_write = {}) {
    static constexpr std::size_t sizes[] = {65536, 100003, 7, 3 * 65536, 1500, 40000};
    std::vector<unsigned char> chunk(3 * 65536);
    std::size_t sent = 0;
    for (std::size_t i = 0; sent < total; ++i) {
        std::size_t n = std::min(sizes[i % std::size(sizes)], total - sent);
        pattern_bytes(seed, sent, chunk.data(), n);
        if (before_write) {
            before_write(sent);
        }
        beast::error_code ec;
        std::size_t written = 0;
        if (i % 3 == 1 && n >= 3) {
            std::array<asio::const_buffer, 3> pieces{
                asio::buffer(chunk.data(), n / 3), asio::buffer(chunk.data() + n / 3, n / 3),
                asio::buffer(chunk.data() + 2 * (n / 3), n - 2 * (n / 3))};
            std::tie(ec, written) = co_await asio::async_write(s, pieces, use_tuple);
        } else {
            std::tie(ec, written) =
                co_await asio::async_write(s, asio::buffer(chunk.data(), n), use_tuple);
        }
        if (ec) {
            ADD_FAILURE() << "write at " << sent << ": " << ec.message();
            co_return;
        }
        EXPECT_EQ(written, n);
        sent += n;
        if (after_write) {
            after_write();
        }
    }
}

// Reads `total` pattern bytes and checks each piece as it arrives; returns how many arrived
// intact. after_read() runs after each read.
template <class Stream>
asio::awaitable<std::size_t> receive_pattern(Stream& s, std::uint64_t seed, std::size_t total,
                                             std::function<void()> after_read = {},
                                             std::size_t from = 0) {
    std::vector<unsigned char> buffer(64 * 1024), expected(64 * 1024);
    std::size_t got = 0;
    while (got < total) {
        auto [ec, n] = co_await s.async_read_some(
            asio::buffer(buffer.data(), std::min(buffer.size(), total - got)), use_tuple);
        if (ec) {
            ADD_FAILURE() << "read at " << got << ": " << ec.message();
            break;
        }
        pattern_bytes(seed, from + got, expected.data(), n);
        if (std::memcmp(buffer.data(), expected.data(), n) != 0) {
            ADD_FAILURE() << "wrong bytes within [" << from + got << ", " << from + got + n << ")";
            break;
        }
        got += n;
        if (after_read) {
            after_read();
        }
    }
    co_return got;
}

// Counts the handshake messages of one type a connection sends and receives from watch() on,
// and runs on_received (once) inside OpenSSL when one arrives.
struct handshake_messages {
    explicit handshake_messages(int message_type) : type(message_type) {}

    int type;
    int sent = 0;
    int received = 0;
    std::function<void()> on_received;

    void watch(SSL* ssl) {
        SSL_set_msg_callback_arg(ssl, this);
        SSL_set_msg_callback(ssl, [](int write_p, int, int content_type, const void* buf,
                                     std::size_t len, SSL*, void* arg) {
            auto& self = *static_cast<handshake_messages*>(arg);
            if (content_type != SSL3_RT_HANDSHAKE || len == 0 ||
                static_cast<const unsigned char*>(buf)[0] != self.type) {
                return;
            }
            if (write_p != 0) {
                ++self.sent;
                return;
            }
            ++self.received;
            if (self.on_received) {
                std::exchange(self.on_received, nullptr)();
            }
        });
    }
};

// A one-shot event between coroutines of one io_context (a timer that never expires, woken
// by cancel), so that no test step depends on a sleep.
class signal {
  public:
    explicit signal(asio::io_context& ioc) : timer_(ioc) {
        timer_.expires_at(asio::steady_timer::time_point::max());
    }
    void fire() {
        fired_ = true;
        timer_.cancel();
    }
    bool fired() const { return fired_; }
    asio::awaitable<void> wait() {
        while (!fired_) {
            co_await timer_.async_wait(use_tuple);
        }
    }

  private:
    asio::steady_timer timer_;
    bool fired_ = false;
};

SSL* native(tls_stream& s) {
    return s.native_handle();
}
SSL* native(ssl::stream<beast::tcp_stream>& s) {
    return s.native_handle();
}

class TlsStream : public testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new test::temp_dir("llm_proxy_tls_stream");
        pki_ = new test::test_pki(test::make_test_pki(dir_->path()));
        other_dir_ = new test::temp_dir("llm_proxy_tls_stream_other");
        other_pki_ = new test::test_pki(test::make_test_pki(other_dir_->path()));
    }
    static void TearDownTestSuite() {
        delete pki_;
        delete dir_;
        delete other_pki_;
        delete other_dir_;
    }

    TlsStream() {
        server_ctx_.use_certificate_chain_file(pki_->server_cert.string());
        server_ctx_.use_private_key_file(pki_->server_key.string(), ssl::context::pem);
        client_ctx_.load_verify_file(pki_->ca_cert.string());
        client_ctx_.set_verify_mode(ssl::verify_peer);
    }

    // Two connected loopback TCP streams: {client side, server side}. With small_buffers the
    // kernel holds little in flight (about 64 KiB per socket and direction, doubled by Linux),
    // so a writer whose peer does not read stays blocked.
    std::pair<beast::tcp_stream, beast::tcp_stream> connected(bool small_buffers = false) {
        tcp::endpoint local(asio::ip::make_address("127.0.0.1"), 0);
        tcp::acceptor acceptor(ioc_, local.protocol());
        tcp::socket client(ioc_, local.protocol());
        if (small_buffers) {
            acceptor.set_option(asio::socket_base::receive_buffer_size(64 * 1024));
            acceptor.set_option(asio::socket_base::send_buffer_size(64 * 1024));
            client.set_option(asio::socket_base::receive_buffer_size(64 * 1024));
            client.set_option(asio::socket_base::send_buffer_size(64 * 1024));
        }
        acceptor.bind(local);
        acceptor.listen();
        client.connect(acceptor.local_endpoint());
        tcp::socket server = acceptor.accept();
        client.set_option(tcp::no_delay(true));
        server.set_option(tcp::no_delay(true));
        return {beast::tcp_stream(std::move(client)), beast::tcp_stream(std::move(server))};
    }

    // Runs coroutines to completion, bounded in time; fails the test on an exception or on
    // a coroutine still running at the deadline.
    void run(std::vector<std::function<asio::awaitable<void>()>> coroutines,
             std::chrono::seconds limit = std::chrono::seconds(20)) {
        int finished = 0;
        for (auto& c : coroutines) {
            asio::co_spawn(ioc_, c(), [&](std::exception_ptr e) {
                ++finished;
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        ADD_FAILURE() << "coroutine threw: " << ex.what();
                    }
                }
            });
        }
        ioc_.run_for(limit);
        EXPECT_EQ(finished, static_cast<int>(coroutines.size())) << "a coroutine hung";
        ioc_.restart();
    }

    // Handshakes a client and a server stream (either kind) with each other.
    template <class Client, class Server>
    void handshake(Client& client, Server& server) {
        run({[&]() -> asio::awaitable<void> {
                 auto [ec] = co_await client.async_handshake(ssl::stream_base::client, use_tuple);
                 EXPECT_FALSE(ec) << "client handshake: " << ec.message();
             },
             [&]() -> asio::awaitable<void> {
                 auto [ec] = co_await server.async_handshake(ssl::stream_base::server, use_tuple);
                 EXPECT_FALSE(ec) << "server handshake: " << ec.message();
             }});
    }

    // Both peers send `total` pattern bytes to each other at once, each reading and writing its
    // one stream concurrently (two coroutines per side). Once a side has sent its *_event_at
    // bytes, `event` runs on its connection before its next write (by default it requests a
    // TLS 1.3 KeyUpdate). The buffer memory of our streams is sampled after every read and
    // write.
    struct two_way_options {
        std::size_t total = 64 * 1024 * 1024;
        std::size_t client_event_at = SIZE_MAX;
        std::size_t server_event_at = SIZE_MAX;
        std::function<int(SSL*)> event = [](SSL* ssl) {
            return SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED);
        };
    };
    struct two_way_result {
        std::size_t client_got = 0;
        std::size_t server_got = 0;
        std::size_t max_buffer_capacity = 0;  // of our streams, sampled
        std::size_t samples = 0;
        double seconds = 0;
    };

    template <class Client, class Server>
    two_way_result two_way(Client& client, Server& server, const two_way_options& options) {
        two_way_result r;
        std::function<void()> sample = [&] {
            ++r.samples;
            if constexpr (std::is_same_v<Client, tls_stream>) {
                r.max_buffer_capacity = std::max(r.max_buffer_capacity, client.buffer_capacity());
            }
            if constexpr (std::is_same_v<Server, tls_stream>) {
                r.max_buffer_capacity = std::max(r.max_buffer_capacity, server.buffer_capacity());
            }
        };
        auto event_at = [&](SSL* ssl, std::size_t at) -> std::function<void(std::size_t)> {
            return [&options, ssl, at, happened = false](std::size_t sent) mutable {
                if (!happened && sent >= at) {
                    happened = true;
                    EXPECT_EQ(options.event(ssl), 1);
                }
            };
        };
        constexpr std::uint64_t client_seed = 0xc1, server_seed = 0x5e;
        auto started = std::chrono::steady_clock::now();
        run({[&]() -> asio::awaitable<void> {
                 co_await send_pattern(client, client_seed, options.total,
                                       event_at(native(client), options.client_event_at), sample);
             },
             [&]() -> asio::awaitable<void> {
                 r.client_got =
                     co_await receive_pattern(client, server_seed, options.total, sample);
             },
             [&]() -> asio::awaitable<void> {
                 co_await send_pattern(server, server_seed, options.total,
                                       event_at(native(server), options.server_event_at), sample);
             },
             [&]() -> asio::awaitable<void> {
                 r.server_got =
                     co_await receive_pattern(server, client_seed, options.total, sample);
             }},
            std::chrono::seconds(120));
        r.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        return r;
    }

    // What the two-way transfer of 64 MiB may hold in buffers: the input buffer at its large
    // size, the output of one gathered write (64 KiB of plaintext as four records), a little
    // spilled output; the bound leaves room for a second input buffer.
    static constexpr std::size_t two_way_memory_bound =
        2 * tls_stream::large_input + tls_stream::max_write;

    // Our client's writer is stuck (the server does not read; small socket buffers) when the
    // server runs `action` on its connection (something the client must answer) and sends a
    // message. Once the client has read the message, the server reads the whole upload.
    // Counts the handshake messages of `type` from then on.
    struct stuck_writer_result {
        bool write_pending_at_message = false;
        int client_sent_at_message = -1;  // messages of `type` the client had sent by then
        int client_sent = 0;
        int server_received = 0;
    };

    stuck_writer_result stuck_writer(bool server_is_ours, int type, int (*action)(SSL*)) {
        auto [c, s] = connected(/*small_buffers=*/true);
        tls_stream client(std::move(c), client_ctx_);
        std::unique_ptr<tls_stream> ours_server;
        std::unique_ptr<ssl::stream<beast::tcp_stream>> asio_server;
        SSL* server_ssl = nullptr;
        if (server_is_ours) {
            ours_server = std::make_unique<tls_stream>(std::move(s), server_ctx_);
            server_ssl = ours_server->native_handle();
        } else {
            asio_server =
                std::make_unique<ssl::stream<beast::tcp_stream>>(std::move(s), server_ctx_);
            server_ssl = asio_server->native_handle();
        }
        // Allows a post-handshake certificate request (an empty certificate will do).
        SSL_set_post_handshake_auth(client.native_handle(), 1);
        SSL_set_verify(server_ssl, SSL_VERIFY_PEER | SSL_VERIFY_POST_HANDSHAKE, nullptr);
        if (ours_server) {
            handshake(client, *ours_server);
        } else {
            handshake(client, *asio_server);
        }

        const std::size_t size = 8 * 1024 * 1024;
        const std::string message = "ping";
        signal writing(ioc_), message_read(ioc_);
        bool write_done = false;
        std::size_t server_got = 0;
        std::string got(16, '\0');
        stuck_writer_result r;
        handshake_messages client_seen{type}, server_seen{type};
        client_seen.watch(client.native_handle());
        server_seen.watch(server_ssl);
        auto serve = [&](auto& server) -> asio::awaitable<void> {
            co_await writing.wait();
            EXPECT_EQ(action(server_ssl), 1);
            co_await asio::async_write(server, asio::buffer(message), use_tuple);
            co_await message_read.wait();
            server_got = co_await receive_pattern(server, 9, size);
        };
        std::vector<std::function<asio::awaitable<void>()>> coroutines = {
            [&]() -> asio::awaitable<void> {
                co_await send_pattern(client, 9, size, {}, [&] {
                    if (!writing.fired()) {
                        writing.fire();  // a write is under way, and stays stuck
                    }
                });
                write_done = true;
            },
            [&]() -> asio::awaitable<void> {
                auto [ec, n] =
                    co_await asio::async_read(client, asio::buffer(got, message.size()), use_tuple);
                EXPECT_FALSE(ec) << ec.message();
                EXPECT_EQ(got.substr(0, n), message);
                r.write_pending_at_message = !write_done;
                r.client_sent_at_message = client_seen.sent;
                message_read.fire();
            }};
        if (ours_server) {
            coroutines.push_back([&]() { return serve(*ours_server); });
        } else {
            coroutines.push_back([&]() { return serve(*asio_server); });
        }
        run(coroutines);
        EXPECT_TRUE(write_done);
        EXPECT_EQ(server_got, size);
        EXPECT_LE(client.buffer_capacity(), two_way_memory_bound);
        r.client_sent = client_seen.sent;
        r.server_received = server_seen.received;
        return r;
    }

    static asio::awaitable<std::string> read_exactly(tls_stream& s, std::size_t n) {
        std::string got(n, '\0');
        auto [ec, m] = co_await asio::async_read(s, asio::buffer(got), use_tuple);
        EXPECT_FALSE(ec) << ec.message();
        got.resize(m);
        co_return got;
    }

    asio::io_context ioc_;
    ssl::context server_ctx_{ssl::context::tls_server};
    ssl::context client_ctx_{ssl::context::tls_client};
    static inline test::temp_dir* dir_ = nullptr;
    static inline test::test_pki* pki_ = nullptr;
    static inline test::temp_dir* other_dir_ = nullptr;
    static inline test::test_pki* other_pki_ = nullptr;
};

TEST_F(TlsStream, HandshakeAndDataBothWaysIncludingLargeTransfers) {
    auto [c, s] = connected();
    tls_stream client(std::move(c), client_ctx_);
    tls_stream server(std::move(s), server_ctx_);
    SSL_set_tlsext_host_name(client.native_handle(), "localhost");
    const std::string small = "hello";
    const std::string large = pattern(3 * 1024 * 1024 + 17);
    std::string server_got_small, server_got_large, client_got_large;
    run({[&]() -> asio::awaitable<void> {
             auto [ec] = co_await client.async_handshake(ssl::stream_base::client, use_tuple);
             EXPECT_FALSE(ec) << ec.message();
             co_await asio::async_write(client, asio::buffer(small), use_tuple);
             co_await asio::async_write(client, asio::buffer(large), use_tuple);
             client_got_large = co_await read_exactly(client, large.size());
         },
         [&]() -> asio::awaitable<void> {
             auto [ec] = co_await server.async_handshake(ssl::stream_base::server, use_tuple);
             EXPECT_FALSE(ec) << ec.message();
             server_got_small = co_await read_exactly(server, small.size());
             server_got_large = co_await read_exactly(server, large.size());
             co_await asio::async_write(server, asio::buffer(large), use_tuple);
         }});
    EXPECT_EQ(server_got_small, small);
    EXPECT_TRUE(server_got_large == large);
    EXPECT_TRUE(client_got_large == large);
    EXPECT_STREQ(SSL_get_version(client.native_handle()), "TLSv1.3");
}

TEST_F(TlsStream, InteroperatesWithAsioSslStreamOnBothSides) {
    for (bool ours_is_client : {true, false}) {
        SCOPED_TRACE(ours_is_client ? "ours as client" : "ours as server");
        auto [c, s] = connected();
        std::unique_ptr<tls_stream> ours;
        std::unique_ptr<ssl::stream<beast::tcp_stream>> theirs;
        if (ours_is_client) {
            ours = std::make_unique<tls_stream>(std::move(c), client_ctx_);
            theirs = std::make_unique<ssl::stream<beast::tcp_stream>>(std::move(s), server_ctx_);
        } else {
            ours = std::make_unique<tls_stream>(std::move(s), server_ctx_);
            theirs = std::make_unique<ssl::stream<beast::tcp_stream>>(std::move(c), client_ctx_);
        }
        const std::string request = pattern(700);
        const std::string response = pattern(200 * 1024);
        std::string ours_got, theirs_got;
        run({[&]() -> asio::awaitable<void> {
                 auto [ec] = co_await ours->async_handshake(
                     ours_is_client ? ssl::stream_base::client : ssl::stream_base::server,
                     use_tuple);
                 EXPECT_FALSE(ec) << ec.message();
                 co_await asio::async_write(*ours, asio::buffer(request), use_tuple);
                 ours_got = co_await read_exactly(*ours, response.size());
             },
             [&]() -> asio::awaitable<void> {
                 auto [ec] = co_await theirs->async_handshake(
                     ours_is_client ? ssl::stream_base::server : ssl::stream_base::client,
                     use_tuple);
                 EXPECT_FALSE(ec) << ec.message();
                 theirs_got.resize(request.size());
                 auto [rec, rn] =
                     co_await asio::async_read(*theirs, asio::buffer(theirs_got), use_tuple);
                 EXPECT_FALSE(rec) << rec.message();
                 co_await asio::async_write(*theirs, asio::buffer(response), use_tuple);
             }});
        EXPECT_EQ(theirs_got, request);
        EXPECT_TRUE(ours_got == response);
        ioc_.restart();
    }
}

TEST_F(TlsStream, ManySmallBuffersGoOutAsOneRecord) {
    auto [c, s] = connected();
    tls_stream client(std::move(c), client_ctx_);
    tls_stream server(std::move(s), server_ctx_);
    std::vector<std::string> pieces;
    std::vector<asio::const_buffer> sequence;
    std::string joined;
    for (int i = 0; i < 40; ++i) {
        pieces.push_back("field-" + std::to_string(i) + ": value\r\n");
    }
    for (const auto& p : pieces) {
        sequence.push_back(asio::buffer(p));
        joined += p;
    }
    std::size_t written = 0, first_read = 0;
    std::string got(joined.size() + 100, '\0');
    run({[&]() -> asio::awaitable<void> {
             co_await client.async_handshake(ssl::stream_base::client, use_tuple);
             auto [ec, n] = co_await client.async_write_some(sequence, use_tuple);
             EXPECT_FALSE(ec) << ec.message();
             written = n;
         },
         [&]() -> asio::awaitable<void> {
             co_await server.async_handshake(ssl::stream_base::server, use_tuple);
             auto [ec, n] = co_await server.async_read_some(asio::buffer(got), use_tuple);
             EXPECT_FALSE(ec) << ec.message();
             first_read = n;
         }});
    EXPECT_EQ(written, joined.size());
    // One TLS record decrypts in one read; a record per buffer would give only the first.
    ASSERT_EQ(first_read, joined.size());
    EXPECT_EQ(got.substr(0, first_read), joined);
}

TEST_F(TlsStream, CloseNotifyIsEofAndBareTcpCloseIsTruncation) {
    for (bool clean : {true, false}) {
        SCOPED_TRACE(clean ? "close_notify" : "bare close");
        auto [c, s] = connected();
        tls_stream client(std::move(c), client_ctx_);
        tls_stream server(std::move(s), server_ctx_);
        beast::error_code read_error;
        bool shutdown_done = false;
        run({[&]() -> asio::awaitable<void> {
                 co_await client.async_handshake(ssl::stream_base::client, use_tuple);
                 if (clean) {
                     // Completes without waiting for the server's close_notify.
                     auto [ec] = co_await client.async_shutdown(use_tuple);
                     EXPECT_FALSE(ec) << ec.message();
                     shutdown_done = true;
                 }
                 client.next_layer().close();
             },
             [&]() -> asio::awaitable<void> {
                 co_await server.async_handshake(ssl::stream_base::server, use_tuple);
                 char b[64];
                 auto [ec, n] = co_await server.async_read_some(asio::buffer(b), use_tuple);
                 read_error = ec;
             }});
        if (clean) {
            EXPECT_TRUE(shutdown_done);
            EXPECT_EQ(read_error, asio::error::eof) << read_error.message();
        } else {
            EXPECT_EQ(read_error, ssl::error::stream_truncated) << read_error.message();
        }
        ioc_.restart();
    }
}

TEST_F(TlsStream, UntrustedCertificateFailsTheHandshakeOnBothSides) {
    ssl::context untrusting{ssl::context::tls_client};
    untrusting.load_verify_file(other_pki_->ca_cert.string());
    untrusting.set_verify_mode(ssl::verify_peer);
    auto [c, s] = connected();
    tls_stream client(std::move(c), untrusting);
    tls_stream server(std::move(s), server_ctx_);
    beast::error_code client_error, server_error;
    run({[&]() -> asio::awaitable<void> {
             auto [ec] = co_await client.async_handshake(ssl::stream_base::client, use_tuple);
             client_error = ec;
         },
         [&]() -> asio::awaitable<void> {
             auto [ec] = co_await server.async_handshake(ssl::stream_base::server, use_tuple);
             server_error = ec;
         }});
    ASSERT_TRUE(client_error);
    EXPECT_EQ(&client_error.category(), &asio::error::get_ssl_category()) << client_error.message();
    EXPECT_NE(SSL_get_verify_result(client.native_handle()), X509_V_OK);
    // The server learns of it from the client's alert instead of waiting forever.
    EXPECT_TRUE(server_error);
}

TEST_F(TlsStream, ReadTimesOutThroughTheTcpStream) {
    auto [c, s] = connected();
    tls_stream client(std::move(c), client_ctx_);
    tls_stream server(std::move(s), server_ctx_);
    beast::error_code read_error;
    auto started = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration waited{};
    run({[&]() -> asio::awaitable<void> {
             co_await client.async_handshake(ssl::stream_base::client, use_tuple);
             // Keep the connection open but silent until the server has given up.
             char b[1];
             co_await client.async_read_some(asio::buffer(b), use_tuple);
         },
         [&]() -> asio::awaitable<void> {
             co_await server.async_handshake(ssl::stream_base::server, use_tuple);
             server.next_layer().expires_after(std::chrono::milliseconds(200));
             started = std::chrono::steady_clock::now();
             char b[64];
             auto [ec, n] = co_await server.async_read_some(asio::buffer(b), use_tuple);
             waited = std::chrono::steady_clock::now() - started;
             read_error = ec;
             client.next_layer().close();
         }});
    EXPECT_EQ(read_error, beast::error::timeout) << read_error.message();
    EXPECT_GE(waited, std::chrono::milliseconds(190));
}

TEST_F(TlsStream, IdleStreamGivesItsBuffersBack) {
    auto [c, s] = connected();
    tls_stream client(std::move(c), client_ctx_);
    tls_stream server(std::move(s), server_ctx_);
    const std::string body = pattern(1024 * 1024);
    std::size_t held_while_busy = 0;
    run({[&]() -> asio::awaitable<void> {
             co_await client.async_handshake(ssl::stream_base::client, use_tuple);
             co_await asio::async_write(client, asio::buffer(body), use_tuple);
         },
         [&]() -> asio::awaitable<void> {
             co_await server.async_handshake(ssl::stream_base::server, use_tuple);
             std::string got = co_await read_exactly(server, body.size());
             EXPECT_TRUE(got == body);
             held_while_busy = server.buffer_capacity();
         }});
    // A stream that received a large body reads in large pieces...
    EXPECT_GE(held_while_busy, tls_stream::large_input);
    EXPECT_GT(client.buffer_capacity(), 0u);
    // ...and holds nothing once idle.
    server.shrink_idle();
    client.shrink_idle();
    EXPECT_EQ(server.buffer_capacity(), 0u);
    EXPECT_EQ(client.buffer_capacity(), 0u);
}

TEST_F(TlsStream, RecordsArrivingInOneSocketReadAreReadOneByOne) {
    auto [c, s] = connected();
    tls_stream client(std::move(c), client_ctx_);
    tls_stream server(std::move(s), server_ctx_);
    // Two records arrive in one socket read; the second is then served from the buffer.
    std::string first = "first record", second = "second record";
    std::string got_first(first.size(), '\0'), got_second(second.size(), '\0');
    run({[&]() -> asio::awaitable<void> {
             co_await client.async_handshake(ssl::stream_base::client, use_tuple);
             co_await asio::async_write(client, asio::buffer(first), use_tuple);
             co_await asio::async_write(client, asio::buffer(second), use_tuple);
         },
         [&]() -> asio::awaitable<void> {
             co_await server.async_handshake(ssl::stream_base::server, use_tuple);
             asio::steady_timer t(ioc_);
             t.expires_after(std::chrono::milliseconds(100));
             co_await t.async_wait(use_tuple);  // both records are in the socket now
             auto [e1, n1] = co_await server.async_read_some(asio::buffer(got_first), use_tuple);
             EXPECT_EQ(n1, first.size());
             auto [e2, n2] = co_await server.async_read_some(asio::buffer(got_second), use_tuple);
             EXPECT_EQ(n2, second.size());
         }});
    EXPECT_EQ(got_first, first);
    EXPECT_EQ(got_second, second);
}

// --- Full duplex: one read and one write in flight at once on one stream ---

TEST_F(TlsStream, BothWaysAtOnceBetweenTwoOfOurStreams) {
    auto [c, s] = connected();
    tls_stream client(std::move(c), client_ctx_);
    tls_stream server(std::move(s), server_ctx_);
    handshake(client, server);
    const two_way_options options;
    two_way_result r = two_way(client, server, options);
    std::printf("[ timing   ] 64 MiB each way, ours <-> ours: %.2f s\n", r.seconds);
    EXPECT_EQ(r.client_got, options.total);
    EXPECT_EQ(r.server_got, options.total);
    // Memory stays flat: sampled after every one of thousands of reads and writes.
    EXPECT_GT(r.samples, 2000u);
    EXPECT_LE(r.max_buffer_capacity, two_way_memory_bound);
    EXPECT_GE(r.max_buffer_capacity, tls_stream::large_input);
    client.shrink_idle();
    server.shrink_idle();
    EXPECT_EQ(client.buffer_capacity(), 0u);
    EXPECT_EQ(server.buffer_capacity(), 0u);
}

TEST_F(TlsStream, BothWaysAtOnceWithAsioSslStream) {
    for (bool ours_is_client : {true, false}) {
        SCOPED_TRACE(ours_is_client ? "ours as client" : "ours as server");
        auto [c, s] = connected();
        const two_way_options options;
        two_way_result r;
        std::unique_ptr<tls_stream> ours;
        if (ours_is_client) {
            ours = std::make_unique<tls_stream>(std::move(c), client_ctx_);
            ssl::stream<beast::tcp_stream> theirs(std::move(s), server_ctx_);
            handshake(*ours, theirs);
            r = two_way(*ours, theirs, options);
        } else {
            ours = std::make_unique<tls_stream>(std::move(s), server_ctx_);
            ssl::stream<beast::tcp_stream> theirs(std::move(c), client_ctx_);
            handshake(theirs, *ours);
            r = two_way(theirs, *ours, options);
        }
        std::printf("[ timing   ] 64 MiB each way, ours as %s <-> asio::ssl::stream: %.2f s\n",
                    ours_is_client ? "client" : "server", r.seconds);
        EXPECT_EQ(r.client_got, options.total);
        EXPECT_EQ(r.server_got, options.total);
        EXPECT_LE(r.max_buffer_capacity, two_way_memory_bound);
        ours->shrink_idle();
        EXPECT_EQ(ours->buffer_capacity(), 0u);
    }
}

TEST_F(TlsStream, KeyUpdateDuringATwoWayTransfer) {
    // TLS 1.3 KeyUpdate with update_requested: the receiver answers with a KeyUpdate of its own
    // from within SSL_read, usually while its writer is sending.
    enum class peer { ours, asio_server, asio_client };
    struct scenario {
        const char* name;
        peer other;
        bool client_requests;
        bool server_requests;
    };
    const std::size_t total = 16 * 1024 * 1024;
    const std::size_t at = 4 * 1024 * 1024;
    for (const scenario& sc :
         {scenario{"ours <-> ours, server requests", peer::ours, false, true},
          scenario{"ours <-> ours, both request", peer::ours, true, true},
          scenario{"ours client, asio server requests", peer::asio_server, false, true},
          scenario{"asio client requests, ours server", peer::asio_client, true, false}}) {
        SCOPED_TRACE(sc.name);
        auto [c, s] = connected();
        two_way_options options;
        options.total = total;
        options.client_event_at = sc.client_requests ? at : SIZE_MAX;
        options.server_event_at = sc.server_requests ? at : SIZE_MAX;
        two_way_result r;
        handshake_messages client_seen{SSL3_MT_KEY_UPDATE}, server_seen{SSL3_MT_KEY_UPDATE};
        auto check = [&](auto& client, auto& server) {
            client_seen.watch(native(client));
            server_seen.watch(native(server));
            handshake(client, server);
            r = two_way(client, server, options);
        };
        if (sc.other == peer::ours) {
            tls_stream client(std::move(c), client_ctx_);
            tls_stream server(std::move(s), server_ctx_);
            check(client, server);
        } else if (sc.other == peer::asio_server) {
            tls_stream client(std::move(c), client_ctx_);
            ssl::stream<beast::tcp_stream> server(std::move(s), server_ctx_);
            check(client, server);
        } else {
            ssl::stream<beast::tcp_stream> client(std::move(c), client_ctx_);
            tls_stream server(std::move(s), server_ctx_);
            check(client, server);
        }
        EXPECT_EQ(r.client_got, total);
        EXPECT_EQ(r.server_got, total);
        // Every request was received and answered (an answer never asks for another).
        for (auto* seen : {&client_seen, &server_seen}) {
            EXPECT_GE(seen->sent, 1);
            EXPECT_GE(seen->received, 1);
        }
        EXPECT_GE(client_seen.received, sc.server_requests ? 1 : 0);
        EXPECT_GE(server_seen.received, sc.client_requests ? 1 : 0);
        EXPECT_LE(r.max_buffer_capacity, two_way_memory_bound);
    }
}

TEST_F(TlsStream, ReadWaitingForThePeerWhileAWriteGoesThrough) {
    for (bool peer_is_ours : {true, false}) {
        SCOPED_TRACE(peer_is_ours ? "peer: ours" : "peer: asio::ssl::stream");
        auto [c, s] = connected();
        tls_stream client(std::move(c), client_ctx_);
        std::unique_ptr<tls_stream> ours_server;
        std::unique_ptr<ssl::stream<beast::tcp_stream>> asio_server;
        const std::size_t size = 1024 * 1024;
        const std::string answer = "answer after the upload";
        bool write_done = false, read_done = false, read_done_before_write = false;
        std::string got(64, '\0');
        std::size_t got_n = 0, server_got = 0;
        auto serve = [&](auto& server) -> asio::awaitable<void> {
            server_got = co_await receive_pattern(server, 7, size);
            // The client's read is still waiting: nothing was sent to it yet.
            EXPECT_FALSE(read_done);
            co_await asio::async_write(server, asio::buffer(answer), use_tuple);
        };
        auto client_side = [&]() -> std::vector<std::function<asio::awaitable<void>()>> {
            return {[&]() -> asio::awaitable<void> {
                        auto [ec, n] =
                            co_await client.async_read_some(asio::buffer(got), use_tuple);
                        EXPECT_FALSE(ec) << ec.message();
                        got_n = n;
                        read_done = true;
                        read_done_before_write = !write_done;
                    },
                    [&]() -> asio::awaitable<void> {
                        // The read above is pending on the socket now.
                        co_await send_pattern(client, 7, size);
                        write_done = true;
                    }};
        };
        auto coroutines = client_side();
        if (peer_is_ours) {
            ours_server = std::make_unique<tls_stream>(std::move(s), server_ctx_);
            handshake(client, *ours_server);
            coroutines.push_back([&]() { return serve(*ours_server); });
        } else {
            asio_server =
                std::make_unique<ssl::stream<beast::tcp_stream>>(std::move(s), server_ctx_);
            handshake(client, *asio_server);
            coroutines.push_back([&]() { return serve(*asio_server); });
        }
        run(coroutines);
        EXPECT_TRUE(write_done);
        EXPECT_TRUE(read_done);
        EXPECT_FALSE(read_done_before_write);
        EXPECT_EQ(server_got, size);
        EXPECT_EQ(got.substr(0, got_n), answer);
    }
}

TEST_F(TlsStream, KeyUpdateArrivesWhileTheWriteWaitsForThePeer) {
    // The server requests a KeyUpdate while our writer is stuck: the read delivers the message
    // at once, and the answer (OpenSSL 3.0 sends it with the next SSL_write, not from SSL_read)
    // follows the stuck write's records. The server decrypts all of it.
    for (bool server_is_ours : {true, false}) {
        SCOPED_TRACE(server_is_ours ? "server: ours" : "server: asio::ssl::stream");
        stuck_writer_result r = stuck_writer(server_is_ours, SSL3_MT_KEY_UPDATE, [](SSL* ssl) {
            return SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED);
        });
        EXPECT_TRUE(r.write_pending_at_message);
        EXPECT_EQ(r.client_sent, 1);
        EXPECT_EQ(r.server_received, 1);
    }
}

TEST_F(TlsStream, ReadAnswersPostHandshakeAuthWhileTheWriteWaitsForThePeer) {
    // TLS 1.3 post-handshake authentication: the server asks for a client certificate while our
    // writer is stuck. The client answers (Certificate, Finished) from within SSL_read, during
    // the writer's flush: the answer waits in the spill buffer for the writer to send it after
    // its own bytes, and the read delivers the server's message without waiting for the write.
    for (bool server_is_ours : {true, false}) {
        SCOPED_TRACE(server_is_ours ? "server: ours" : "server: asio::ssl::stream");
        stuck_writer_result r =
            stuck_writer(server_is_ours, SSL3_MT_CERTIFICATE, SSL_verify_client_post_handshake);
        EXPECT_TRUE(r.write_pending_at_message);
        EXPECT_EQ(r.client_sent_at_message, 1);  // written by the read, the write still stuck
        EXPECT_EQ(r.server_received, 1);
    }
}

TEST_F(TlsStream, WriteStartedWhileTheReadSendsItsAnswerFollowsIt) {
    // The read is sending handshake messages it produced (the answer to a post-handshake
    // certificate request) when a write starts: the write waits for that flush, then sends.
    auto [c, s] = connected();
    tls_stream client(std::move(c), client_ctx_);
    tls_stream server(std::move(s), server_ctx_);
    SSL_set_post_handshake_auth(client.native_handle(), 1);
    SSL_set_verify(server.native_handle(), SSL_VERIFY_PEER | SSL_VERIFY_POST_HANDSHAKE, nullptr);
    handshake(client, server);
    const std::size_t size = 1024 * 1024;
    const std::string ping = "ping";
    std::string got(16, '\0');
    std::size_t got_n = 0, server_got = 0, written = 0;
    beast::error_code write_error;
    bool write_done = false;
    std::string body(size, '\0');
    pattern_bytes(3, 0, reinterpret_cast<unsigned char*>(body.data()), size);
    // Runs inside our SSL_read when the request arrives, before the read sends its answer:
    // the write then starts while that answer is in flight.
    handshake_messages requests{SSL3_MT_CERTIFICATE_REQUEST}, server_certs{SSL3_MT_CERTIFICATE};
    requests.watch(client.native_handle());
    server_certs.watch(server.native_handle());
    requests.on_received = [&] {
        asio::post(ioc_, [&] {
            asio::async_write(client, asio::buffer(body), [&](beast::error_code ec, std::size_t n) {
                write_error = ec;
                written = n;
                write_done = true;
            });
        });
    };
    run({[&]() -> asio::awaitable<void> {
             auto [ec, n] = co_await client.async_read_some(asio::buffer(got), use_tuple);
             EXPECT_FALSE(ec) << ec.message();
             got_n = n;
         },
         [&]() -> asio::awaitable<void> {
             EXPECT_EQ(SSL_verify_client_post_handshake(server.native_handle()), 1);
             co_await asio::async_write(server, asio::buffer(ping), use_tuple);
             server_got = co_await receive_pattern(server, 3, size);
         }});
    EXPECT_EQ(requests.received, 1);
    EXPECT_EQ(got.substr(0, got_n), ping);
    EXPECT_TRUE(write_done);
    EXPECT_FALSE(write_error) << write_error.message();
    EXPECT_EQ(written, size);
    EXPECT_EQ(server_got, size);
    EXPECT_EQ(server_certs.received, 1);
}

TEST_F(TlsStream, PendingReadTimesOutWhileWritesGoOn) {
    auto [c, s] = connected();
    tls_stream client(std::move(c), client_ctx_);
    tls_stream server(std::move(s), server_ctx_);
    handshake(client, server);
    std::vector<unsigned char> chunk(256 * 1024);
    pattern_bytes(5, 0, chunk.data(), chunk.size());
    std::size_t written = 0, written_when_timed_out = 0, client_got = 0;
    beast::error_code read_error, write_error, client_error;
    std::chrono::steady_clock::duration waited{};
    std::function<void()> write_next = [&] {
        asio::async_write(server, asio::buffer(chunk), [&](beast::error_code ec, std::size_t n) {
            if (ec) {
                write_error = ec;
                return;
            }
            written += n;
            write_next();
        });
    };
    run({[&]() -> asio::awaitable<void> {
             // A write is being sent now, so the deadline below is the read's alone (Beast
             // applies expires_after to the directions with nothing pending).
             write_next();
             server.next_layer().expires_after(std::chrono::milliseconds(200));
             auto started = std::chrono::steady_clock::now();
             char b[64];
             auto [ec, n] = co_await server.async_read_some(asio::buffer(b), use_tuple);
             waited = std::chrono::steady_clock::now() - started;
             read_error = ec;
             written_when_timed_out = written;
         },
         [&]() -> asio::awaitable<void> {
             std::vector<char> b(64 * 1024);
             for (;;) {
                 auto [ec, n] = co_await client.async_read_some(asio::buffer(b), use_tuple);
                 if (ec) {
                     client_error = ec;
                     break;
                 }
                 client_got += n;
             }
         }});
    EXPECT_EQ(read_error, beast::error::timeout) << read_error.message();
    EXPECT_GE(waited, std::chrono::milliseconds(190));
    // Writes went on meanwhile, and stopped once the timeout closed the socket.
    EXPECT_GE(written_when_timed_out, 4 * chunk.size());
    EXPECT_TRUE(write_error);
    EXPECT_GE(client_got, written_when_timed_out);
    EXPECT_EQ(client_error, ssl::error::stream_truncated) << client_error.message();
}

TEST_F(TlsStream, Tls12RenegotiationDuringAnUploadWithAReadPending) {
    // The server renegotiates (TLS 1.2) in the middle of an upload while the client has a read
    // pending. The client's read answers the HelloRequest and runs the new handshake, while its
    // write (which OpenSSL makes finish that handshake first) waits for the input the read
    // brings in and for the handshake messages the read sends. asio::ssl::stream as the client
    // stalls in this scenario (its read waits for the write's flush); with application data
    // flowing both ways OpenSSL cannot renegotiate at all (asio::ssl::stream on both sides
    // fails with "unexpected record" too), hence an upload.
    ssl::context client12{ssl::context::tls_client};
    client12.load_verify_file(pki_->ca_cert.string());
    client12.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_max_proto_version(client12.native_handle(), TLS1_2_VERSION);
    for (bool server_is_ours : {true, false}) {
        SCOPED_TRACE(server_is_ours ? "server: ours" : "server: asio::ssl::stream");
        auto [c, s] = connected();
        tls_stream client(std::move(c), client12);
        const std::size_t size = 8 * 1024 * 1024;
        const std::string hello = "hello", done = "done";
        std::size_t server_got = 0;
        std::string client_got;
        auto upload = [&](auto& server) {
            handshake(client, server);
            EXPECT_STREQ(SSL_get_version(client.native_handle()), "TLSv1.2");
            run({[&]() -> asio::awaitable<void> { co_await send_pattern(client, 11, size); },
                 [&]() -> asio::awaitable<void> {
                     std::string b(64, '\0');
                     while (client_got.size() < hello.size() + done.size()) {
                         auto [ec, n] = co_await client.async_read_some(asio::buffer(b), use_tuple);
                         if (ec) {
                             ADD_FAILURE() << "client read: " << ec.message();
                             break;
                         }
                         client_got.append(b, 0, n);
                     }
                 },
                 [&]() -> asio::awaitable<void> {
                     server_got = co_await receive_pattern(server, 11, 2 * 1024 * 1024);
                     // The next write sends a HelloRequest first; the server's reads then run
                     // the handshake (OpenSSL takes application data in between only there).
                     EXPECT_EQ(SSL_renegotiate(native(server)), 1);
                     co_await asio::async_write(server, asio::buffer(hello), use_tuple);
                     server_got +=
                         co_await receive_pattern(server, 11, size - server_got, {}, server_got);
                     co_await asio::async_write(server, asio::buffer(done), use_tuple);
                 }});
        };
        if (server_is_ours) {
            tls_stream server(std::move(s), server_ctx_);
            upload(server);
        } else {
            ssl::stream<beast::tcp_stream> server(std::move(s), server_ctx_);
            upload(server);
        }
        EXPECT_EQ(server_got, size);
        EXPECT_EQ(client_got, hello + done);
        EXPECT_EQ(SSL_total_renegotiations(client.native_handle()), 1);
    }
}

// --- Buffer bounds at N-1, N and N+1: max_write per write, small_input and large_input ---

// The plaintext read sizes each edge is read with.
constexpr std::size_t edge_read_sizes[] = {1, 4095, 4096, 4097, 65536};

// Reads exactly n bytes of pattern `seed` from `offset` on, in reads of at most `piece` bytes,
// checking each; returns how many arrived intact.
asio::awaitable<std::size_t> receive_in_pieces(tls_stream& s, std::uint64_t seed,
                                               std::uint64_t offset, std::size_t n,
                                               std::size_t piece) {
    std::vector<unsigned char> buffer(piece), expected(piece);
    std::size_t got = 0;
    while (got < n) {
        auto [ec, m] = co_await s.async_read_some(
            asio::buffer(buffer.data(), std::min(piece, n - got)), use_tuple);
        if (ec) {
            ADD_FAILURE() << "read at " << offset + got << ": " << ec.message();
            break;
        }
        pattern_bytes(seed, offset + got, expected.data(), m);
        if (m == 0 || std::memcmp(buffer.data(), expected.data(), m) != 0) {
            ADD_FAILURE() << "wrong bytes within [" << offset + got << ", " << offset + got + m
                          << ")";
            break;
        }
        got += m;
    }
    co_return got;
}

// A TLS client the test drives by hand through memory BIOs over a plain socket, so that the
// ciphertext it sends reaches the peer in exactly the pieces the test chooses.
class manual_tls_client {
  public:
    manual_tls_client(ssl::context& ctx, tcp::socket socket)
        : socket_(std::move(socket)), ssl_(SSL_new(ctx.native_handle())) {
        SSL_set_bio(ssl_, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
        SSL_set_connect_state(ssl_);
    }
    ~manual_tls_client() { SSL_free(ssl_); }
    manual_tls_client(const manual_tls_client&) = delete;
    manual_tls_client& operator=(const manual_tls_client&) = delete;

    asio::awaitable<void> handshake() {
        for (;;) {
            int r = SSL_do_handshake(ssl_);
            std::string out = take_output();
            if (!out.empty()) {
                auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), use_tuple);
                if (ec) {
                    ADD_FAILURE() << "manual client write: " << ec.message();
                    co_return;
                }
            }
            if (r == 1) {
                co_return;
            }
            if (SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) {
                ADD_FAILURE() << "manual client handshake failed";
                co_return;
            }
            char buffer[16384];
            auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buffer), use_tuple);
            if (ec) {
                ADD_FAILURE() << "manual client read: " << ec.message();
                co_return;
            }
            BIO_write(SSL_get_rbio(ssl_), buffer, static_cast<int>(n));
        }
    }

    // The records of `n` pattern bytes of `seed` from `offset` on (one SSL_write), not sent.
    std::string seal(std::uint64_t seed, std::uint64_t offset, std::size_t n) {
        std::vector<unsigned char> plain(n);
        pattern_bytes(seed, offset, plain.data(), n);
        std::size_t written = 0;
        EXPECT_EQ(SSL_write_ex(ssl_, plain.data(), n, &written), 1);
        EXPECT_EQ(written, n);
        return take_output();
    }

    // Sends `ciphertext` in one write.
    void send(const std::string& ciphertext) { asio::write(socket_, asio::buffer(ciphertext)); }

  private:
    std::string take_output() {
        std::string out;
        char buffer[16384];
        int n = 0;
        while ((n = BIO_read(SSL_get_wbio(ssl_), buffer, sizeof buffer)) > 0) {
            out.append(buffer, static_cast<std::size_t>(n));
        }
        return out;
    }

    tcp::socket socket_;
    SSL* ssl_;
};

// Bytes waiting in the kernel to be read from `s`'s socket.
std::size_t socket_unread(tls_stream& s) {
    int n = 0;
    EXPECT_EQ(::ioctl(s.next_layer().socket().native_handle(), FIONREAD, &n), 0);
    return static_cast<std::size_t>(n);
}

// Waits (at most 5 s) until `n` bytes are waiting on `s`'s socket, so that its next socket
// read sees them all.
void wait_unread(tls_stream& s, std::size_t n) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (socket_unread(s) < n && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(socket_unread(s), n);
}

class TlsStreamBounds : public TlsStream {
  protected:
    static constexpr std::uint64_t seed = 0xb0;

    // Our server stream and a manual client, handshaken; the server's buffers are freed (as
    // idle) after it read a one-byte record, whose size tells the record overhead.
    struct manual_pair {
        std::unique_ptr<tls_stream> server;
        std::unique_ptr<manual_tls_client> client;
        std::size_t overhead = 0;  // ciphertext bytes a record adds to its plaintext
        std::uint64_t offset = 0;  // plaintext sent so far
    };

    manual_pair manual_connection() {
        manual_pair p;
        auto [c, s] = connected();
        p.server = std::make_unique<tls_stream>(std::move(s), server_ctx_);
        p.client = std::make_unique<manual_tls_client>(client_ctx_, std::move(c.socket()));
        run({[&]() -> asio::awaitable<void> {
                 auto [ec] =
                     co_await p.server->async_handshake(ssl::stream_base::server, use_tuple);
                 EXPECT_FALSE(ec) << "server handshake: " << ec.message();
             },
             [&]() -> asio::awaitable<void> { co_await p.client->handshake(); }});
        std::string probe = p.client->seal(seed, 0, 1);
        p.overhead = probe.size() - 1;
        p.client->send(probe);
        expect_received(p, 1, 1);
        p.server->shrink_idle();
        EXPECT_EQ(p.server->buffer_capacity(), 0u);
        return p;
    }

    // Seals `plain` bytes, expects `ciphertext` bytes of records, sends them in one write and
    // waits until the server's socket holds them all.
    void send_records(manual_pair& p, std::size_t plain, std::size_t ciphertext) {
        std::string records = p.client->seal(seed, p.offset, plain);
        ASSERT_EQ(records.size(), ciphertext) << "record overhead " << p.overhead;
        p.client->send(records);
        wait_unread(*p.server, ciphertext);
    }

    // Reads the next `n` plaintext bytes in reads of `piece`, expecting them exact.
    void expect_received(manual_pair& p, std::size_t n, std::size_t piece) {
        std::size_t got = 0;
        run({[&]() -> asio::awaitable<void> {
            got = co_await receive_in_pieces(*p.server, seed, p.offset, n, piece);
        }});
        EXPECT_EQ(got, n);
        p.offset += n;
    }
};

TEST_F(TlsStreamBounds, WriteSomeTakesAtMost64KiBAndThePeerGetsExactlyWhatWasWritten) {
    auto [c, s] = connected();
    tls_stream client(std::move(c), client_ctx_);
    tls_stream server(std::move(s), server_ctx_);
    handshake(client, server);
    ASSERT_EQ(tls_stream::max_write, 65536u);
    const std::size_t sizes[] = {65535, 65536, 65537, 131071, 131072, 131073};
    enum form { single_some, gathered_some, whole };
    struct transfer {
        std::size_t size;
        form how;
        std::size_t piece;  // the reader's read size
    };
    std::vector<transfer> transfers;
    std::size_t i = 0;
    for (std::size_t size : sizes) {
        for (form how : {single_some, gathered_some, whole}) {
            transfers.push_back({size, how, edge_read_sizes[i++ % std::size(edge_read_sizes)]});
        }
    }
    std::size_t received = 0, total = 0;
    for (const auto& t : transfers) {
        total += t.size;
    }
    beast::error_code end;
    std::size_t after_end = 0;
    run({[&]() -> asio::awaitable<void> {
             std::uint64_t offset = 0;
             std::vector<unsigned char> data(131073);
             for (const auto& t : transfers) {
                 pattern_bytes(seed, offset, data.data(), t.size);
                 if (t.how == whole) {
                     auto [ec, n] = co_await asio::async_write(
                         client, asio::buffer(data.data(), t.size), use_tuple);
                     EXPECT_FALSE(ec) << ec.message();
                     EXPECT_EQ(n, t.size);
                 } else {
                     // Each write_some takes min(what is left, 64 KiB); the caller writes the
                     // rest: ceil(size / 64 KiB) calls.
                     std::size_t sent = 0, calls = 0;
                     while (sent < t.size) {
                         const std::size_t left = t.size - sent;
                         const unsigned char* at = data.data() + sent;
                         beast::error_code ec;
                         std::size_t n = 0;
                         if (t.how == single_some) {
                             std::tie(ec, n) = co_await client.async_write_some(
                                 asio::buffer(at, left), use_tuple);
                         } else {
                             std::array<asio::const_buffer, 3> pieces{
                                 asio::buffer(at, left / 3), asio::buffer(at + left / 3, left / 3),
                                 asio::buffer(at + 2 * (left / 3), left - 2 * (left / 3))};
                             std::tie(ec, n) = co_await client.async_write_some(pieces, use_tuple);
                         }
                         ++calls;
                         if (ec) {
                             ADD_FAILURE() << "write_some: " << ec.message();
                             co_return;
                         }
                         EXPECT_EQ(n, std::min(left, tls_stream::max_write))
                             << "size " << t.size << " form " << t.how << " at " << sent;
                         if (n == 0) {
                             co_return;
                         }
                         sent += n;
                     }
                     EXPECT_EQ(calls, (t.size + tls_stream::max_write - 1) / tls_stream::max_write)
                         << "size " << t.size;
                 }
                 offset += t.size;
             }
             auto [ec] = co_await client.async_shutdown(use_tuple);
             EXPECT_FALSE(ec) << ec.message();
         },
         [&]() -> asio::awaitable<void> {
             for (const auto& t : transfers) {
                 std::size_t got =
                     co_await receive_in_pieces(server, seed, received, t.size, t.piece);
                 EXPECT_EQ(got, t.size) << "size " << t.size << " form " << t.how;
                 received += got;
                 if (got != t.size) {
                     co_return;
                 }
             }
             // Nothing more than was written: the next read is the close_notify.
             char b[16];
             std::tie(end, after_end) = co_await server.async_read_some(asio::buffer(b), use_tuple);
         }});
    EXPECT_EQ(received, total);
    EXPECT_EQ(end, asio::error::eof) << end.message();
    EXPECT_EQ(after_end, 0u);
}

// The first socket read fills the 4 KiB input buffer when 4096 or more bytes of records are
// waiting; the buffer grows to 34 KiB at the next socket read: within the same record (4097)
// or for the next record (4096), never after 4095.
TEST_F(TlsStreamBounds, SmallInputBufferGrowsOnlyOnceAReadFillsIt) {
    ASSERT_EQ(tls_stream::small_input, 4096u);
    ASSERT_EQ(tls_stream::large_input, 34u * 1024);
    for (std::size_t first : {std::size_t{4095}, std::size_t{4096}, std::size_t{4097}}) {
        for (std::size_t piece : edge_read_sizes) {
            SCOPED_TRACE("first record " + std::to_string(first) + " bytes, reads of " +
                         std::to_string(piece));
            manual_pair p = manual_connection();
            ASSERT_GT(p.overhead, 0u);
            const std::size_t plain = first - p.overhead;
            send_records(p, plain, first);
            expect_received(p, plain, piece);
            // 4097 needed a second socket read for the record's last byte, in the grown buffer.
            EXPECT_EQ(p.server->buffer_capacity(),
                      first > 4096 ? tls_stream::large_input : tls_stream::small_input);
            EXPECT_EQ(socket_unread(*p.server), 0u);
            send_records(p, 1000, 1000 + p.overhead);
            expect_received(p, 1000, piece);
            EXPECT_EQ(p.server->buffer_capacity(),
                      first >= 4096 ? tls_stream::large_input : tls_stream::small_input);
        }
    }
}

// Once grown, one socket read takes at most 34 KiB of records: two full 16 KiB records and
// part of a third, with the rest left in the socket for the next read.
TEST_F(TlsStreamBounds, LargeInputBufferTakes34KiBOfRecordsPerSocketRead) {
    const std::size_t full = 16384;  // the most plaintext a TLS record holds
    for (int batch = 0; batch < 5; ++batch) {
        for (std::size_t piece : edge_read_sizes) {
            manual_pair p = manual_connection();
            ASSERT_GT(p.overhead, 0u);
            // Grows the input buffer: a first record of exactly 4 KiB fills it.
            send_records(p, tls_stream::small_input - p.overhead, tls_stream::small_input);
            expect_received(p, tls_stream::small_input - p.overhead, 4096);
            const std::size_t record = full + p.overhead;
            // The batch: two full records (fit), 34 KiB - 1, 34 KiB, 34 KiB + 1 of records
            // (two full and a smaller third), three full records (do not fit).
            const std::size_t totals[] = {2 * record, tls_stream::large_input - 1,
                                          tls_stream::large_input, tls_stream::large_input + 1,
                                          3 * record};
            const std::size_t total = totals[batch];
            SCOPED_TRACE("batch of " + std::to_string(total) + " bytes, reads of " +
                         std::to_string(piece));
            const std::size_t plain = batch == 0   ? 2 * full
                                      : batch == 4 ? 3 * full
                                                   : total - 3 * p.overhead;
            ASSERT_EQ(plain % full == 0 ? plain / full : plain / full + 1, batch == 0 ? 2u : 3u);
            send_records(p, plain, total);
            // The first read of plaintext made one socket read, into the grown buffer.
            std::size_t got = 0;
            run({[&]() -> asio::awaitable<void> {
                got = co_await receive_in_pieces(*p.server, seed, p.offset, 1, 1);
            }});
            ASSERT_EQ(got, 1u);
            p.offset += 1;
            EXPECT_EQ(p.server->buffer_capacity(), tls_stream::large_input);
            EXPECT_EQ(socket_unread(*p.server),
                      total > tls_stream::large_input ? total - tls_stream::large_input : 0u);
            expect_received(p, plain - 1, piece);
            EXPECT_EQ(socket_unread(*p.server), 0u);
            EXPECT_EQ(p.server->buffer_capacity(), tls_stream::large_input);
        }
    }
}

}  // namespace
}  // namespace llm_proxy::proxy

// The engine's own TLS stream (src/proxy/tls_stream.*) over real loopback sockets, against
// itself and against asio::ssl::stream as an independent implementation.

#include "proxy/tls_stream.hpp"

#include <gtest/gtest.h>

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
#include <functional>
#include <memory>
#include <string>
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

    // Two connected loopback TCP streams: {client side, server side}.
    std::pair<beast::tcp_stream, beast::tcp_stream> connected() {
        tcp::acceptor acceptor(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        tcp::socket client(ioc_);
        client.connect(acceptor.local_endpoint());
        tcp::socket server = acceptor.accept();
        client.set_option(tcp::no_delay(true));
        server.set_option(tcp::no_delay(true));
        return {beast::tcp_stream(std::move(client)), beast::tcp_stream(std::move(server))};
    }

    // Runs coroutines to completion, bounded in time; fails the test on an exception or on
    // a coroutine still running at the deadline.
    void run(std::vector<std::function<asio::awaitable<void>()>> coroutines) {
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
        ioc_.run_for(std::chrono::seconds(20));
        EXPECT_EQ(finished, static_cast<int>(coroutines.size())) << "a coroutine hung";
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

}  // namespace
}  // namespace llm_proxy::proxy

// Selective interception: CONNECTs that are not intercepted become blind tunnels (the client
// talks TLS with the upstream itself), plain-HTTP requests to ignored hosts pass unobserved.
#include <sys/socket.h>

#include <atomic>
#include <regex>
#include <thread>
#include <vector>

#include "e2e_fixture.hpp"
#include "support/raw_socket.hpp"
#include "tunnel_kit.hpp"

namespace llm_proxy::test {

class Intercept : public e2e_test {
  protected:
    // A client through the proxy that trusts only the test CA (the upstream's issuer).
    http_client upstream_trusting_client() {
        auto o = proxy_->make_client_options(pki_.ca_cert.string());
        return http_client(o);
    }
    std::string test_ca() const { return certificate_subject_of_file(pki_.ca_cert); }
    std::string proxy_ca() const { return certificate_subject_of_file(proxy_ca_cert()); }

    // Stops the proxy (the record writer drains on exit) and returns every record written.
    std::vector<nlohmann::json> records_after_stop() {
        auto code = proxy_->stop();
        EXPECT_EQ(code, 0);
        return wait_for_records(0, std::chrono::milliseconds(0));
    }
    static std::size_t count_url(const std::vector<nlohmann::json>& records,
                                 const std::string& url) {
        std::size_t n = 0;
        for (const auto& r : records) {
            n += r["request"]["url"] == url ? 1 : 0;
        }
        return n;
    }
};

TEST_F(Intercept, IgnoredHostIsTunnelledBlindWithTheUpstreamsCertificate) {
    start_dir_logger({"--ignore-hosts", "^upstream\\.TEST:443$"});
    ASSERT_NE(test_ca(), proxy_ca());

    auto blind = upstream_trusting_client();
    auto r = blind.get("https://upstream.test/echo");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(certificate_issuer(blind.peer_certificate_pem()), test_ca());
    // The proxy added nothing: the upstream saw exactly the client's request.
    auto echoed = nlohmann::json::parse(r.body);
    EXPECT_EQ(echoed["target"], "/echo");
    blind.close();  // the tunnel ends with the client's connection

    // A host that does not match is intercepted as before: our certificate, a record.
    auto intercepted = proxied_client();
    auto r2 = intercepted.get("https://api.openai.com/echo");
    EXPECT_EQ(r2.status, 200u);
    EXPECT_EQ(certificate_issuer(intercepted.peer_certificate_pem()), proxy_ca());

    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u) << "no record for the blind tunnel without --log-tunnels";
    EXPECT_EQ(records[0]["request"]["url"], "https://api.openai.com/echo");
}

TEST_F(Intercept, AClientTrustingOnlyTheUpstreamFailsWhenIntercepted) {
    // The counter-check of the test above: without --ignore-hosts the same client sees the
    // proxy's certificate and refuses it.
    start_proxy({"simple"});
    auto client = upstream_trusting_client();
    EXPECT_THROW(client.get("https://upstream.test/echo"), std::exception);
}

TEST_F(Intercept, AllowHostsInterceptsOnlyMatchingTargets) {
    start_dir_logger({"--allow-hosts", "^api\\.openai\\.com:"});
    auto intercepted = proxied_client();
    EXPECT_EQ(intercepted.get("https://api.openai.com/echo").status, 200u);
    EXPECT_EQ(certificate_issuer(intercepted.peer_certificate_pem()), proxy_ca());

    auto blind = upstream_trusting_client();
    EXPECT_EQ(blind.get("https://upstream.test/echo").status, 200u);
    EXPECT_EQ(certificate_issuer(blind.peer_certificate_pem()), test_ca());
    blind.close();

    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["request"]["url"], "https://api.openai.com/echo");
}

TEST_F(Intercept, InterceptLlmKeepsLlmHostsAndTunnelsTheRest) {
    auto port = std::to_string(upstream_->port());
    start_dir_logger({"--intercept", "llm", "--llm-host", "upstream.test=openai", "--connect-to",
                      "localhost:443:127.0.0.1:" + port});
    auto llm = proxied_client();
    auto r = llm.post("https://upstream.test/v1/chat/completions",
                      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})",
                      {{"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(certificate_issuer(llm.peer_certificate_pem()), proxy_ca());

    auto other = upstream_trusting_client();
    EXPECT_EQ(other.get("https://localhost/echo").status, 200u);
    EXPECT_EQ(certificate_issuer(other.peer_certificate_pem()), test_ca());
    other.close();

    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["request"]["url"], "https://upstream.test/v1/chat/completions");
    EXPECT_TRUE(records[0].contains("llm")) << records[0].dump(2);
}

TEST_F(Intercept, ServerNameDecidesWhenTheTargetIsAnAddress) {
    // CONNECT 127.0.0.1:<port> with SNI upstream.test: only the server name matches.
    auto url = "https://127.0.0.1:" + std::to_string(upstream_->port()) + "/echo";
    start_dir_logger({"--log-tunnels", "--ignore-hosts", "^upstream\\.test$"});
    auto o = proxy_->make_client_options(pki_.ca_cert.string());
    o.tls_host = "upstream.test";
    http_client blind(o);
    EXPECT_EQ(blind.get(url).status, 200u);
    EXPECT_EQ(certificate_issuer(blind.peer_certificate_pem()), test_ca());
    blind.close();
    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["tunnel"]["sni"], "upstream.test");
    EXPECT_EQ(records[0]["tunnel"]["host"], "127.0.0.1");
}

TEST_F(Intercept, ServerNameAllowsInterception) {
    auto url = "https://127.0.0.1:" + std::to_string(upstream_->port()) + "/echo";
    start_dir_logger({"--allow-hosts", "^upstream\\.test$"});
    auto o = proxy_->make_client_options(proxy_ca_cert().string());
    o.tls_host = "upstream.test";  // our leaf names the server of the ClientHello
    http_client intercepted(o);
    EXPECT_EQ(intercepted.get(url).status, 200u);
    EXPECT_EQ(certificate_issuer(intercepted.peer_certificate_pem()), proxy_ca());
    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_FALSE(records[0].contains("tunnel"));
}

TEST_F(Intercept, LargeUploadAndDownloadAtOnceThroughABlindTunnel) {
    constexpr std::uint64_t total = 64ull << 20;
    constexpr std::size_t block = 64 * 1024;
    std::atomic<std::uint64_t> server_got{0};
    std::atomic<std::uint64_t> server_hash{0};
    raw_server sink([&](int fd) {
        // Reads the upload while it sends the download; its FIN goes out only after the
        // client's, so the tunnel ends "client_closed".
        std::thread reader([&] {
            fnv64 h;
            std::string buf(block, '\0');
            std::uint64_t n = 0;
            while (true) {
                ssize_t got = ::recv(fd, buf.data(), buf.size(), 0);
                if (got <= 0) {
                    break;
                }
                h.update(std::string_view(buf.data(), static_cast<std::size_t>(got)));
                n += static_cast<std::uint64_t>(got);
            }
            server_got = n;
            server_hash = h.value;
        });
        std::string data(block, '\0');
        for (std::uint64_t i = 0; i < total / block; ++i) {
            fill_pattern(data, 2, i);
            if (!send_all(fd, data)) {
                break;
            }
        }
        reader.join();
        ::shutdown(fd, SHUT_WR);
    });
    start_dir_logger({"--log-tunnels", "--ignore-hosts", "^sink\\.test:", "--connect-to",
                      "sink.test:7000:127.0.0.1:" + std::to_string(sink.port())});
    auto fd = open_tunnel(proxy_->port(), "sink.test:7000");

    std::uint64_t client_got = 0;
    fnv64 client_hash;
    std::thread downloader([&] {
        std::string buf(block, '\0');
        while (true) {
            ssize_t got = ::recv(fd.get(), buf.data(), buf.size(), 0);
            if (got <= 0) {
                break;
            }
            client_hash.update(std::string_view(buf.data(), static_cast<std::size_t>(got)));
            client_got += static_cast<std::uint64_t>(got);
        }
    });
    fnv64 sent_up;
    std::string data(block, '\0');
    bool uploaded = true;
    for (std::uint64_t i = 0; i < total / block && uploaded; ++i) {
        fill_pattern(data, 1, i);
        sent_up.update(data);
        uploaded = send_all(fd.get(), data);
    }
    ::shutdown(fd.get(), SHUT_WR);
    downloader.join();
    EXPECT_TRUE(uploaded) << "the upload broke off";

    fnv64 expected_down;
    for (std::uint64_t i = 0; i < total / block; ++i) {
        fill_pattern(data, 2, i);
        expected_down.update(data);
    }
    EXPECT_EQ(client_got, total);
    EXPECT_EQ(client_hash.value, expected_down.value);
    fd.reset();
    auto records = records_after_stop();
    EXPECT_EQ(server_got.load(), total);
    EXPECT_EQ(server_hash.load(), sent_up.value);
    ASSERT_EQ(records.size(), 1u);
    const auto& t = records[0]["tunnel"];
    EXPECT_EQ(t["bytes_from_client"], total);
    EXPECT_EQ(t["bytes_from_upstream"], total);
    EXPECT_EQ(t["end"], "client_closed");
}

TEST_F(Intercept, HalfClosesPassBothWaysAndTunnelsAreRecorded) {
    raw_server server(
        [](int fd) {
            char first = 0;
            if (::recv(fd, &first, 1, MSG_PEEK) != 1) {
                return;
            }
            if (first == 'c') {
                // The client finishes first: answer after its FIN.
                std::string got = recv_until_close(fd, std::chrono::seconds(20));
                send_all(fd, "answer after your FIN to: " + got);
            } else {
                // The upstream finishes first, then still reads what the client sends.
                send_all(fd, "bye");
                ::shutdown(fd, SHUT_WR);
                std::string got = recv_until_close(fd, std::chrono::seconds(20));
                send_all(fd, got);  // goes nowhere if the tunnel dropped the direction
            }
        },
        2);
    start_dir_logger({"--log-tunnels", "--ignore-hosts", "^raw\\.test:", "--connect-to",
                      "raw.test:7001:127.0.0.1:" + std::to_string(server.port())});

    auto a = open_tunnel(proxy_->port(), "raw.test:7001");
    ASSERT_TRUE(send_all(a.get(), "client first"));
    ::shutdown(a.get(), SHUT_WR);
    EXPECT_EQ(recv_until_close(a.get(), std::chrono::seconds(20)),
              "answer after your FIN to: client first");
    a.reset();

    auto b = open_tunnel(proxy_->port(), "raw.test:7001");
    ASSERT_TRUE(send_all(b.get(), "u"));
    // The upstream's FIN reaches the client as a half-close (and only after that does the
    // client end its side, so which side closed first is not a race)...
    EXPECT_EQ(recv_until_close(b.get(), std::chrono::seconds(20)), "bye");
    // ...while the client's direction stays open.
    ASSERT_TRUE(send_all(b.get(), "-late"));
    ::shutdown(b.get(), SHUT_WR);
    EXPECT_EQ(recv_until_close(b.get(), std::chrono::seconds(20)), "");
    b.reset();

    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 2u);
    std::sort(records.begin(), records.end(), [](const auto& x, const auto& y) {
        return x["tunnel"]["bytes_from_client"] > y["tunnel"]["bytes_from_client"];
    });
    const auto& first = records[0];
    EXPECT_EQ(first["request"]["method"], "CONNECT");
    EXPECT_EQ(first["request"]["url"], "raw.test:7001");
    EXPECT_EQ(first["tunnel"]["host"], "raw.test");
    EXPECT_EQ(first["tunnel"]["port"], 7001);
    EXPECT_EQ(first["tunnel"]["bytes_from_client"], 12);
    EXPECT_EQ(first["tunnel"]["bytes_from_upstream"], 38);
    EXPECT_EQ(first["tunnel"]["end"], "client_closed");
    EXPECT_FALSE(first.contains("error"));
    EXPECT_FALSE(first.contains("response"));
    EXPECT_TRUE(first["connection_stats"].contains("duration_ms"));
    EXPECT_EQ(first["object_type"], "llm_proxy_traffic_log");
    const auto& second = records[1];
    EXPECT_EQ(second["tunnel"]["bytes_from_client"], 6);
    EXPECT_EQ(second["tunnel"]["bytes_from_upstream"], 3);
    EXPECT_EQ(second["tunnel"]["end"], "upstream_closed");
}

// A peer that sends its FIN and never closes its other side cannot hold a tunnel for the whole
// idle timeout: once one direction has ended, --tunnel-half-closed-timeout without a byte ends
// it.
TEST_F(Intercept, AHalfClosedTunnelEndsAfterTheHalfClosedTimeout) {
    std::atomic<bool> release{false};
    raw_server server(
        [&release](int fd) {
            // Reads to the client's FIN, answers, and keeps its own side open.
            std::string got = recv_until_close(fd, std::chrono::seconds(20));
            send_all(fd, "got " + got);
            for (int i = 0; i < 400 && !release.load(); ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        },
        1);
    start_dir_logger({"--log-tunnels", "--ignore-hosts", "^raw\\.test:", "--connect-to",
                      "raw.test:7001:127.0.0.1:" + std::to_string(server.port()),
                      "--tunnel-half-closed-timeout", "0.3"});
    auto fd = open_tunnel(proxy_->port(), "raw.test:7001");
    ASSERT_TRUE(send_all(fd.get(), "hello"));
    ::shutdown(fd.get(), SHUT_WR);
    // The upstream never closes: only the half-closed limit can end the tunnel before this
    // read's own 15 s limit (the idle timeout is 600 s).
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(recv_until_close(fd.get(), std::chrono::seconds(15)), "got hello");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
    release = true;
    fd.reset();
    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["tunnel"]["end"], "idle_timeout");
    EXPECT_EQ(records[0]["tunnel"]["bytes_from_client"], 5);
    EXPECT_EQ(records[0]["tunnel"]["bytes_from_upstream"], 9);
}

// Bytes moving either way keep a tunnel open past the idle timeout; once nothing moves for
// --tunnel-idle-timeout (both directions still open) it ends "idle_timeout".
TEST_F(Intercept, AnIdleTunnelEndsAfterTheIdleTimeoutAndTrafficKeepsItOpen) {
    raw_server server(
        [](int fd) {
            // Echoes until the tunnel goes away.
            char buf[256];
            for (;;) {
                ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0 || !send_all(fd, std::string_view(buf, static_cast<std::size_t>(n)))) {
                    return;
                }
            }
        },
        1);
    start_dir_logger({"--log-tunnels", "--ignore-hosts", "^raw\\.test:", "--connect-to",
                      "raw.test:7001:127.0.0.1:" + std::to_string(server.port()),
                      "--tunnel-idle-timeout", "2"});
    auto fd = open_tunnel(proxy_->port(), "raw.test:7001");
    // Twelve round trips a quarter of a second apart: three seconds, longer than the idle
    // timeout, with never more than a quarter of a second without a byte.
    const auto started = std::chrono::steady_clock::now();
    std::string echoed;
    for (int i = 0; i < 12; ++i) {
        ASSERT_TRUE(send_all(fd.get(), "ping")) << "round " << i;
        std::string got = recv_some(fd.get(), std::chrono::seconds(10), 4);
        ASSERT_EQ(got, "ping") << "round " << i;
        echoed += got;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
    // Now idle, both sides open: only the idle timeout ends it.
    EXPECT_EQ(recv_until_close(fd.get(), std::chrono::seconds(30)), "");
    fd.reset();
    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["tunnel"]["end"], "idle_timeout");
    EXPECT_EQ(records[0]["tunnel"]["bytes_from_client"], 48);
    EXPECT_EQ(records[0]["tunnel"]["bytes_from_upstream"], 48);
    EXPECT_FALSE(records[0].contains("error")) << records[0].dump(2);
}

// A direction reads into an 8 KiB buffer and, when a read fills it, reads again at once:
// messages at, below and above that size (and the 2 KiB a relay with a smaller first buffer
// would use), each sent only once the one before came back whole, so a message held back at a
// boundary (a full read waiting for more before it writes) times out here.
TEST_F(Intercept, MessagesAtTheRelayBufferSizesPassWholeOneAtATime) {
    raw_server server(
        [](int fd) {
            // Echoes until the client finishes sending, then closes.
            std::string buf(64 * 1024, '\0');
            for (;;) {
                ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
                if (n <= 0 ||
                    !send_all(fd, std::string_view(buf.data(), static_cast<std::size_t>(n)))) {
                    return;
                }
            }
        },
        1);
    start_dir_logger({"--log-tunnels", "--ignore-hosts", "^raw\\.test:", "--connect-to",
                      "raw.test:7001:127.0.0.1:" + std::to_string(server.port())});
    auto fd = open_tunnel(proxy_->port(), "raw.test:7001");
    // Around the relay's read size (one read fills the buffer exactly, or leaves one byte
    // for the next read) and around a quarter of it, in an order that mixes them.
    // (The binary's relay reads 16 KiB at once: tunnel_read_bytes in src/proxy/tunnel_loop.hpp.)
    const std::size_t large = 16 * 1024;
    const std::size_t small = large / 4;
    const std::vector<std::size_t> sizes = {
        1,         small - 1, small,         small + 1, 2 * small, large - 1, large,
        large + 1, small,     large + small, 2 * large, 1,         4 * large, small,
        small - 1, 3,         large + small, large - 1, large + 1, 64 * 1024};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        std::string message(sizes[i], '\0');
        fill_pattern(message, 7, i);
        ASSERT_TRUE(send_all(fd.get(), message)) << "message " << i;
        std::string got = recv_some(fd.get(), std::chrono::seconds(10), message.size());
        ASSERT_EQ(got.size(), message.size()) << "message " << i << " of " << sizes[i] << " bytes";
        ASSERT_TRUE(got == message) << "message " << i << " of " << sizes[i] << " bytes";
        total += sizes[i];
    }
    ::shutdown(fd.get(), SHUT_WR);
    EXPECT_EQ(recv_until_close(fd.get(), std::chrono::seconds(20)), "");
    fd.reset();
    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["tunnel"]["end"], "client_closed");
    EXPECT_EQ(records[0]["tunnel"]["bytes_from_client"], total);
    EXPECT_EQ(records[0]["tunnel"]["bytes_from_upstream"], total);
    EXPECT_FALSE(records[0].contains("error")) << records[0].dump(2);
}

namespace {
// Makes the socket's close send a TCP reset instead of a FIN (SO_LINGER 0).
void reset_on_close(int fd) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}
}  // namespace

// A reset from either side ends the tunnel at once: the other side is closed, and the record
// says which side failed, with the bytes relayed before.
TEST_F(Intercept, AResetOnEitherSideEndsTheTunnelAsAnError) {
    raw_server server(
        [](int fd) {
            std::string got = recv_some(fd, std::chrono::seconds(20), 5);
            send_all(fd, "ok");
            if (got == "reset") {
                // The upstream resets once the client has its answer (and says so).
                (void)recv_some(fd, std::chrono::seconds(20), 1);
                reset_on_close(fd);  // the server closes fd when this returns
                return;
            }
            // The client resets: this side sees the tunnel close.
            (void)recv_until_close(fd, std::chrono::seconds(20));
        },
        2);
    start_dir_logger({"--log-tunnels", "--ignore-hosts", "^raw\\.test:", "--connect-to",
                      "raw.test:7001:127.0.0.1:" + std::to_string(server.port())});

    auto a = open_tunnel(proxy_->port(), "raw.test:7001");
    ASSERT_TRUE(send_all(a.get(), "reset"));
    EXPECT_EQ(recv_some(a.get(), std::chrono::seconds(20), 2), "ok");
    ASSERT_TRUE(send_all(a.get(), "!"));
    EXPECT_EQ(recv_until_close(a.get(), std::chrono::seconds(20)), "");
    a.reset();

    auto b = open_tunnel(proxy_->port(), "raw.test:7001");
    ASSERT_TRUE(send_all(b.get(), "quiet"));
    EXPECT_EQ(recv_some(b.get(), std::chrono::seconds(20), 2), "ok");
    reset_on_close(b.get());
    b.reset();

    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 2u);
    for (const auto& r : records) {
        ASSERT_TRUE(r.contains("error")) << r.dump(2);
        EXPECT_EQ(r["tunnel"]["end"], "error") << r.dump(2);
        EXPECT_EQ(r["tunnel"]["bytes_from_upstream"], 2) << r.dump(2);
        const std::string message = r["error"]["message"];
        if (r["tunnel"]["bytes_from_client"] == 6) {  // "reset" and "!"
            EXPECT_EQ(r["error"]["kind"], "upstream_reset") << r.dump(2);
            EXPECT_NE(message.find("reading from the upstream"), std::string::npos) << message;
        } else {
            EXPECT_EQ(r["tunnel"]["bytes_from_client"], 5) << r.dump(2);
            EXPECT_EQ(r["error"]["kind"], "client_disconnected") << r.dump(2);
            EXPECT_NE(message.find("reading from the client"), std::string::npos) << message;
        }
    }
}

TEST_F(Intercept, UnreachableTunnelTargetIs502) {
    std::uint16_t dead_port;
    {
        raw_server closed([](int) {}, 0, std::chrono::milliseconds(0));
        dead_port = closed.port();
    }
    start_dir_logger({"--log-tunnels", "--ignore-hosts", "dead", "--connect-to",
                      "dead.test:443:127.0.0.1:" + std::to_string(dead_port)});
    try {
        (void)open_tunnel(proxy_->port(), "dead.test:443");
        FAIL() << "the tunnel opened";
    } catch (const std::runtime_error& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("HTTP/1.1 502"), std::string::npos) << what;
    }
    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["tunnel"]["end"], "error");
    EXPECT_EQ(records[0]["error"]["kind"], "connect");
}

TEST_F(Intercept, PlainHttpToAnIgnoredHostIsForwardedUnchangedAndUnlogged) {
    fake_upstream plain(fake_upstream::plain);
    start_dir_logger({"--ignore-hosts", "^plain\\.test:80$", "--connect-to",
                      "plain.test:80:127.0.0.1:" + std::to_string(plain.port())});
    auto client = proxied_client();
    // Not upgraded to https (the scheme upgrader is an addon, and no addon runs).
    auto r = client.get("http://plain.test/echo?x=1", {{"X-Custom", "kept"}});
    ASSERT_EQ(r.status, 200u) << r.body;
    auto echoed = nlohmann::json::parse(r.body);
    EXPECT_EQ(echoed["target"], "/echo?x=1");
    bool custom = false;
    for (const auto& h : echoed["headers"]) {
        custom = custom || (h[0] == "X-Custom" && h[1] == "kept");
    }
    EXPECT_TRUE(custom) << r.body;
    // An intercepted request is recorded as always.
    EXPECT_EQ(client.get("http://api.openai.com/echo").status, 200u);
    auto records = records_after_stop();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(count_url(records, "https://api.openai.com/echo"), 1u);
}

}  // namespace llm_proxy::test

namespace llm_proxy::test {

// A client that sends CONNECT and half a ClientHello, then leaves: the proxy, waiting for the
// rest to read the server name, notices at once instead of at the header timeout (30 s).
TEST_F(Intercept, AClientLeavingMidClientHelloIsNoticedAtOnce) {
    start_dir_logger({"--debug", "--ignore-hosts", "^nothing\\.example$"});
    unique_fd fd(connect_raw("127.0.0.1", proxy_->port()));
    ASSERT_TRUE(send_all(fd.get(),
                         "CONNECT api.openai.com:443 HTTP/1.1\r\n"
                         "Host: api.openai.com:443\r\n\r\n"));
    ASSERT_NE(recv_some(fd.get(), std::chrono::seconds(10)).find(" 200 "), std::string::npos);
    // A handshake record announcing 512 bytes, of which 9 arrive.
    ASSERT_TRUE(send_all(fd.get(), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9)));
    std::size_t cursor = 0;
    ASSERT_FALSE(proxy_->wait_for_stderr_line(std::regex("disconnected"),
                                              std::chrono::milliseconds(300), &cursor));
    fd.reset();
    EXPECT_TRUE(
        proxy_->wait_for_stderr_line(std::regex("disconnected"), std::chrono::seconds(10), &cursor))
        << proxy_->stderr_text();
}

}  // namespace llm_proxy::test

// The upstream connection of an intercepted CONNECT opens while the client handshakes with the
// proxy, and serves the tunnel's first request; a ClientHello naming another server than the
// CONNECT target names the tunnel.
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "e2e_fixture.hpp"
#include "support/proxied_connection.hpp"
#include "tunnel_kit.hpp"

namespace llm_proxy::test {

namespace {

// Connections the upstream accepted, not counting those of the /stats requests themselves
// (each stats() call is one connection, counted before it answers).
class upstream_connections {
  public:
    explicit upstream_connections(fake_upstream& u) : upstream_(u) { upstream_.reset_stats(); }
    std::int64_t count() {
        auto s = upstream_.stats();
        ++polls_;
        return s["connections"].get<std::int64_t>() - polls_;
    }
    // Polls until count() reaches `n` (or 20 s pass); returns the last count.
    std::int64_t wait_for(std::int64_t n) {
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        std::int64_t c = count();
        while (c < n && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            c = count();
        }
        return c;
    }

  private:
    fake_upstream& upstream_;
    std::int64_t polls_ = 0;
};

}  // namespace

class EarlyConnect : public e2e_test {};

TEST_F(EarlyConnect, UpstreamConnectionOpensBeforeTheRequestAndServesIt) {
    start_proxy({"simple"});
    upstream_connections upstream(*upstream_);
    ASSERT_EQ(upstream.count(), 0);

    // CONNECT and the TLS handshake with the proxy; no request yet.
    proxied_connection c(proxy_->host(), proxy_->port(), "https://api.openai.com",
                         proxy_ca_cert().string());
    EXPECT_EQ(upstream.wait_for(1), 1) << "the upstream connection did not open before the request";

    c.send(make_head("GET", c.target("/echo"), c.host_header()));
    auto r = c.read_final_response();
    EXPECT_EQ(r.status, 200u);
    c.send(make_head("GET", c.target("/echo"), c.host_header()));
    EXPECT_EQ(c.read_final_response().status, 200u);
    // Both requests went over the connection opened early.
    EXPECT_EQ(upstream.count(), 1);
}

TEST_F(EarlyConnect, PlainHttpInATunnelStillWorks) {
    // The early connection speaks TLS; a tunnel carrying plain HTTP does not use it.
    auto plain = std::make_unique<fake_upstream>(fake_upstream::plain);
    start_proxy({"--no-http-upgrader", "--connect-to",
                 "plain.test:80:127.0.0.1:" + std::to_string(plain->port()), "simple"});
    auto fd = open_tunnel(proxy_->port(), "plain.test:80");
    ASSERT_TRUE(
        send_all(fd.get(), "GET /echo HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\n\r\n"));
    auto answer = recv_until_close(fd.get(), std::chrono::seconds(20));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
}

TEST_F(EarlyConnect, AFailedEarlyConnectionIsTheAnswerWithoutASecondAttempt) {
    std::atomic<int> accepted{0};
    raw_server refuses_tls([&](int) { ++accepted; }, 3);
    start_proxy({"--connect-to", "broken.test:443:127.0.0.1:" + std::to_string(refuses_tls.port()),
                 "simple"});
    proxied_connection c(proxy_->host(), proxy_->port(), "https://broken.test",
                         proxy_ca_cert().string());
    c.send(make_head("GET", c.target("/echo"), c.host_header()));
    auto r = c.read_final_response();
    EXPECT_EQ(r.status, 502u);
    EXPECT_NE(r.body.find("TLS handshake with broken.test failed"), std::string::npos) << r.body;
    EXPECT_EQ(accepted.load(), 1);
}

TEST_F(EarlyConnect, ServerNameOfTheClientHelloNamesTheTunnel) {
    // CONNECT 127.0.0.1:<port> with SNI upstream.test: our certificate names upstream.test (the
    // client verifies it), the upstream's is checked for upstream.test, and the record says
    // upstream.test, while the connection goes to the CONNECT target.
    auto url = "https://127.0.0.1:" + std::to_string(upstream_->port()) + "/echo";
    start_dir_logger();
    auto o = proxy_->make_client_options(proxy_ca_cert().string());
    o.tls_host = "upstream.test";
    http_client client(o);
    auto r = client.get(url);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(certificate_issuer(client.peer_certificate_pem()),
              certificate_subject_of_file(proxy_ca_cert()));
    ASSERT_EQ(proxy_->stop(), 0);
    auto records = wait_for_records(0, std::chrono::milliseconds(0));
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["request"]["url"],
              "https://upstream.test:" + std::to_string(upstream_->port()) + "/echo");
}

}  // namespace llm_proxy::test

// Failures answer with a clear status and a short JSON body; bad input never crashes the proxy.
#include <boost/asio/ip/tcp.hpp>
#include <thread>

#include "e2e_fixture.hpp"
#include "support/raw_socket.hpp"

namespace llm_proxy::test {

class Errors : public e2e_test {
  protected:
    // GET through the proxy by absolute-form (plain HTTP to the proxy, upgraded upstream).
    response get_plain(const std::string& url) {
        auto client = proxied_client(std::chrono::seconds(20));
        return client.get(url);
    }
    static std::string code_of(const response& r) {
        return nlohmann::json::parse(r.body)["error"]["code"].get<std::string>();
    }
};

TEST_F(Errors, UnresolvableHostIs502Dns) {
    start_dir_logger();
    auto r = get_plain("http://no-such-host.invalid/v1/models");
    EXPECT_EQ(r.status, 502u);
    EXPECT_EQ(code_of(r), "dns");
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["error"]["kind"], "dns");
}

TEST_F(Errors, RefusedConnectionIs502Connect) {
    // Bind and close a port so nothing listens there.
    std::uint16_t dead_port;
    {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
        dead_port = a.local_endpoint().port();
    }
    start_proxy({"--connect-to", "dead.test:443:127.0.0.1:" + std::to_string(dead_port), "simple"});
    auto r = get_plain("http://dead.test/v1/models");
    EXPECT_EQ(r.status, 502u);
    EXPECT_EQ(code_of(r), "connect");
    EXPECT_NE(r.body.find("refused"), std::string::npos) << r.body;
}

TEST_F(Errors, UntrustedUpstreamCertificateIs502WithTheReason) {
    // Without --upstream-ca the fake upstream's test CA is unknown: verification must fail.
    auto port = std::to_string(upstream_->port());
    proxy_ = std::make_unique<proxy_process>(
        std::vector<std::string>{"--ca_dir", ca_dir_.string(), "--connect-to",
                                 "api.openai.com:443:127.0.0.1:" + port, "simple"});
    auto r = get_plain("http://api.openai.com/v1/models");
    EXPECT_EQ(r.status, 502u);
    EXPECT_EQ(code_of(r), "tls_verification");
    EXPECT_NE(r.body.find("unable to get local issuer certificate"), std::string::npos) << r.body;
    EXPECT_EQ(upstream_->stats()["requests"], 0);
}

TEST_F(Errors, WrongHostNameOnUpstreamCertificateIs502) {
    // The upstream's certificate does not cover wrong.test: host-name verification fails.
    start_proxy({"--connect-to", "wrong.test:443:127.0.0.1:" + std::to_string(upstream_->port()),
                 "simple"});
    auto r = get_plain("http://wrong.test/v1/models");
    EXPECT_EQ(r.status, 502u);
    EXPECT_EQ(code_of(r), "tls_verification");
    EXPECT_NE(r.body.find("mismatch"), std::string::npos) << r.body;
}

TEST_F(Errors, SkipVerifyFlagReachesAnUntrustedUpstreamAndWarns) {
    auto port = std::to_string(upstream_->port());
    proxy_ = std::make_unique<proxy_process>(
        std::vector<std::string>{"--ca_dir", ca_dir_.string(), "--connect-to",
                                 "api.openai.com:443:127.0.0.1:" + port, "-K", "simple"});
    auto r = get_plain("http://api.openai.com/v1/models");
    EXPECT_EQ(r.status, 200u);
    EXPECT_NE(proxy_->stderr_text().find("NOT verified"), std::string::npos);
}

TEST_F(Errors, SlowUpstreamIs504) {
    start_proxy({"--upstream-timeout", "0.5", "simple"});
    auto r = get_plain("http://api.openai.com/slow?ms=3000");
    EXPECT_EQ(r.status, 504u);
    EXPECT_EQ(code_of(r), "upstream_timeout");
}

TEST_F(Errors, MalformedRequestsGet400And431AndTheProxySurvives) {
    start_proxy({"simple"});
    auto host = proxy_->host();
    auto port = proxy_->port();
    auto status_of = [&](std::string raw) {
        auto out = raw_exchange(host, port, std::move(raw), std::chrono::seconds(5));
        return out.substr(0, 12);
    };
    EXPECT_EQ(status_of("GARBAGE\r\n\r\n"), "HTTP/1.1 400");
    EXPECT_EQ(status_of("GET http://api.openai.com/echo HTTP/1.1\r\nHost: api.openai.com\r\n"
                        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
              "HTTP/1.1 400");
    EXPECT_EQ(status_of("POST http://api.openai.com/echo HTTP/1.1\r\nHost: a\r\n"
                        "Content-Length: abc\r\n\r\n"),
              "HTTP/1.1 400");
    EXPECT_EQ(status_of("POST http://api.openai.com/echo HTTP/1.1\r\nHost: a\r\n"
                        "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello"),
              "HTTP/1.1 400");
    EXPECT_EQ(status_of("POST http://api.openai.com/echo HTTP/1.1\r\nHost: a\r\n"
                        "Transfer-Encoding: gzip\r\n\r\n"),
              "HTTP/1.1 400");
    EXPECT_EQ(status_of("GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n"),
              "HTTP/1.1 400");  // origin-form outside a tunnel: not a proxy request
    EXPECT_EQ(status_of("CONNECT nonsense HTTP/1.1\r\n\r\n"), "HTTP/1.1 400");
    EXPECT_EQ(status_of("GET http://api.openai.com/ HTTP/1.1\r\nX-Big: " +
                        std::string(70 * 1024, 'a') + "\r\n\r\n"),
              "HTTP/1.1 431");
    // Binary noise and an early close: no answer needed, no crash.
    raw_exchange(host, port, std::string("\x16\x03\x01\x00\x05hello\0\0\xff", 14),
                 std::chrono::seconds(2), true);
    raw_exchange(host, port, "GET http://api.openai.com/v1/mod", std::chrono::seconds(2), true);
    // Still serving.
    auto r = get_plain("http://api.openai.com/v1/models");
    EXPECT_EQ(r.status, 200u);
    EXPECT_TRUE(proxy_->running());
}

TEST_F(Errors, IdleAndSlowClientsAreDisconnected) {
    start_proxy({"--idle-timeout", "1", "simple"});
    unique_fd idle(connect_raw(proxy_->host(), proxy_->port()));
    EXPECT_TRUE(wait_peer_closed(idle.get(), std::chrono::seconds(5)));
    // A client that starts a header and never finishes it is cut off too.
    unique_fd slow(connect_raw(proxy_->host(), proxy_->port()));
    ASSERT_TRUE(send_all(slow.get(), "GET http://api.openai.com/v1/models HTTP/1.1\r\nHo"));
    EXPECT_TRUE(wait_peer_closed(slow.get(), std::chrono::seconds(5)));
}

}  // namespace llm_proxy::test

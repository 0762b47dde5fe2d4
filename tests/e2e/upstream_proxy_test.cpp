// --upstream-proxy: llm_proxy -> a real parent proxy (Debian's tinyproxy) -> the fake upstream.
// https goes through a CONNECT tunnel (TLS still verified against the test CA for the real
// host name), plain http in absolute-form; parent failures are our 502 `upstream_proxy`.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <regex>
#include <thread>

#include "e2e_fixture.hpp"
#include "support/tinyproxy.hpp"

namespace llm_proxy::test {

namespace {

// base64("proxyuser:s3cr3t"), what goes to the parent for the right credentials.
constexpr const char* parent_credentials_b64 = "cHJveHl1c2VyOnMzY3IzdA==";

bool echo_has_header(const nlohmann::json& echo, std::string_view name) {
    for (const auto& h : echo["headers"]) {
        auto n = h[0].get<std::string>();
        if (n.size() == name.size() &&
            std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            })) {
            return true;
        }
    }
    return false;
}

std::string code_of(const response& r) {
    return nlohmann::json::parse(r.body)["error"]["code"].get<std::string>();
}
std::string message_of(const response& r) {
    return nlohmann::json::parse(r.body)["error"]["message"].get<std::string>();
}

}  // namespace

// The cases that need no running parent (it is down, silent, or not used at all).
class UpstreamProxyWithoutParent : public e2e_test {
  protected:
    std::string upstream_authority() const {
        return "127.0.0.1:" + std::to_string(upstream_->port());
    }
};

// The cases with tinyproxy as the parent; skipped (by name, with the reason) without it.
class UpstreamProxy : public UpstreamProxyWithoutParent {
  protected:
    void SetUp() override {
        UpstreamProxyWithoutParent::SetUp();
        if (!tinyproxy::find_binary()) {
            GTEST_SKIP() << "tinyproxy is not installed (apt-get install tinyproxy): the "
                            "--upstream-proxy tests need it as the parent proxy";
        }
    }
    void start_parent(std::vector<std::string> lines = {}) {
        parent_ = std::make_unique<tinyproxy>(work_ / "tinyproxy", std::move(lines));
    }
    // The parent's log line for a request line it received, e.g. "CONNECT 127.0.0.1:1234".
    bool parent_saw(const std::string& request_line_start) {
        return parent_->wait_for_log(
            std::regex("Request \\(file descriptor [0-9]+\\): " + request_line_start));
    }

    std::unique_ptr<tinyproxy> parent_;
};

TEST_F(UpstreamProxy, HttpsGoesThroughAConnectTunnelWithTlsVerified) {
    start_parent();
    start_dir_logger({"--upstream-proxy", parent_->url()});
    auto client = proxied_client();
    auto r = client.get("https://upstream.test/echo?via=parent");
    ASSERT_EQ(r.status, 200u) << r.body;
    auto echo = nlohmann::json::parse(r.body);
    EXPECT_EQ(echo["method"], "GET");
    EXPECT_EQ(echo["target"], "/echo?via=parent");
    // --connect-to names the CONNECT target; the parent opened the tunnel to it.
    EXPECT_TRUE(parent_saw("CONNECT " + upstream_authority() + " HTTP/1.1")) << parent_->log();
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["request"]["url"], "https://upstream.test/echo?via=parent");
    EXPECT_EQ(records[0]["response"]["status"], 200);
    EXPECT_EQ(upstream_->stats()["requests"], 1);
}

TEST_F(UpstreamProxy, UpstreamCertificateIsStillVerifiedForTheRealHost) {
    // wrong.test is not on the upstream's certificate: through the tunnel, as direct, it fails.
    start_parent();
    start_proxy({"--upstream-proxy", parent_->url(), "--connect-to",
                 "wrong.test:443:" + upstream_authority(), "simple"});
    auto r = proxied_client().get("http://wrong.test/v1/models");  // upgraded to https
    EXPECT_EQ(r.status, 502u);
    EXPECT_EQ(code_of(r), "tls_verification");
    EXPECT_TRUE(parent_saw("CONNECT " + upstream_authority())) << parent_->log();
}

TEST_F(UpstreamProxy, PlainHttpGoesInAbsoluteForm) {
    fake_upstream plain(fake_upstream::plain);
    auto plain_authority = "127.0.0.1:" + std::to_string(plain.port());
    start_parent();
    start_proxy({"--upstream-proxy", parent_->url(), "--no-http-upgrader", "--connect-to",
                 "plain.test:80:" + plain_authority, "simple"});
    auto client = proxied_client();
    for (int i = 0; i < 2; ++i) {  // the second one may reuse the pooled connection
        auto r = client.get("http://plain.test/echo?n=" + std::to_string(i));
        ASSERT_EQ(r.status, 200u) << r.body;
        auto echo = nlohmann::json::parse(r.body);
        EXPECT_EQ(echo["target"], "/echo?n=" + std::to_string(i));
        EXPECT_TRUE(echo_has_header(echo, "Via")) << r.body;  // tinyproxy's
        EXPECT_TRUE(parent_saw("GET http://" + plain_authority + "/echo\\?n=" + std::to_string(i) +
                               " HTTP/1.1"))
            << parent_->log();
    }
    EXPECT_EQ(plain.stats()["requests"], 2);
}

TEST_F(UpstreamProxy, RightCredentialsWorkAndNeverReachTheOriginOrTheRecords) {
    fake_upstream plain(fake_upstream::plain);
    start_parent({"BasicAuth proxyuser s3cr3t"});
    // %33 is "3": the password is percent-decoded before it goes to the parent.
    start_dir_logger({"--upstream-proxy", parent_->url("proxyuser:s3cr%33t"), "--no-http-upgrader",
                      "--connect-to", "plain.test:80:127.0.0.1:" + std::to_string(plain.port())});
    auto client = proxied_client();
    // The client's own Proxy-Authorization (for llm_proxy) is not passed on either.
    header_list client_auth = {{"Proxy-Authorization", "Basic Y2xpZW50OnNlY3JldA=="}};
    auto https = client.get("https://upstream.test/echo", client_auth);
    ASSERT_EQ(https.status, 200u) << https.body;
    EXPECT_FALSE(echo_has_header(nlohmann::json::parse(https.body), "Proxy-Authorization"))
        << https.body;
    auto http = client.get("http://plain.test/echo", client_auth);
    ASSERT_EQ(http.status, 200u) << http.body;
    EXPECT_FALSE(echo_has_header(nlohmann::json::parse(http.body), "Proxy-Authorization"))
        << http.body;

    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    for (const auto& rec : records) {
        auto text = rec.dump();
        EXPECT_EQ(text.find("Proxy-Authorization"), std::string::npos) << text;
        EXPECT_EQ(text.find(parent_credentials_b64), std::string::npos) << text;
        EXPECT_EQ(text.find("s3cr"), std::string::npos) << text;
    }
    auto logs = proxy_->stderr_text();
    EXPECT_EQ(logs.find(parent_credentials_b64), std::string::npos) << logs;
    EXPECT_EQ(logs.find("s3cr"), std::string::npos) << logs;
}

TEST_F(UpstreamProxy, MissingOrWrongCredentialsAre502NamingTheParentsAnswer) {
    start_parent({"BasicAuth proxyuser s3cr3t"});
    fake_upstream plain(fake_upstream::plain);
    // No credentials: the parent answers 407 to CONNECT and to the absolute-form request.
    start_dir_logger({"--upstream-proxy", parent_->url(), "--no-http-upgrader", "--connect-to",
                      "plain.test:80:127.0.0.1:" + std::to_string(plain.port())});
    auto client = proxied_client();
    auto https = client.get("https://upstream.test/v1/models");
    EXPECT_EQ(https.status, 502u);
    EXPECT_EQ(code_of(https), "upstream_proxy");
    EXPECT_NE(message_of(https).find("407 Proxy Authentication Required"), std::string::npos)
        << https.body;
    auto http = client.get("http://plain.test/v1/models");
    EXPECT_EQ(http.status, 502u);
    EXPECT_EQ(code_of(http), "upstream_proxy");
    EXPECT_NE(message_of(http).find("407"), std::string::npos) << http.body;
    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0]["error"]["kind"], "upstream_proxy");
    EXPECT_EQ(records[1]["error"]["kind"], "upstream_proxy");
    EXPECT_EQ(upstream_->stats()["requests"], 0);
    EXPECT_EQ(plain.stats()["requests"], 0);

    // Wrong credentials: tinyproxy 1.11 refuses the CONNECT (with 401, not 407).
    proxy_.reset();
    start_proxy({"--upstream-proxy", parent_->url("proxyuser:wrong"), "simple"});
    auto wrong = proxied_client().get("https://upstream.test/v1/models");
    EXPECT_EQ(wrong.status, 502u);
    EXPECT_EQ(code_of(wrong), "upstream_proxy");
    EXPECT_NE(message_of(wrong).find("refused CONNECT " + upstream_authority() + ": 40"),
              std::string::npos)
        << wrong.body;
    EXPECT_EQ(upstream_->stats()["requests"], 0);
}

TEST_F(UpstreamProxyWithoutParent, ParentDownIs502WithTheReason) {
    auto dead = closed_loopback_port();
    start_proxy({"--upstream-proxy", "http://127.0.0.1:" + std::to_string(dead), "simple"});
    auto r = proxied_client().get("https://upstream.test/v1/models");
    EXPECT_EQ(r.status, 502u);
    EXPECT_EQ(code_of(r), "upstream_proxy");
    EXPECT_NE(message_of(r).find("upstream proxy 127.0.0.1:" + std::to_string(dead)),
              std::string::npos)
        << r.body;
    EXPECT_NE(message_of(r).find("refused"), std::string::npos) << r.body;
    EXPECT_EQ(upstream_->stats()["requests"], 0);
}

TEST_F(UpstreamProxyWithoutParent, SilentParentIs502AfterTheConnectTimeout) {
    // Listening (the kernel accepts the connection) but never answering the CONNECT.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    auto port = std::to_string(silent.local_endpoint().port());
    start_proxy(
        {"--upstream-proxy", "http://127.0.0.1:" + port, "--connect-timeout", "1", "simple"});
    auto r = proxied_client().get("https://upstream.test/v1/models");
    EXPECT_EQ(r.status, 502u);
    EXPECT_EQ(code_of(r), "upstream_proxy");
    EXPECT_NE(message_of(r).find("upstream proxy 127.0.0.1:" + port + " did not answer CONNECT " +
                                 upstream_authority() + " in time"),
              std::string::npos)
        << r.body;
}

TEST_F(UpstreamProxyWithoutParent, MalformedParentAnswerIs502) {
    // A "parent" that answers the CONNECT with something that is not HTTP.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    boost::asio::ip::tcp::socket peer(ioc);
    const std::string garbage = "SSH-2.0-OpenSSH_9.2\r\n";
    char buf[4096];
    acceptor.async_accept(peer, [&](boost::system::error_code ec) {
        if (ec) {
            return;
        }
        peer.async_read_some(
            boost::asio::buffer(buf), [&](boost::system::error_code rec, std::size_t) {
                if (!rec) {
                    boost::asio::async_write(peer, boost::asio::buffer(garbage),
                                             [](boost::system::error_code, std::size_t) {});
                }
            });
    });
    std::thread server([&ioc] { ioc.run_for(std::chrono::seconds(30)); });
    auto port = std::to_string(acceptor.local_endpoint().port());
    start_proxy({"--upstream-proxy", "http://127.0.0.1:" + port, "simple"});
    auto r = proxied_client().get("https://upstream.test/v1/models");
    ioc.stop();
    server.join();
    EXPECT_EQ(r.status, 502u);
    EXPECT_EQ(code_of(r), "upstream_proxy");
    EXPECT_NE(message_of(r).find("malformed answer to CONNECT"), std::string::npos) << r.body;
    EXPECT_NE(message_of(r).find("SSH-2.0"), std::string::npos) << r.body;
}

TEST_F(UpstreamProxyWithoutParent, NoProxyHostsGoDirect) {
    // The parent is down: only the hosts of --upstream-no-proxy can be reached.
    auto dead = closed_loopback_port();
    start_proxy({"--upstream-proxy", "http://127.0.0.1:" + std::to_string(dead),
                 "--upstream-no-proxy", "localhost,*.test,10.0.0.0/8", "simple"});
    auto client = proxied_client();
    auto direct = client.get("https://upstream.test/v1/models");
    EXPECT_EQ(direct.status, 200u) << direct.body;
    auto proxied = client.get("https://api.openai.com/v1/models");
    EXPECT_EQ(proxied.status, 502u);
    EXPECT_EQ(code_of(proxied), "upstream_proxy");
    EXPECT_EQ(upstream_->stats()["requests"], 1);
}

TEST_F(UpstreamProxyWithoutParent, EnvironmentProxyVariablesAreIgnored) {
    // Only the flag sets a parent: HTTPS_PROXY pointing at a dead port changes nothing.
    auto dead = "http://127.0.0.1:" + std::to_string(closed_loopback_port());
    spawn_options env;
    env.env = {{"HTTPS_PROXY", dead},
               {"https_proxy", dead},
               {"HTTP_PROXY", dead},
               {"http_proxy", dead},
               {"ALL_PROXY", dead}};
    auto args = base_args();
    args.push_back("simple");
    proxy_ = std::make_unique<proxy_process>(args, env);
    auto r = proxied_client().get("https://upstream.test/v1/models");
    EXPECT_EQ(r.status, 200u) << r.body;
}

}  // namespace llm_proxy::test

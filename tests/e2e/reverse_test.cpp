// Reverse (base-URL) mode: origin-form requests to the proxy itself go to the --reverse rule
// their path matches; forward requests keep working on the same listener, which can also
// speak TLS with its own certificate.
#include "e2e_fixture.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::test {

using json = nlohmann::json;

namespace {

// The value of a header in a fake upstream /echo answer, or nullopt.
std::optional<std::string> echoed_header(const json& echo, std::string_view name) {
    for (const auto& h : echo["headers"]) {
        if (iequals(h[0].get<std::string>(), name)) {
            return h[1].get<std::string>();
        }
    }
    return std::nullopt;
}

}  // namespace

class Reverse : public e2e_test {
  protected:
    // A client talking to the proxy as to a server (no proxy, no CA): what a base URL gives.
    http_client direct_client(client_options o = {}) {
        o.timeout = std::chrono::seconds(10);
        return http_client(o);
    }
    std::string base() const { return proxy_->url(); }
};

TEST_F(Reverse, PlainRequestArrivesWithTheUpstreamsHostAndThePrefixedPath) {
    start_proxy({"--reverse", "https://api.openai.com/echo/base", "simple"});
    auto client = direct_client();
    auto r = client.post(base() + "/v1/chat?x=1&y=%2F", "hello",
                         {{"Content-Type", "text/plain"}, {"X-Custom", "kept"}});
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.header("X-Fake-Upstream"), "1");
    auto echo = json::parse(r.body);
    EXPECT_EQ(echo["method"], "POST");
    EXPECT_EQ(echo["target"], "/echo/base/v1/chat?x=1&y=%2F");
    EXPECT_EQ(echoed_header(echo, "Host"), "api.openai.com");
    EXPECT_EQ(echoed_header(echo, "X-Custom"), "kept");
    EXPECT_EQ(echo["body"], "hello");
    // The connection stays open for the next request.
    auto again = client.get(base() + "/again");
    ASSERT_EQ(again.status, 200u);
    EXPECT_EQ(json::parse(again.body)["target"], "/echo/base/again");
    EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(Reverse, TwoPrefixesRouteToTwoUpstreams) {
    fake_upstream second(pki_);
    start_proxy({"--reverse", "/openai=https://api.openai.com", "--reverse",
                 "/local/=https://localhost:" + std::to_string(second.port()) + "/echo", "simple"});
    auto client = direct_client();
    auto a = client.get(base() + "/openai/echo/one");
    ASSERT_EQ(a.status, 200u) << a.body;
    EXPECT_EQ(json::parse(a.body)["target"], "/echo/one");
    EXPECT_EQ(echoed_header(json::parse(a.body), "Host"), "api.openai.com");
    auto b = client.get(base() + "/local/two?q=1");
    ASSERT_EQ(b.status, 200u) << b.body;
    EXPECT_EQ(json::parse(b.body)["target"], "/echo/two?q=1");
    EXPECT_EQ(echoed_header(json::parse(b.body), "Host"),
              "localhost:" + std::to_string(second.port()));
    auto first_seen = upstream_->stats()["requests_seen"];
    auto second_seen = second.stats()["requests_seen"];
    EXPECT_EQ(first_seen, json::parse(R"(["GET /echo/one"])"));
    EXPECT_EQ(second_seen, json::parse(R"(["GET /echo/two?q=1"])"));
}

TEST_F(Reverse, NoMatchingRuleIs404Json) {
    start_proxy({"--reverse", "/openai=https://api.openai.com", "simple"});
    auto client = direct_client();
    for (const char* path : {"/v1/chat/completions", "/openaix/echo"}) {
        auto r = client.get(base() + path);
        EXPECT_EQ(r.status, 404u) << path;
        EXPECT_EQ(r.header("Content-Type"), "application/json");
        auto body = json::parse(r.body);
        EXPECT_EQ(body["error"]["code"], "not_found");
        EXPECT_NE(body["error"]["message"].get<std::string>().find("no --reverse rule"),
                  std::string::npos);
    }
    EXPECT_EQ(client.connections_opened(), 1u) << "a 404 keeps the connection";
    EXPECT_EQ(upstream_->stats()["requests"], 0);
}

TEST_F(Reverse, WithoutRulesOriginFormIsStill400) {
    start_proxy({"simple"});
    auto client = direct_client();
    auto r = client.get(base() + "/v1/models");
    EXPECT_EQ(r.status, 400u);
    EXPECT_NE(
        json::parse(r.body)["error"]["message"].get<std::string>().find("not a proxy request"),
        std::string::npos);
}

TEST_F(Reverse, ForwardRequestsStillWorkOnTheSameListener) {
    start_proxy({"--reverse", "https://api.openai.com/echo", "simple"});
    auto proxied = proxied_client();
    auto tunnel = proxied.get("https://api.openai.com/echo/connect");  // CONNECT + TLS
    ASSERT_EQ(tunnel.status, 200u) << tunnel.body;
    EXPECT_EQ(json::parse(tunnel.body)["target"], "/echo/connect");
    auto absolute = proxied.get("http://upstream.test/echo/absolute");  // absolute-form
    ASSERT_EQ(absolute.status, 200u) << absolute.body;
    EXPECT_EQ(json::parse(absolute.body)["target"], "/echo/absolute");
    auto direct = direct_client();
    auto reverse = direct.get(base() + "/reverse");
    ASSERT_EQ(reverse.status, 200u) << reverse.body;
    EXPECT_EQ(json::parse(reverse.body)["target"], "/echo/reverse");
}

TEST_F(Reverse, XForwardedForOnlyWithTheFlag) {
    start_proxy({"--reverse", "https://api.openai.com", "simple"});
    {
        auto client = direct_client();
        auto r = client.get(base() + "/echo");
        ASSERT_EQ(r.status, 200u);
        EXPECT_EQ(echoed_header(json::parse(r.body), "X-Forwarded-For"), std::nullopt);
    }
    proxy_.reset();
    start_proxy({"--reverse", "https://api.openai.com", "--reverse-forwarded-for", "simple"});
    auto client = direct_client();
    auto r = client.get(base() + "/echo");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(echoed_header(json::parse(r.body), "X-Forwarded-For"), "127.0.0.1");
    auto chained = client.get(base() + "/echo", {{"X-Forwarded-For", "203.0.113.7"}});
    ASSERT_EQ(chained.status, 200u);
    EXPECT_EQ(echoed_header(json::parse(chained.body), "X-Forwarded-For"),
              "203.0.113.7, 127.0.0.1");
    // Forward requests are not reverse requests: nothing is added to them.
    auto proxied = proxied_client();
    auto f = proxied.get("https://api.openai.com/echo");
    ASSERT_EQ(f.status, 200u);
    EXPECT_EQ(echoed_header(json::parse(f.body), "X-Forwarded-For"), std::nullopt);
}

TEST_F(Reverse, ListenerServesTlsAndPlainOnOnePort) {
    start_proxy({"--reverse", "https://api.openai.com/echo", "--reverse-tls-cert",
                 pki_.server_cert.string(), "--reverse-tls-key", pki_.server_key.string(),
                 "simple"});
    client_options o;
    o.ca_file = pki_.ca_cert.string();
    auto tls_client = direct_client(o);
    auto url = "https://127.0.0.1:" + std::to_string(proxy_->port());
    auto r = tls_client.post(url + "/over-tls", "body");
    ASSERT_EQ(r.status, 200u) << r.body;
    auto echo = json::parse(r.body);
    EXPECT_EQ(echo["target"], "/echo/over-tls");
    EXPECT_EQ(echoed_header(echo, "Host"), "api.openai.com");
    EXPECT_EQ(tls_client.get(url + "/second").status, 200u);
    EXPECT_EQ(tls_client.connections_opened(), 1u);
    auto plain = direct_client();
    auto p = plain.get(base() + "/plain");
    ASSERT_EQ(p.status, 200u) << p.body;
    EXPECT_EQ(json::parse(p.body)["target"], "/echo/plain");
    auto proxied = proxied_client();  // and the forward proxy still works
    EXPECT_EQ(proxied.get("https://api.openai.com/echo/forward").status, 200u);
}

TEST_F(Reverse, BadTlsFilesExit2WithAMessage) {
    auto args = base_args();
    args.insert(args.end(), {"--listen", "127.0.0.1:0", "--reverse", "https://api.openai.com",
                             "--reverse-tls-cert", pki_.server_cert.string(), "--reverse-tls-key",
                             pki_.ca_cert.string(), "simple"});
    args.insert(args.begin(), LLM_PROXY_BINARY);
    auto r = run_command(args, std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("private key"), std::string::npos) << r.err;
    args[args.size() - 2] = (work_ / "missing.key").string();  // the --reverse-tls-key value
    r = run_command(args, std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--reverse-tls-key: cannot read"), std::string::npos) << r.err;
}

}  // namespace llm_proxy::test

// Proxy authentication (--proxy-auth, --proxy-auth-file), the open-bind refusal, and the
// proxy's indifference to proxy variables in its own environment.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "e2e_fixture.hpp"
#include "llm_proxy/util/text.hpp"
#include "support/raw_socket.hpp"

namespace llm_proxy::test {

class ProxyAuth : public e2e_test {
  protected:
    static std::string basic(std::string_view user_pass) {
        return "Basic " + base64_encode(user_pass);
    }
    http_client client_with(std::optional<std::string> proxy_authorization) {
        auto o = proxy_->make_client_options(proxy_ca_cert().string());
        if (proxy_authorization) {
            o.proxy_headers = {{"Proxy-Authorization", *proxy_authorization}};
        }
        return http_client(o);
    }
    // Runs the binary with the base arguments plus `args`; for configurations that must not
    // start.
    command_result run_proxy_binary(std::vector<std::string> args) {
        auto all = base_args();
        all.insert(all.begin(), LLM_PROXY_BINARY);
        all.insert(all.end(), args.begin(), args.end());
        return run_command(all, std::chrono::seconds(20));
    }
    static bool has_header(const nlohmann::json& echoed, std::string_view name) {
        for (const auto& h : echoed["headers"]) {
            if (iequals(h[0].get<std::string>(), name)) {
                return true;
            }
        }
        return false;
    }
    static void expect_407(unsigned status, const std::optional<std::string>& authenticate,
                           const std::string& body) {
        EXPECT_EQ(status, 407u);
        EXPECT_EQ(authenticate, "Basic realm=\"llm_proxy\"");
        auto j = nlohmann::json::parse(body);
        EXPECT_EQ(j["error"]["code"], "proxy_auth_required") << body;
    }
    void expect_connect_407(std::optional<std::string> proxy_authorization) {
        auto client = client_with(std::move(proxy_authorization));
        try {
            client.get("https://api.openai.com/echo");
            ADD_FAILURE() << "CONNECT passed";
        } catch (const proxy_connect_error& e) {
            std::optional<std::string> authenticate;
            for (const auto& [k, v] : e.headers) {
                if (iequals(k, "Proxy-Authenticate")) {
                    authenticate = v;
                }
            }
            expect_407(e.status, authenticate, e.body);
        }
    }
    void expect_plain_407(std::optional<std::string> proxy_authorization) {
        auto client = client_with(std::move(proxy_authorization));
        auto r = client.get("http://api.openai.com/echo");
        expect_407(r.status, r.header("Proxy-Authenticate"), r.body);
    }
};

TEST_F(ProxyAuth, CorrectCredentialsPassAndAreNeitherForwardedNorRecorded) {
    start_dir_logger({"--proxy-auth", "alice:s3cret", "--proxy-auth", "bob:pa:ss"});
    auto tunnel = client_with(basic("alice:s3cret"));
    auto r = tunnel.get("https://api.openai.com/echo", {{"Authorization", "Bearer sk-test"}});
    ASSERT_EQ(r.status, 200u) << r.body;
    auto plain = client_with(basic("bob:pa:ss"));
    auto r2 = plain.get("http://api.openai.com/echo");
    ASSERT_EQ(r2.status, 200u) << r2.body;
    for (const auto* body : {&r.body, &r2.body}) {
        auto echoed = nlohmann::json::parse(*body);
        EXPECT_FALSE(has_header(echoed, "Proxy-Authorization")) << *body;
    }
    EXPECT_TRUE(has_header(nlohmann::json::parse(r.body), "Authorization"));
    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    for (const auto& rec : records) {
        EXPECT_EQ(rec.dump().find("Proxy-Authorization"), std::string::npos) << rec.dump(2);
        EXPECT_EQ(rec.dump().find(base64_encode("bob:pa:ss")), std::string::npos);
    }
    EXPECT_EQ(proxy_->stderr_text().find("s3cret"), std::string::npos);
}

TEST_F(ProxyAuth, MissingCredentialsAre407) {
    start_proxy({"--proxy-auth", "alice:s3cret", "simple"});
    expect_connect_407(std::nullopt);
    expect_plain_407(std::nullopt);
    EXPECT_EQ(upstream_->stats()["requests"], 0);
}

TEST_F(ProxyAuth, WrongCredentialsAre407) {
    start_proxy({"--proxy-auth", "alice:s3cret", "simple"});
    for (std::string wrong : {basic("alice:s3cre"), basic("alice:s3cret!"), basic("bob:s3cret"),
                              std::string("Basic !!!"), std::string("Bearer s3cret"),
                              "basic " + base64_encode("alice")}) {
        SCOPED_TRACE(wrong);
        expect_connect_407(wrong);
        expect_plain_407(wrong);
    }
    EXPECT_EQ(upstream_->stats()["requests"], 0);
}

TEST_F(ProxyAuth, CurlWithProxyUserAndWithCredentialsInTheProxyUrl) {
    start_proxy({"--proxy-auth", "alice:s3cret", "simple"});
    auto ok = curl({"--proxy-user", "alice:s3cret", "--cacert", proxy_ca_cert().string(),
                    "https://api.openai.com/echo"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_NE(ok.out.find("\"/echo\""), std::string::npos) << ok.out;

    auto refused = curl({"-i", "http://api.openai.com/echo"});
    EXPECT_EQ(refused.exit_code, 0) << refused.err;
    auto parsed = parse_curl_include(refused.out);
    expect_407(parsed.status, parsed.header("Proxy-Authenticate"), parsed.body);

    // HTTPS_PROXY=http://user:pass@host:port, as most clients take it.
    spawn_options env;
    env.env = {{"HTTPS_PROXY", "http://alice:s3cret@127.0.0.1:" + std::to_string(proxy_->port())}};
    auto via_env = run_command({"curl", "-sS", "--max-time", "20", "--cacert",
                                proxy_ca_cert().string(), "https://api.openai.com/echo"},
                               std::chrono::seconds(30), "", env);
    EXPECT_EQ(via_env.exit_code, 0) << via_env.err;
    EXPECT_NE(via_env.out.find("\"/echo\""), std::string::npos) << via_env.out;
}

TEST_F(ProxyAuth, CredentialsFile) {
    auto file = work_.write_file("users", "# proxy users\n\nalice:s3cret\ncarol:x:y\n");
    start_proxy({"--proxy-auth-file", file.string(), "simple"});
    EXPECT_EQ(client_with(basic("carol:x:y")).get("http://api.openai.com/echo").status, 200u);
    expect_plain_407(basic("carol:x"));
}

TEST_F(ProxyAuth, BcryptHtpasswdFile) {
    // `htpasswd -B` style (bcrypt, cost 4) for "s3cret w0rd".
    auto file = work_.write_file(
        "htpasswd", "alice:$2b$04$Q3yy5L32q8aLmMd/7Z.QYOGCZx9.Rkm3lV7PQ.xLgbsLo89cdpWkm\n");
    start_proxy({"--proxy-auth-file", file.string(), "simple"});
    for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(client_with(basic("alice:s3cret w0rd")).get("http://api.openai.com/echo").status,
                  200u);
        expect_plain_407(basic("alice:s3cret"));
    }
}

TEST_F(ProxyAuth, BadCredentialsFileExits2) {
    auto bad = work_.write_file("bad", "alice:s3cret\nno colon here\n");
    auto r = run_proxy_binary({"--proxy-auth-file", bad.string(), "simple"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(bad.string() + " line 2: expected USER:PASSWORD"), std::string::npos)
        << r.err;

    auto hashed =
        work_.write_file("hashed", "alice:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT\n");
    r = run_proxy_binary({"--proxy-auth-file", hashed.string(), "simple"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("line 1: the password hash is malformed"), std::string::npos) << r.err;

    r = run_proxy_binary({"--proxy-auth-file", (work_ / "missing").string(), "simple"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("cannot read"), std::string::npos) << r.err;
}

TEST_F(ProxyAuth, OpenBindIsRefusedWithoutAuth) {
    auto r = run_proxy_binary({"--listen", "0.0.0.0:0", "simple"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("is not a loopback address"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("listening on"), std::string::npos) << r.err;
}

TEST_F(ProxyAuth, OpenBindStartsWithAllowOpenProxy) {
    start_proxy({"--listen", "0.0.0.0:0", "--allow-open-proxy", "simple"});
    EXPECT_EQ(client_with(std::nullopt).get("http://api.openai.com/echo").status, 200u);
}

TEST_F(ProxyAuth, OpenBindStartsWithProxyAuth) {
    start_proxy({"--listen", "0.0.0.0:0", "--proxy-auth", "alice:s3cret", "simple"});
    EXPECT_EQ(client_with(basic("alice:s3cret")).get("http://api.openai.com/echo").status, 200u);
    expect_plain_407(std::nullopt);
}

TEST_F(ProxyAuth, ProxyVariablesInTheProxysEnvironmentAreIgnored) {
    std::uint16_t dead_port;
    {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
        dead_port = a.local_endpoint().port();
    }
    auto dead = "http://127.0.0.1:" + std::to_string(dead_port);
    spawn_options env;
    env.env = {{"HTTPS_PROXY", dead}, {"HTTP_PROXY", dead}, {"ALL_PROXY", dead},
               {"https_proxy", dead}, {"http_proxy", dead}, {"all_proxy", dead},
               {"NO_PROXY", ""},      {"no_proxy", ""}};
    auto args = base_args();
    args.push_back("simple");
    proxy_ = std::make_unique<proxy_process>(args, env);
    auto client = proxied_client();
    EXPECT_EQ(client.get("https://api.openai.com/echo").status, 200u);
    EXPECT_EQ(client.get("http://api.openai.com/echo").status, 200u);
    EXPECT_EQ(upstream_->stats()["requests"], 2);
}

}  // namespace llm_proxy::test

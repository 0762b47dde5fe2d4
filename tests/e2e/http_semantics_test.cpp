// HTTP/1.1 correctness through the proxy: bodyless responses, Expect, HTTP/1.0 clients,
// framing conversions, header rewriting, keep-alive reuse, the upgrader switch.
#include <thread>

#include "e2e_fixture.hpp"

namespace llm_proxy::test {

class HttpSemantics : public e2e_test {};

TEST_F(HttpSemantics, HeadAnd204And304HaveNoBody) {
    start_proxy({"simple"});
    auto client = proxied_client();
    auto head = client.request("HEAD", "https://api.openai.com/v1/models");
    EXPECT_EQ(head.status, 200u);
    EXPECT_TRUE(head.body.empty());
    EXPECT_TRUE(head.header("Content-Length").has_value());
    auto no_content = client.get("https://api.openai.com/status/204");
    EXPECT_EQ(no_content.status, 204u);
    EXPECT_TRUE(no_content.body.empty());
    auto not_modified = client.get("https://api.openai.com/status/304");
    EXPECT_EQ(not_modified.status, 304u);
    EXPECT_TRUE(not_modified.body.empty());
    // The connection is still in sync after all three.
    auto after = client.get("https://api.openai.com/v1/models");
    EXPECT_EQ(after.status, 200u);
    EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(HttpSemantics, ExpectContinueUploadsWork) {
    start_proxy({"simple"});
    std::string body(300 * 1024, 'x');
    auto file = work_.write_file("upload.txt", body);
    for (const char* url : {"http://api.openai.com/echo", "https://api.openai.com/echo"}) {
        auto r = curl({"--cacert", proxy_ca_cert().string(), "-H", "Expect: 100-continue",
                       "--data-binary", "@" + file.string(), url});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        auto echo = nlohmann::json::parse(r.out);
        EXPECT_EQ(echo["body_length"], body.size()) << url;
        for (const auto& h : echo["headers"]) {
            EXPECT_NE(h[0].get<std::string>(), "Expect");  // handled by the proxy itself
        }
    }
}

TEST_F(HttpSemantics, Http10ClientsAreServed) {
    start_proxy({"simple"});
    auto r = curl({"-0", "-i", "http://api.openai.com/v1/models"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto res = parse_curl_include(r.out);
    EXPECT_EQ(res.status, 200u);
    EXPECT_EQ(nlohmann::json::parse(res.body)["object"], "list");
    // A chunked upstream body reaches an HTTP/1.0 client close-delimited.
    auto d = curl({"-0", "-i", "http://api.openai.com/download?bytes=100000&chunked=1"});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    auto dres = parse_curl_include(d.out);
    EXPECT_EQ(dres.body.size(), 100000u);
    EXPECT_FALSE(dres.header("Transfer-Encoding").has_value());
}

TEST_F(HttpSemantics, CloseDelimitedUpstreamBecomesChunked) {
    start_proxy({"simple"});
    auto client = proxied_client();
    auto r = client.get("https://api.openai.com/close-delimited");
    EXPECT_EQ(r.status, 200u);
    EXPECT_FALSE(r.body.empty());
    EXPECT_EQ(r.header("Transfer-Encoding").value_or(""), "chunked");
    // The client connection stays usable although the upstream one closed.
    EXPECT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
    EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(HttpSemantics, HostAndHopByHopHeadersAreRewritten) {
    start_proxy({"simple"});
    auto client = proxied_client();
    auto r = client.request("POST", "http://api.openai.com/echo?x=1",
                            {{"Authorization", "Bearer sk-pass-through"},
                             {"Connection", "keep-alive, X-Hop"},
                             {"X-Hop", "secret"},
                             {"Keep-Alive", "timeout=5"},
                             {"Proxy-Authorization", "Basic Zm9vOmJhcg=="},
                             {"X-End-To-End", "kept"}},
                            "{\"hello\":1}");
    ASSERT_EQ(r.status, 200u);
    auto echo = nlohmann::json::parse(r.body);
    EXPECT_EQ(echo["target"], "/echo?x=1");  // origin-form upstream
    std::map<std::string, std::string> seen;
    for (const auto& h : echo["headers"]) {
        std::string name = h[0];
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        seen[name] = h[1];
    }
    EXPECT_EQ(seen["host"], "api.openai.com");
    EXPECT_EQ(seen["authorization"], "Bearer sk-pass-through");  // filtered from logs only
    EXPECT_EQ(seen["x-end-to-end"], "kept");
    EXPECT_FALSE(seen.contains("x-hop"));
    EXPECT_FALSE(seen.contains("keep-alive"));
    EXPECT_FALSE(seen.contains("proxy-authorization"));
    EXPECT_FALSE(seen.contains("proxy-connection"));
    EXPECT_EQ(echo["body"], "{\"hello\":1}");
}

TEST_F(HttpSemantics, ChunkedRequestBodyIsRelayed) {
    start_proxy({"simple"});
    auto r = curl({"--cacert", proxy_ca_cert().string(), "-H", "Transfer-Encoding: chunked",
                   "--data-binary", "streamed request body", "https://api.openai.com/echo"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto echo = nlohmann::json::parse(r.out);
    EXPECT_EQ(echo["body"], "streamed request body");
}

TEST_F(HttpSemantics, UpstreamConnectionsAreReused) {
    start_proxy({"simple"});
    upstream_->reset_stats();
    for (int i = 0; i < 2; ++i) {
        auto client = proxied_client();  // a new client connection each time
        for (int j = 0; j < 5; ++j) {
            EXPECT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
        }
    }
    auto stats = upstream_->stats();
    EXPECT_EQ(stats["requests"], 10);
    // --threads 2: at most one pooled connection per worker, plus this stats query's own.
    EXPECT_LE(stats["connections"].get<int>(), 3);
}

TEST_F(HttpSemantics, IdleUpstreamConnectionsAreCappedOverAllHosts) {
    // Every port of api.openai.com reaches the fake upstream, so each port is its own pool key.
    start_proxy({"--connect-to", "api.openai.com::127.0.0.1:" + std::to_string(upstream_->port()),
                 "--max-idle-upstream", "2", "simple"});
    upstream_->reset_stats();
    for (int port = 1001; port <= 1010; ++port) {
        auto client = proxied_client();
        EXPECT_EQ(
            client.get("https://api.openai.com:" + std::to_string(port) + "/v1/models").status,
            200u);
    }
    // Two workers (--threads 2) keep at most 2 idle connections each; the others are closed
    // (oldest first) as new ones are released. The stats query below is one more connection.
    int open = -1;
    for (int i = 0; i < 50; ++i) {
        open = upstream_->stats()["open_connections"].get<int>();
        if (open <= 5) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_LE(open, 5);
    EXPECT_GE(open, 3);  // the cap keeps connections; it does not close them all
    EXPECT_EQ(upstream_->stats()["by_path"]["/v1/models"], 10);
}

TEST_F(HttpSemantics, NoHttpUpgraderKeepsPlainHttp) {
    fake_upstream plain(fake_upstream::plain);
    start_proxy({"--no-http-upgrader", "--connect-to",
                 "plain.test:80:127.0.0.1:" + std::to_string(plain.port()), "simple"});
    auto r = curl({"-i", "http://plain.test/v1/models"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto res = parse_curl_include(r.out);
    EXPECT_EQ(res.status, 200u);
    EXPECT_FALSE(res.header("X-Llm_proxy-scheme-upgraded").has_value());
    EXPECT_EQ(plain.stats()["requests"], 1);
}

TEST_F(HttpSemantics, IpAddressHostsGetIpCertificates) {
    start_proxy({"simple"});
    // CONNECT 127.0.0.1:<upstream>: the leaf carries an IP SAN; the upstream cert has one too.
    auto r = curl({"--cacert", proxy_ca_cert().string(),
                   "https://127.0.0.1:" + std::to_string(upstream_->port()) + "/v1/models"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["object"], "list");
}

TEST_F(HttpSemantics, PlainHttpInsideConnectTunnel) {
    fake_upstream plain(fake_upstream::plain);
    start_proxy({"--no-http-upgrader", "simple"});
    // curl -p tunnels plain HTTP through CONNECT.
    auto r = curl({"-p", "http://127.0.0.1:" + std::to_string(plain.port()) + "/v1/models"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["object"], "list");
}

TEST_F(HttpSemantics, ConcurrentClients) {
    start_dir_logger();
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&] {
            auto client = proxied_client();
            for (int i = 0; i < 10; ++i) {
                auto r = client.post("https://api.openai.com/v1/chat/completions",
                                     R"({"model":"gpt-4o-mini","messages":[]})",
                                     {{"Content-Type", "application/json"}});
                ok += r.status == 200 ? 1 : 0;
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(ok.load(), 160);
    EXPECT_EQ(wait_for_records(160).size(), 160u);
}

}  // namespace llm_proxy::test

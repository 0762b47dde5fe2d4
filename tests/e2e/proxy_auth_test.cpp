// Proxy authentication (--proxy-auth, --proxy-auth-file), the open-bind refusal, and the
// proxy's indifference to proxy variables in its own environment.
#include <crypt.h>
#include <poll.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <thread>

#include <algorithm>
#include <thread>

#include "e2e_fixture.hpp"
#include "llm_proxy/util/text.hpp"
#include "support/node_sdk.hpp"
#include "support/raw_socket.hpp"

namespace llm_proxy::test {

class ProxyAuth : public e2e_test {
  protected:
    // Waits (10 s at most) until `n` records of relayed requests and `total` records in all are
    // written; returns all records, the refused requests' (407: a `rejected` object) included.
    std::vector<nlohmann::json> wait_for_relayed_records(std::size_t n, std::size_t total = 0) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (;;) {
            auto all = wait_for_records(0, std::chrono::milliseconds(0));
            auto relayed = std::count_if(all.begin(), all.end(),
                                         [](const auto& r) { return !r.contains("rejected"); });
            if ((static_cast<std::size_t>(relayed) >= n && all.size() >= total) ||
                std::chrono::steady_clock::now() > deadline) {
                return all;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
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

// A password with characters that must be percent-encoded in a proxy URL: each client has to
// decode it, and the proxy has to take --proxy-auth literally (a literal "%41" is no "A").
const std::string odd_password = "p@ss:w/rd%41";
const std::string odd_password_in_url = "p%40ss%3Aw%2Frd%2541";

// GETs argv[4] with Python's requests or httpx (argv[1]) through the proxy URL argv[2],
// trusting the CA in argv[3]; prints {"status", "body", "authenticate"} or {"proxy_error"}.
const char* const python_proxy_client = R"PY(
import json, sys
import httpx, requests
lib, proxy, ca, url = sys.argv[1:5]
try:
    if lib == "requests":
        with requests.Session() as s:
            s.trust_env = False  # the proxy below only, whatever the environment says
            r = s.get(url, proxies={"http": proxy, "https": proxy}, verify=ca, timeout=20)
        status, body, headers = r.status_code, r.text, r.headers
    else:
        with httpx.Client(proxies=proxy, verify=ca, timeout=20, trust_env=False) as c:
            r = c.get(url)
        status, body, headers = r.status_code, r.text, r.headers
    print(json.dumps({"status": status, "body": body,
                      "authenticate": headers.get("Proxy-Authenticate")}))
except (requests.exceptions.ProxyError, httpx.ProxyError) as e:
    print(json.dumps({"proxy_error": f"{type(e).__name__}: {e}"}))
)PY";

TEST_F(ProxyAuth, PythonRequestsAndHttpxWithCredentialsInTheProxyUrl) {
    start_dir_logger({"--proxy-auth", "alice:" + odd_password});
    auto script = work_.write_file("proxy_client.py", python_proxy_client);
    auto port = std::to_string(proxy_->port());
    const std::string good = "http://alice:" + odd_password_in_url + "@127.0.0.1:" + port;
    auto run = [&](const std::string& lib, const std::string& proxy, const std::string& url) {
        auto r = run_command({python3, script.string(), lib, proxy, proxy_ca_cert().string(), url},
                             std::chrono::seconds(30));
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        auto j = nlohmann::json::parse(r.out, nullptr, false);
        EXPECT_TRUE(j.is_object()) << r.out << r.err;
        return j.is_object() ? j : nlohmann::json::object();
    };
    std::size_t passed = 0;
    for (const std::string lib : {"requests", "httpx"}) {
        SCOPED_TRACE(lib);
        for (const std::string scheme : {"https", "http"}) {
            SCOPED_TRACE(scheme);
            auto ok = run(lib, good, scheme + "://api.openai.com/echo?client=" + lib);
            ASSERT_EQ(ok.value("status", 0), 200) << ok.dump();
            auto echoed = nlohmann::json::parse(ok["body"].get<std::string>());
            EXPECT_EQ(echoed["target"], "/echo?client=" + lib);
            EXPECT_FALSE(has_header(echoed, "Proxy-Authorization")) << echoed.dump();
            ++passed;
        }
        // Refused: "p@ss:w/rdA" (what a proxy that percent-decoded --proxy-auth would accept),
        // the URL-encoded form itself "p%40ss%3Aw%2Frd%41" (what a client that did not decode
        // the URL would send), and a plain wrong password.
        for (const std::string& password :
             {std::string("p%40ss%3Aw%2Frd%41"), std::string("p%2540ss%253Aw%252Frd%2541"),
              std::string("wrong")}) {
            SCOPED_TRACE(password);
            const std::string bad = "http://alice:" + password + "@127.0.0.1:" + port;
            auto tunnel = run(lib, bad, "https://api.openai.com/echo");
            ASSERT_TRUE(tunnel.contains("proxy_error")) << tunnel.dump();
            EXPECT_NE(tunnel["proxy_error"].get<std::string>().find("407"), std::string::npos)
                << tunnel.dump();
            auto plain = run(lib, bad, "http://api.openai.com/echo");
            EXPECT_EQ(plain.value("status", 0), 407) << plain.dump();
            EXPECT_EQ(plain.value("authenticate", ""), "Basic realm=\"llm_proxy\"");
        }
    }
    // Each library passed twice (a tunnel and a plain request) and was refused six times.
    auto records = wait_for_relayed_records(passed, passed + 3 * passed);
    std::size_t relayed = 0;
    for (const auto& rec : records) {
        if (rec.contains("rejected")) {
            // A refused request's record: the 407, without the credentials that were sent.
            EXPECT_EQ(rec["rejected"]["status"], 407) << rec.dump(2);
            EXPECT_EQ(rec["error"]["kind"], "proxy_auth_required") << rec.dump(2);
        } else {
            ++relayed;
            EXPECT_EQ(rec["response"]["status"], 200) << rec.dump(2);
        }
        auto text = rec.dump();
        EXPECT_EQ(text.find("p%40ss"), std::string::npos) << rec.dump(2);
        EXPECT_EQ(text.find(base64_encode("alice:wrong")), std::string::npos) << rec.dump(2);
        EXPECT_EQ(text.find("Proxy-Authorization"), std::string::npos) << rec.dump(2);
        EXPECT_EQ(text.find(base64_encode("alice:" + odd_password)), std::string::npos);
    }
    EXPECT_EQ(relayed, passed);
    EXPECT_GE(records.size(), passed + 3 * passed) << "each refused request leaves a record";
    EXPECT_EQ(upstream_->stats()["requests"], passed);
}

// The OpenAI Node SDK with an agent built from HTTPS_PROXY (how its documentation configures a
// proxy; https-proxy-agent takes the credentials from the URL and decodes them).
TEST_F(ProxyAuth, OpenAiNodeSdkThroughHttpsProxyWithCredentialsStreamsAChatCompletion) {
    ASSERT_EQ(missing_node_packages({"openai", "https-proxy-agent"}), "");
    start_dir_logger({"--proxy-auth", "alice:" + odd_password});
    auto script = work_.write_file("sdk_via_proxy.js", R"JS(
const { OpenAI } = require('openai');
const { HttpsProxyAgent } = require('https-proxy-agent');
const client = new OpenAI({ apiKey: 'sk-test', maxRetries: 0,
                            httpAgent: new HttpsProxyAgent(process.env.HTTPS_PROXY) });
(async () => {
  const stream = await client.chat.completions.create(
    { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'X-Fake-Events': '5' } });
  let content = '';
  let chunks = 0;
  for await (const chunk of stream) {
    content += chunk.choices[0]?.delta?.content ?? '';
    ++chunks;
  }
  console.log(JSON.stringify({ content, chunks }));
})().catch((e) => { console.error(String(e)); process.exit(1); });
)JS");
    auto port = std::to_string(proxy_->port());
    auto run = [&](const std::string& password) {
        return run_node_script(script, {},
                               {{"HTTPS_PROXY", "http://alice:" + password + "@127.0.0.1:" + port},
                                {"NODE_EXTRA_CA_CERTS", proxy_ca_cert().string()}});
    };
    auto refused = run("wrong");
    EXPECT_NE(refused.exit_code, 0) << refused.out;
    EXPECT_NE(refused.err.find("407"), std::string::npos) << refused.err;

    auto r = run(odd_password_in_url);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto sdk = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(sdk.is_object()) << r.out;
    // What the fake upstream streams for X-Fake-Events: 5, reassembled from the deltas.
    EXPECT_EQ(sdk["content"], "tok0 tok1 tok2 tok3 tok4 ");
    EXPECT_EQ(sdk["chunks"], 5);
    auto records = wait_for_relayed_records(1, 2);
    ASSERT_EQ(records.size(), 2u) << "the refused CONNECT and the stream leave a record each";
    std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
        return !a.contains("rejected") && b.contains("rejected");
    });
    EXPECT_EQ(records[1]["rejected"]["status"], 407);
    EXPECT_EQ(records[1]["rejected"]["target"], "api.openai.com:443");
    EXPECT_EQ(records[1].dump().find(base64_encode("alice:wrong")), std::string::npos);
    const auto& rec = records[0];
    EXPECT_EQ(rec["request"]["url"], "https://api.openai.com/v1/chat/completions");
    EXPECT_EQ(rec["llm"]["output"]["content"], sdk["content"]);
    auto text = rec.dump();
    EXPECT_EQ(text.find("Proxy-Authorization"), std::string::npos) << rec.dump(2);
    EXPECT_EQ(text.find(base64_encode("alice:" + odd_password)), std::string::npos);
    EXPECT_EQ(text.find(odd_password), std::string::npos);
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

// The slow hash of a hashed line runs off the event loop: with one worker, a client whose
// clear-text credentials are checked at once is answered while another client's bcrypt check
// (cost 13, about half a second) is still running.
TEST_F(ProxyAuth, TheSlowHashCheckDoesNotHoldTheEventLoop) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    ASSERT_NE(crypt_gensalt_rn("$2b$", 13, nullptr, 0, salt, sizeof salt), nullptr);
    crypt_data data{};
    const char* hash = crypt_r("slow pass", salt, &data);
    ASSERT_NE(hash, nullptr);
    ASSERT_EQ(std::string(hash).substr(0, 7), "$2b$13$");
    auto file = work_.write_file("htpasswd", "alice:" + std::string(hash) + "\n");
    auto args = base_args();
    auto threads = std::find(args.begin(), args.end(), "--threads");
    ASSERT_NE(threads, args.end());
    *(threads + 1) = "1";
    args.insert(args.end(),
                {"--proxy-auth-file", file.string(), "--proxy-auth", "bob:fast", "simple"});
    proxy_ = std::make_unique<proxy_process>(args);

    unique_fd slow(connect_raw("127.0.0.1", proxy_->port(), std::chrono::seconds(60)));
    ASSERT_TRUE(send_all(slow.get(),
                         "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: "
                         "api.openai.com:443\r\nProxy-Authorization: " +
                             basic("alice:slow pass") + "\r\n\r\n"));
    // Gives the proxy time to read that request and start its check (had it not, the test
    // would prove nothing; it could not fail for that reason).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(client_with(basic("bob:fast")).get("http://api.openai.com/echo").status, 200u);
    // Answered while the bcrypt check still runs: the slow client has no answer yet.
    pollfd p{slow.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 0) << "the slow check finished before the fast client's answer";
    EXPECT_EQ(recv_some(slow.get(), std::chrono::seconds(60), 12).substr(0, 12), "HTTP/1.1 200");
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

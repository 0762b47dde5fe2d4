// The original README's commands, run exactly as written against the real binary.
#include <sys/stat.h>

#include "e2e_fixture.hpp"

namespace llm_proxy::test {

class ReadmeCommands : public e2e_test {};

TEST_F(ReadmeCommands, CurlPlainHttpIsUpgradedAndLogged) {
    start_dir_logger();
    auto r = curl({"-i", "-X", "GET", "-H", "Authorization: Bearer sk-test-secret",
                   "http://api.openai.com/v1/models"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto res = parse_curl_include(r.out);
    EXPECT_EQ(res.status, 200u);
    EXPECT_EQ(res.header("X-Llm_proxy-scheme-upgraded").value_or(""), "true");
    EXPECT_EQ(res.header("X-Fake-Upstream").value_or(""), "1");  // the real upstream answered
    auto body = nlohmann::json::parse(res.body);
    EXPECT_EQ(body["object"], "list");

    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    auto& rec = records[0];
    EXPECT_EQ(rec["object_type"], "llm_proxy_traffic_log");
    EXPECT_EQ(rec["schema"], "v2");
    EXPECT_EQ(rec["request"]["method"], "GET");
    EXPECT_EQ(rec["request"]["url"], "https://api.openai.com/v1/models");
    EXPECT_EQ(rec["response"]["status"], 200);
    EXPECT_FALSE(rec["request"]["header"].contains("Authorization"));
    EXPECT_EQ(nlohmann::json::parse(rec["response"]["body"].get<std::string>())["object"], "list");
    EXPECT_EQ(rec["connection_stats"]["url"], "https://api.openai.com/v1/models");
    // Exactly one line per request with --verbose.
    EXPECT_TRUE(proxy_->wait_for_stderr_line(
        std::regex("GET https://api.openai.com/v1/models -> 200"), std::chrono::seconds(5)));
}

TEST_F(ReadmeCommands, CurlHttpsThroughConnectWithTheProxyCa) {
    start_dir_logger();
    for (const char* ca_file : {"mitmproxy-ca-cert.pem", "mitmproxy-ca.pem"}) {
        auto r = curl({"-i", "--cacert", (work_ / "ca" / ca_file).string(), "-X", "GET", "-H",
                       "Authorization: Bearer sk-test", "https://api.openai.com/v1/models"});
        ASSERT_EQ(r.exit_code, 0) << ca_file << ": " << r.err;
        auto res = parse_curl_include(r.out);
        EXPECT_EQ(res.status, 200u);
        EXPECT_FALSE(res.header("X-Llm_proxy-scheme-upgraded"));
        EXPECT_EQ(nlohmann::json::parse(res.body)["object"], "list");
    }
    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0]["request"]["url"], "https://api.openai.com/v1/models");
}

TEST_F(ReadmeCommands, CurlWithoutTrustingTheCaIsRefusedByCurl) {
    start_dir_logger();
    auto r = curl({"https://api.openai.com/v1/models"});
    EXPECT_EQ(r.exit_code, 60) << r.err;  // curl: peer certificate cannot be authenticated
}

TEST_F(ReadmeCommands, FirstRunCreatesMitmproxyCaFiles) {
    start_dir_logger();
    for (const char* f : {"mitmproxy-ca.pem", "mitmproxy-ca-cert.pem", "mitmproxy-ca-cert.cer",
                          "mitmproxy-ca-cert.p12"}) {
        EXPECT_TRUE(std::filesystem::exists(work_ / "ca" / f)) << f;
    }
    struct stat st {};
    ASSERT_EQ(::stat((work_ / "ca" / "mitmproxy-ca.pem").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST_F(ReadmeCommands, OpensslRecipeCaDirectoryWorks) {
    auto dir = work_ / "recipe";
    std::filesystem::create_directories(dir);
    auto key = (dir / "mitmproxy-ca-cert.key").string();
    auto pem = (dir / "mitmproxy-ca-cert.pem").string();
    ASSERT_EQ(
        run_command({"openssl", "genrsa", "-out", key, "2048"}, std::chrono::seconds(30)).exit_code,
        0);
    ASSERT_EQ(run_command({"openssl", "req", "-x509", "-new", "-nodes", "-key", key, "-sha256",
                           "-days", "3650", "-out", pem, "-subj", "/CN=recipe test CA"},
                          std::chrono::seconds(30))
                  .exit_code,
              0);
    ca_dir_ = dir;
    start_proxy({"dir_logger", "-o", log_dir().string()});
    auto r = curl({"--cacert", pem, "https://api.openai.com/v1/models"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["object"], "list");
    EXPECT_FALSE(std::filesystem::exists(dir / "mitmproxy-ca.pem"));  // loaded as is
}

TEST_F(ReadmeCommands, PythonHttpxClientAsInTheReadme) {
    start_dir_logger();
    // The README's httpx client (base_url http://api.openai.com, proxies=...), plus an HTTPS
    // client trusting the proxy CA; streaming and non-streaming chat completions.
    std::string script = R"PY(
import json, sys, time, httpx
proxy, ca = sys.argv[1], sys.argv[2]
out = {}
with httpx.Client(base_url="http://api.openai.com", proxies=proxy) as client:
    r = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                    headers={"Authorization": "Bearer sk-test"})
    out["plain_status"] = r.status_code
    out["plain_content"] = r.json()["choices"][0]["message"]["content"]
    out["upgraded"] = r.headers.get("x-llm_proxy-scheme-upgraded")
with httpx.Client(base_url="https://api.openai.com", proxies=proxy, verify=ca) as client:
    times = []
    with client.stream("POST", "/v1/chat/completions", json={"model": "gpt-4o-mini", "stream": True, "messages": []},
                       headers={"X-Fake-Events": "4", "X-Fake-Interval-Ms": "150"}) as r:
        out["stream_status"] = r.status_code
        for line in r.iter_lines():
            line = line.strip()
            if line.startswith("data: ") and line != "data: [DONE]":
                times.append(time.time())
    out["events"] = len(times)
    out["spread_s"] = times[-1] - times[0] if times else 0
print(json.dumps(out))
)PY";
    auto script_path = work_.write_file("client.py", script);
    auto r = run_command({python3, script_path.string(), proxy_->url(), proxy_ca_cert().string()},
                         std::chrono::seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto out = nlohmann::json::parse(r.out);
    EXPECT_EQ(out["plain_status"], 200);
    EXPECT_FALSE(out["plain_content"].get<std::string>().empty());
    EXPECT_EQ(out["upgraded"], "true");
    EXPECT_EQ(out["stream_status"], 200);
    EXPECT_EQ(out["events"], 4);
    // 4 events 150 ms apart arrive spread over ~450 ms, not in one burst at the end.
    EXPECT_GT(out["spread_s"].get<double>(), 0.3);
    auto records = wait_for_records(2);
    ASSERT_EQ(records.size(), 2u);
    auto body = records[1]["response"]["body"].get<std::string>();
    EXPECT_NE(body.find("data: [DONE]"), std::string::npos);  // the SSE stream is logged whole
}

}  // namespace llm_proxy::test

namespace llm_proxy::test {

TEST_F(ReadmeCommands, NodeAcceptsTheInterceptionCertificates) {
    start_proxy({"simple"});
    // Node's TLS stack (strict host-name checks) through a CONNECT tunnel, trusting the CA.
    std::string script = R"JS(
const http = require('http'), tls = require('tls'), fs = require('fs');
const [host, port, ca] = process.argv.slice(2);
const req = http.request({host, port: Number(port), method: 'CONNECT', path: 'api.openai.com:443'});
req.on('connect', (res, socket) => {
  const t = tls.connect({socket, servername: 'api.openai.com', ca: fs.readFileSync(ca)}, () => {
    t.write('GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n');
  });
  let data = '';
  t.on('data', d => data += d);
  t.on('end', () => console.log(JSON.stringify({status: data.split(' ')[1], authorized: t.authorized,
                                                alpn: t.alpnProtocol || ''})));
  t.on('error', e => { console.log(JSON.stringify({error: e.message})); process.exit(1); });
});
req.end();
)JS";
    auto path = work_.write_file("client.js", script);
    auto r = run_command({"node", path.string(), proxy_->host(), std::to_string(proxy_->port()),
                          proxy_ca_cert().string()},
                         std::chrono::seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto out = nlohmann::json::parse(r.out);
    EXPECT_EQ(out["status"], "200");
    EXPECT_EQ(out["authorized"], true);
}

}  // namespace llm_proxy::test

// --web and `llm_proxy web DIR`: the real binary serves the web view. A flow sent through the
// proxy is listed and detailed (secrets filtered, the llm object), pushed over the event stream
// (a streamed flow in flight, then finished); a foreign Host is refused; a non-loopback address
// without a token does not start; the token is required when set, and --proxy-auth's
// credentials open it as well (on any address); records on disk (both layouts) are served, and a
// flow not in the ring is read from this run's records (either layout), shown with the
// records' header filters; a prompt holding <script> comes back as an escaped JSON string.

#include <atomic>
#include <fstream>
#include <regex>
#include <thread>

#include "e2e_fixture.hpp"
#include "support/web_kit.hpp"

namespace llm_proxy::test {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string chat_body =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to the web view."}]})";

}  // namespace

class Web : public e2e_test {
  protected:
    // Starts the proxy with `args` and --web on any loopback port.
    void start_with_web(std::vector<std::string> args) {
        args.insert(args.end(), {"--web", "127.0.0.1:0"});
        start_proxy(args);
        web_port_ = wait_for_web_port(proxy_->process());
        ASSERT_NE(web_port_, 0) << proxy_->stderr_text();
    }

    response web_get(const std::string& path, header_list headers = {}) {
        http_client direct;
        return direct.get(web_url(web_port_, path), headers);
    }

    // The flows listed, once `pred` holds for one of them (or after 10 s).
    json wait_for_flow(const std::function<bool(const json&)>& pred) {
        json list;
        auto deadline = std::chrono::steady_clock::now() + 10s;
        do {
            list = json::parse(web_get("/api/flows").body);
            for (const auto& f : list["flows"]) {
                if (pred(f)) {
                    return f;
                }
            }
            std::this_thread::sleep_for(20ms);
        } while (std::chrono::steady_clock::now() < deadline);
        ADD_FAILURE() << "no such flow in " << list.dump(2);
        return json();
    }

    // The detail of a record this run did not make (not in the ring): the request of URL
    // https://api.openai.com/v1/models?`query`, under id `id`.
    void expect_earlier_record(const std::string& id, const std::string& query) {
        auto detail = web_get("/api/flows/" + id);
        ASSERT_EQ(detail.status, 200u) << detail.body;
        auto d = json::parse(detail.body);
        EXPECT_EQ(d["record"]["request"]["url"], "https://api.openai.com/v1/models?" + query);
        EXPECT_EQ(d["summary"]["path"], "/v1/models?" + query);
    }

    std::uint16_t web_port_ = 0;
};

TEST_F(Web, ListsAndDetailsAFlowSentThroughTheProxy) {
    start_with_web({"simple"});
    auto client = proxied_client();
    auto chat = client.post(
        "https://api.openai.com/v1/chat/completions", chat_body,
        {{"Content-Type", "application/json"}, {"Authorization", "Bearer sk-web-secret-123"}});
    ASSERT_EQ(chat.status, 200u) << chat.body;

    auto f = wait_for_flow(
        [](const json& f) { return f["path"] == "/v1/chat/completions" && f["state"] == "done"; });
    ASSERT_TRUE(f.is_object());
    EXPECT_EQ(f["method"], "POST");
    EXPECT_EQ(f["host"], "api.openai.com");
    EXPECT_EQ(f["status"], 200);
    EXPECT_EQ(f["model"].get<std::string>().rfind("gpt-4o-mini", 0), 0u) << f.dump();
    EXPECT_GT(f["input_tokens"].get<int>(), 0);
    EXPECT_GT(f["output_tokens"].get<int>(), 0);
    EXPECT_TRUE(f["cost_usd"].is_number()) << f.dump();
    EXPECT_TRUE(f["duration_ms"].is_number());

    auto detail = web_get("/api/flows/" + f["id"].get<std::string>());
    ASSERT_EQ(detail.status, 200u) << detail.body;
    EXPECT_EQ(detail.header("Content-Type"), "application/json");
    EXPECT_EQ(detail.body.find("sk-web-secret-123"), std::string::npos) << detail.body;
    auto d = json::parse(detail.body);
    EXPECT_EQ(json::parse(d["record"]["request"]["body"].get<std::string>()),
              json::parse(chat_body));
    EXPECT_FALSE(d["record"]["request"]["header"].contains("Authorization"));
    EXPECT_TRUE(d["record"]["request"]["header"].contains("Content-Type"));
    EXPECT_EQ(d["record"]["llm"]["provider"], "openai");
    EXPECT_EQ(d["record"]["response"]["status"], 200);
    EXPECT_TRUE(d.at("timeline").is_null()) << "not a stream";

    auto download = web_get("/api/flows/" + f["id"].get<std::string>() + "/record");
    ASSERT_EQ(download.status, 200u);
    EXPECT_NE(download.header("Content-Disposition").value_or("").find("attachment"),
              std::string::npos);
    EXPECT_EQ(json::parse(download.body)["request"]["url"],
              "https://api.openai.com/v1/chat/completions");

    auto har = web_get("/api/har?ids=" + f["id"].get<std::string>());
    ASSERT_EQ(har.status, 200u) << har.body;
    auto h = json::parse(har.body);
    ASSERT_EQ(h["log"]["entries"].size(), 1u);
    EXPECT_EQ(h["log"]["entries"][0]["request"]["method"], "POST");

    EXPECT_EQ(web_get("/api/flows/no-such-flow").status, 404u);
    EXPECT_EQ(web_get("/api/flows/%3Cx%3E").status, 400u);
    EXPECT_EQ(web_get("/api/nothing").status, 404u);
    http_client direct;
    EXPECT_EQ(direct.post(web_url(web_port_, "/api/flows"), "{}").status, 405u);
}

TEST_F(Web, EventStreamShowsAStreamedFlowInFlightThenFinished) {
    start_with_web({"simple"});
    web_event_stream events(web_port_);
    ASSERT_TRUE(events.wait_connected(10s));

    // Five events 300 ms apart: the flow is in flight for over a second.
    auto client = proxied_client();
    auto body = json::parse(chat_body);
    body["stream"] = true;
    auto chat = client.post("https://api.openai.com/v1/chat/completions", body.dump(),
                            {{"Content-Type", "application/json"},
                             {"X-Fake-Events", "5"},
                             {"X-Fake-Interval-Ms", "300"}});
    ASSERT_EQ(chat.status, 200u);

    auto done = events.wait_for(
        [](const web_event& e) {
            return e.kind == "finished" && e.flow["path"] == "/v1/chat/completions";
        },
        10s);
    ASSERT_TRUE(done) << events.text();
    EXPECT_EQ(done->flow["status"], 200);
    EXPECT_EQ(done->flow["state"], "done");
    auto all = events.events();
    auto id = done->flow["id"];
    bool in_flight_first = false;
    for (const auto& e : all) {
        if (e.flow["id"] == id) {
            in_flight_first = e.kind != "finished" && e.flow["state"] == "in_flight";
            break;
        }
    }
    EXPECT_TRUE(in_flight_first) << events.text();

    // Its detail has the stream's timeline: every event the client got, counted as it passed,
    // the last at least four 300 ms intervals after the request.
    auto detail = json::parse(web_get("/api/flows/" + id.get<std::string>()).body);
    const auto& t = detail.at("timeline");
    ASSERT_TRUE(t.is_object()) << detail.dump();
    std::size_t sent = 0;
    for (std::size_t pos = 0; (pos = chat.body.find("data:", pos)) != std::string::npos; ++pos) {
        sent += pos == 0 || chat.body[pos - 1] == '\n';
    }
    EXPECT_GE(sent, 5u) << chat.body;
    EXPECT_EQ(t.at("events").get<std::size_t>(), sent) << t.dump();
    EXPECT_EQ(t.at("bytes").get<std::size_t>(), chat.body.size());
    const auto& points = t.at("points");
    ASSERT_GE(points.size(), 2u) << t.dump();
    EXPECT_EQ(points.size(), t.at("pieces").get<std::size_t>());
    for (std::size_t i = 1; i < points.size(); ++i) {
        EXPECT_GE(points[i][0].get<double>(), points[i - 1][0].get<double>()) << t.dump();
        EXPECT_GE(points[i][2].get<std::size_t>(), points[i - 1][2].get<std::size_t>());
    }
    EXPECT_GE(points.back()[0].get<double>(), 1200.0) << t.dump();
    EXPECT_EQ(points.back()[1].get<std::size_t>(), chat.body.size());
    EXPECT_EQ(points.back()[2].get<std::size_t>(), sent);
}

TEST_F(Web, RefusesAForeignHostAndSendsStrictHeaders) {
    start_with_web({"simple"});
    auto page = web_get("/");
    ASSERT_EQ(page.status, 200u);
    EXPECT_NE(page.body.find("<script src=\"/app.js\""), std::string::npos);
    auto csp = page.header("Content-Security-Policy").value_or("");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(page.header("X-Content-Type-Options"), "nosniff");
    EXPECT_FALSE(page.header("Access-Control-Allow-Origin"));
    EXPECT_EQ(web_get("/app.js").header("Content-Type"), "text/javascript; charset=utf-8");

    auto port = std::to_string(web_port_);
    EXPECT_EQ(web_get("/api/flows", {{"Host", "localhost:" + port}}).status, 200u);
    for (const std::string& host : std::vector<std::string>{"evil.example:" + port, "evil.example",
                                                            "127.0.0.1:1", "localhost"}) {
        auto r = web_get("/api/flows", {{"Host", host}});
        EXPECT_EQ(r.status, 403u) << host;
        EXPECT_TRUE(json::parse(r.body).contains("error")) << r.body;
    }
}

TEST_F(Web, NonLoopbackWithoutTokenDoesNotStart) {
    auto argv = base_args();
    argv.insert(argv.begin(), LLM_PROXY_BINARY);
    argv.insert(argv.end(), {"simple", "--listen", "127.0.0.1:0", "--web", "0.0.0.0:0"});
    auto r = run_command(argv, 20s);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--web-token"), std::string::npos) << r.err;
}

TEST_F(Web, TokenIsRequiredWhenSet) {
    start_proxy({"simple", "--web", "127.0.0.1:0", "--web-token", "random"});
    web_port_ = wait_for_web_port(proxy_->process());
    auto line = proxy_->wait_for_stderr_line(std::regex(R"(\?token=([0-9a-f]{32}))"), 5s);
    ASSERT_TRUE(line) << proxy_->stderr_text();
    auto token = (*line)[1];

    EXPECT_EQ(web_get("/api/flows").status, 401u);
    EXPECT_EQ(web_get("/api/flows?token=wrong").status, 401u);
    auto page = web_get("/?token=" + token);
    ASSERT_EQ(page.status, 200u);
    auto cookie = page.header("Set-Cookie").value_or("");
    EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
    EXPECT_EQ(web_get("/api/flows", {{"Cookie", cookie.substr(0, cookie.find(';'))}}).status, 200u);
    EXPECT_EQ(web_get("/api/flows", {{"Authorization", "Bearer " + token}}).status, 200u);
    EXPECT_EQ(web_get("/api/flows", {{"Authorization", "Bearer x" + token}}).status, 401u);
}

TEST_F(Web, ProxyCredentialsOpenTheViewOnAnyAddress) {
    // --proxy-auth's credentials guard the view like a token: a non-loopback address starts
    // with them (only loopback is talked to here), and a browser is asked for them.
    start_proxy({"simple", "--proxy-auth", "alice:s3cret", "--web", "0.0.0.0:0"});
    web_port_ = wait_for_web_port(proxy_->process());
    ASSERT_NE(web_port_, 0) << proxy_->stderr_text();

    auto refused = web_get("/api/flows");
    EXPECT_EQ(refused.status, 401u);
    EXPECT_EQ(refused.header("WWW-Authenticate").value_or(""),
              "Basic realm=\"llm_proxy web view\", charset=\"UTF-8\"");
    EXPECT_EQ(web_get("/api/flows", {{"Authorization", "Basic YWxpY2U6d3Jvbmc="}}).status,
              401u);  // alice:wrong
    EXPECT_EQ(web_get("/api/flows", {{"Authorization", "Bearer s3cret"}}).status, 401u);
    auto page = web_get("/", {{"Authorization", "Basic YWxpY2U6czNjcmV0"}});  // alice:s3cret
    EXPECT_EQ(page.status, 200u);
    EXPECT_FALSE(page.header("Set-Cookie")) << "no token, no cookie";
    EXPECT_EQ(web_get("/api/flows", {{"Authorization", "basic YWxpY2U6czNjcmV0"}}).status, 200u);
}

TEST_F(Web, ScriptInAPromptComesBackAsAnEscapedJsonString) {
    start_with_web({"simple"});
    const std::string prompt = "<script>alert(1)</script>";
    json body = {{"model", "gpt-4o-mini"}, {"messages", {{{"role", "user"}, {"content", prompt}}}}};
    auto client = proxied_client();
    ASSERT_EQ(client
                  .post("https://api.openai.com/v1/chat/completions", body.dump(),
                        {{"Content-Type", "application/json"}})
                  .status,
              200u);
    auto f = wait_for_flow([](const json& f) { return f["state"] == "done"; });
    auto detail = web_get("/api/flows/" + f["id"].get<std::string>());
    ASSERT_EQ(detail.status, 200u);
    EXPECT_EQ(detail.body.find('<'), std::string::npos) << detail.body;
    auto d = json::parse(detail.body);
    EXPECT_EQ(
        json::parse(d["record"]["request"]["body"].get<std::string>())["messages"][0]["content"],
        prompt);
}

TEST_F(Web, AFlowNotInTheRingIsReadFromTheRecordsDirectory) {
    start_with_web({"dir_logger", "-o", log_dir().string()});
    auto client = proxied_client();
    ASSERT_EQ(client.get("https://api.openai.com/v1/models").status, 200u);
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    // A record of an earlier run (not in this run's ring), under its own file name.
    auto old = records[0];
    old["request"]["url"] = "https://api.openai.com/v1/models?earlier-run";
    std::ofstream(log_dir() / "0b7e0d6a-earlier-run.json") << old.dump(2);

    expect_earlier_record("0b7e0d6a-earlier-run", "earlier-run");
    EXPECT_EQ(web_get("/api/flows/0b7e0d6a-not-there").status, 404u);
}

TEST_F(Web, JsonlRecordsAndTheRecordsHeaderFiltersServeTheView) {
    start_with_web({"dir_logger", "--format", "jsonl", "--filter-req-headers", "X-Team-Key", "-o",
                    log_dir().string()});
    auto client = proxied_client();
    ASSERT_EQ(client
                  .get("https://api.openai.com/v1/models",
                       {{"X-Team-Key", "team-key-77"}, {"Authorization", "Bearer sk-web-88"}})
                  .status,
              200u);
    auto f = wait_for_flow([](const json& f) { return f["state"] == "done"; });
    ASSERT_TRUE(f.is_object());
    auto detail = web_get("/api/flows/" + f["id"].get<std::string>());
    ASSERT_EQ(detail.status, 200u) << detail.body;
    // The records leave X-Team-Key out, so does the view; Authorization stays out of both,
    // although the records' list replaced the default one.
    EXPECT_EQ(detail.body.find("team-key-77"), std::string::npos) << detail.body;
    EXPECT_EQ(detail.body.find("sk-web-88"), std::string::npos) << detail.body;

    // A line of an earlier run's segment (not in this run's ring) is found by its id.
    auto line = json::parse(detail.body)["record"];
    line["id"] = "0b7e0d6a-earlier-line";
    line["request"]["url"] = "https://api.openai.com/v1/models?earlier-line";
    std::ofstream(log_dir() / "llm_proxy-20260101T000000Z-0b7e0d6a-1.jsonl") << line.dump() << "\n";
    expect_earlier_record("0b7e0d6a-earlier-line", "earlier-line");
    EXPECT_EQ(web_get("/api/flows/0b7e0d6a-earlier").status, 404u);
}

TEST_F(Web, WebCommandServesRecordsFromDisk) {
    // One directory of *.json records, one of JSONL segments.
    auto jsonl_dir = work_ / "segments";
    start_dir_logger();
    auto client = proxied_client();
    ASSERT_EQ(client
                  .post("https://api.openai.com/v1/chat/completions", chat_body,
                        {{"Content-Type", "application/json"}})
                  .status,
              200u);
    ASSERT_EQ(wait_for_records(1).size(), 1u);
    proxy_->stop();
    start_proxy({"dir_logger", "--format", "jsonl", "-o", jsonl_dir.string()});
    auto client2 = proxied_client();
    ASSERT_EQ(client2.get("https://api.openai.com/v1/models").status, 200u);
    proxy_->stop();

    child_process web(
        {LLM_PROXY_BINARY, "web", log_dir().string(), jsonl_dir.string(), "--web", "127.0.0.1:0"});
    web_port_ = wait_for_web_port(web);
    ASSERT_NE(web_port_, 0) << web.stderr_text();
    auto list = json::parse(web_get("/api/flows").body);
    EXPECT_EQ(list["live"], false);
    ASSERT_EQ(list["flows"].size(), 2u) << list.dump(2);
    for (const auto& f : list["flows"]) {
        auto detail = web_get("/api/flows/" + f["id"].get<std::string>());
        ASSERT_EQ(detail.status, 200u) << detail.body;
        auto record = json::parse(detail.body)["record"];
        EXPECT_EQ(record["request"]["url"],
                  "https://api.openai.com" + f["path"].get<std::string>());
        if (f["path"] == "/v1/chat/completions") {
            EXPECT_EQ(f["model"].get<std::string>().rfind("gpt-4o-mini", 0), 0u);
            EXPECT_EQ(record["llm"]["provider"], "openai");
        }
    }
    web.send_signal(SIGTERM);
    EXPECT_EQ(web.wait_exit(10s), 0) << web.stderr_text();
}

}  // namespace llm_proxy::test

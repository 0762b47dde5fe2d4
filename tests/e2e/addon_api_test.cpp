// Addon API v2, request side, end to end: an in-process proxy with test addons in front of the
// fake upstream. What the upstream received is read from /echo and /sink answers.

#include <atomic>
#include <map>
#include <mutex>

#include "addon_api_fixture.hpp"
#include "support/body_stream.hpp"

namespace llm_proxy::test {
namespace {

using json = nlohmann::json;

// --- on_request_headers rewrites the request head.

class rewriter : public addon {
  public:
    std::string_view name() const override { return "rewriter"; }
    void on_request_headers(flow& f) override {
        auto& r = f.request;
        if (r.target.starts_with("/original")) {
            r.method = "PUT";
            r.target = "/echo?rewritten=1";
            std::erase_if(r.headers, [](const auto& h) { return iequals(h.first, "X-Remove-Me"); });
            for (auto& [k, v] : r.headers) {
                if (iequals(k, "X-Change")) {
                    v = "new";
                }
            }
            r.headers.emplace_back("X-Added", "yes");
        }
        if (r.host == "unrouted.test") {
            // No connect_to rule (nor DNS) knows this host; the rewritten one is routed.
            r.scheme = "https";
            r.host = "api.openai.com";
            r.port = 443;
        }
    }
};

TEST_F(addon_api_test, RequestHeadersRewriteMethodTargetAndHeaders) {
    auto rec = std::make_shared<recorder>("rec");
    start({std::make_shared<rewriter>(), rec});
    auto client = proxy().make_client();
    auto r =
        client.request("POST", "https://api.openai.com/original?x=1",
                       {{"X-Remove-Me", "1"}, {"X-Change", "old"}, {"X-Kept", "kept"}}, "payload");
    ASSERT_EQ(r.status, 200u) << r.body;
    auto echo = parse_json(r.body);
    EXPECT_EQ(echo.value("method", ""), "PUT");
    EXPECT_EQ(echo.value("target", ""), "/echo?rewritten=1");
    EXPECT_EQ(echo.value("body", ""), "payload");
    EXPECT_EQ(echoed_header(echo, "X-Remove-Me"), "");
    EXPECT_EQ(echoed_header(echo, "X-Change"), "new");
    EXPECT_EQ(echoed_header(echo, "X-Added"), "yes");
    EXPECT_EQ(echoed_header(echo, "X-Kept"), "kept");
    auto done = rec->wait_flow("/echo?rewritten=1");
    ASSERT_TRUE(done);
    EXPECT_EQ(done->request.method, "PUT");
}

TEST_F(addon_api_test, RequestHeadersRewriteHostIsRoutedAndSentAsHost) {
    start({std::make_shared<rewriter>()});
    // Inside a CONNECT tunnel to the unrouted host, and in absolute form (plain http).
    for (std::string url :
         {"https://unrouted.test/echo?via=tunnel", "http://unrouted.test/echo?via=absolute-form"}) {
        SCOPED_TRACE(url);
        auto client = proxy().make_client();
        auto r = client.get(url);
        ASSERT_EQ(r.status, 200u) << "not routed to the rewritten host: " << r.body;
        EXPECT_EQ(r.header("X-Fake-Upstream").value_or(""), "1");
        auto echo = parse_json(r.body);
        EXPECT_EQ(echo.value("target", ""), url.substr(url.find("/echo")));
        EXPECT_EQ(echoed_header(echo, "Host"), "api.openai.com")
            << "the upstream got a Host header naming another host than the one the request "
               "was sent to";
    }
}

// --- flow.reply() answers locally.

class local_replier : public addon {
  public:
    std::string_view name() const override { return "local_replier"; }
    std::size_t request_buffer_limit(const flow& f) const override {
        return f.request.target.starts_with("/local-request") ? 1024 : 0;
    }
    void on_request_headers(flow& f) override {
        if (f.request.target.starts_with("/local-headers")) {
            f.reply(203, {{"X-Local", "headers"}, {"Content-Type", "text/plain"}},
                    "answered in on_request_headers");
        } else if (f.request.target.starts_with("/local-pieces")) {
            f.reply(response_head{200, "OK", 11, {{"Content-Type", "text/event-stream"}}},
                    std::string(events), {9, 18, 27});
        }
    }
    boost::asio::awaitable<void> on_request(flow& f) override {
        if (f.request.target.starts_with("/local-request")) {
            f.reply(response_head{202,
                                  "Accepted Locally",
                                  11,
                                  {{"X-Seen-Body", std::to_string(f.request_body.data.size())}}},
                    "echo:" + f.request_body.data);
        }
        co_return;
    }
    static constexpr std::string_view events = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
};

TEST_F(addon_api_test, ReplyFromRequestHeadersSkipsTheUpstream) {
    auto rec = std::make_shared<recorder>("rec");
    start({rec, std::make_shared<local_replier>()});
    auto before = upstream_requests();
    auto client = proxy().make_client();
    auto r = client.post("https://api.openai.com/local-headers", "ignored body");
    EXPECT_EQ(r.status, 203u);
    EXPECT_EQ(r.header("X-Local").value_or(""), "headers");
    EXPECT_EQ(r.header("Content-Type").value_or(""), "text/plain");
    EXPECT_EQ(r.body, "answered in on_request_headers");
    // The connection stays usable.
    auto next = client.get("https://api.openai.com/echo?after-local");
    EXPECT_EQ(next.status, 200u);
    EXPECT_EQ(upstream_requests(), before + 1) << "only the second request reached the upstream";
    auto done = rec->wait_flow("/local-headers");
    ASSERT_TRUE(done);
    EXPECT_EQ(rec->events(done->id),
              (std::vector<std::string>{"on_request_headers", "on_response_headers",
                                        "on_response_body", "on_response_end", "on_flow_done"}));
    EXPECT_TRUE(done->answered_locally);
    EXPECT_EQ(done->response->status, 203u);
}

TEST_F(addon_api_test, ReplyFromOnRequestSeesTheBodyAndSkipsTheUpstream) {
    auto rec = std::make_shared<recorder>("rec");
    start({rec, std::make_shared<local_replier>()});
    auto before = upstream_requests();
    auto client = proxy().make_client();
    auto r = client.post("https://api.openai.com/local-request", "the request body");
    EXPECT_EQ(r.status, 202u);
    EXPECT_EQ(r.reason, "Accepted Locally");
    EXPECT_EQ(r.header("X-Seen-Body").value_or(""), "16");
    EXPECT_EQ(r.body, "echo:the request body");
    auto next = client.get("https://api.openai.com/echo?after-local");
    EXPECT_EQ(next.status, 200u);
    EXPECT_EQ(client.connections_opened(), 1u);
    EXPECT_EQ(upstream_requests(), before + 1) << "only the second request reached the upstream";
    auto done = rec->wait_flow("/local-request");
    ASSERT_TRUE(done);
    EXPECT_EQ(rec->events(done->id),
              (std::vector<std::string>{"on_request_headers", "on_request", "on_response_headers",
                                        "on_response_body", "on_response_end", "on_flow_done"}));
}

TEST_F(addon_api_test, ReplyWithPiecesIsChunkedToHttp11Clients) {
    start({std::make_shared<local_replier>()});
    auto before = upstream_requests();
    auto c = proxy().connect();
    c->send(make_head("GET", "/local-pieces", c->host_header()));
    auto r = c->read_final_response();
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.framing, raw_response::body_framing::chunked);
    EXPECT_FALSE(r.header("Content-Length"));
    EXPECT_EQ(r.body, local_replier::events);
    EXPECT_EQ(r.header("Content-Type").value_or(""), "text/event-stream");
    // The SSE client sees the three events.
    auto client = proxy().make_client();
    auto sse = read_sse(client, "https://api.openai.com/local-pieces");
    ASSERT_EQ(sse.size(), 3u);
    EXPECT_EQ(sse[2].data, "3");
    // An HTTP/1.0 client cannot take chunks: it gets the body with a Content-Length.
    auto c10 = proxy().connect();
    c10->send(make_head("GET", "/local-pieces", c10->host_header(), {}, 10));
    auto r10 = c10->read_final_response();
    EXPECT_EQ(r10.framing, raw_response::body_framing::length);
    EXPECT_EQ(r10.body, local_replier::events);
    EXPECT_EQ(upstream_requests(), before);
}

// --- request_buffer_limit: what on_request sees.

class body_watcher : public addon {
  public:
    explicit body_watcher(std::size_t limit) : limit_(limit) {}
    std::string_view name() const override { return "body_watcher"; }
    std::size_t request_buffer_limit(const flow&) const override { return limit_; }
    boost::asio::awaitable<void> on_request(flow& f) override {
        std::lock_guard lock(mutex_);
        seen_[f.request.target] = f.request_body;
        co_return;
    }
    captured_body seen(const std::string& target) {
        std::lock_guard lock(mutex_);
        return seen_[target];
    }

  private:
    std::size_t limit_;
    std::mutex mutex_;
    std::map<std::string, captured_body> seen_;
};

TEST_F(addon_api_test, RequestBufferLimitHandsOnRequestTheBodyOrATruncatedOne) {
    constexpr std::size_t limit = 4096;
    auto watcher = std::make_shared<body_watcher>(limit);
    start({watcher});
    auto client = proxy().make_client();
    std::uint64_t seed = 100;
    for (bool chunked : {false, true}) {
        for (std::size_t n : {limit - 1, limit, limit + 1, std::size_t{200 * 1024}}) {
            SCOPED_TRACE((chunked ? "chunked, " : "content-length, ") + std::to_string(n) +
                         " bytes");
            const std::string body = make_body(n, ++seed);
            const std::string path = "/sink?n=" + std::to_string(n) + (chunked ? "&c" : "");
            header_list headers;
            if (chunked) {
                headers.emplace_back("Transfer-Encoding", "chunked");
            }
            auto r = client.post("https://api.openai.com" + path, body, headers);
            ASSERT_EQ(r.status, 200u) << r.body;
            auto sink = parse_json(r.body);
            EXPECT_EQ(sink.value("body_length", std::uint64_t{0}), n)
                << "the upstream must get the whole original body";
            EXPECT_EQ(sink.value("body_sha256", ""), sha256::of(body));
            auto seen = watcher->seen(path);
            if (n <= limit) {
                EXPECT_FALSE(seen.truncated);
                EXPECT_EQ(seen.data.size(), n);
                EXPECT_TRUE(seen.data == body) << "on_request saw other bytes";
            } else {
                EXPECT_TRUE(seen.truncated);
                EXPECT_GE(seen.data.size(), limit) << "fewer bytes than the addon asked for";
                EXPECT_LT(seen.data.size(), n)
                    << "flagged truncated, but the whole body is there (total " << seen.total
                    << ")";
                EXPECT_TRUE(body.starts_with(seen.data)) << "not a prefix of the body";
            }
        }
    }
}

// --- replace_request_body from on_request.

class replacer : public addon {
  public:
    static std::string replacement() {
        std::string s;
        while (s.size() < 3000) {
            s += "replacement body " + std::to_string(s.size()) + "\n";
        }
        return s;
    }
    std::string_view name() const override { return "replacer"; }
    std::size_t request_buffer_limit(const flow&) const override { return 1024; }
    boost::asio::awaitable<void> on_request(flow& f) override {
        if (f.request.target.starts_with("/sink")) {
            f.replace_request_body(replacement(), name());
        }
        co_return;
    }
};

TEST_F(addon_api_test, ReplaceRequestBodySendsExactlyTheReplacement) {
    auto rec = std::make_shared<recorder>("rec");
    start({std::make_shared<replacer>(), rec});
    const std::string want = replacer::replacement();
    auto c = proxy().connect();
    int i = 0;
    for (bool chunked : {false, true}) {
        for (std::size_t n : {100, 50 * 1024}) {  // shorter and longer than the buffer limit
            SCOPED_TRACE((chunked ? "chunked, " : "content-length, ") + std::to_string(n) +
                         " bytes");
            const std::string path = "/sink?replace=" + std::to_string(++i);
            auto r = post_framed(*c, path, make_body(n, 200 + i), chunked);
            ASSERT_EQ(r.status, 200u) << r.body;
            auto sink = parse_json(r.body);
            EXPECT_EQ(sink.value("target", ""), path);
            EXPECT_EQ(sink.value("body_length", std::uint64_t{0}), want.size());
            EXPECT_EQ(sink.value("body_sha256", ""), sha256::of(want));
            EXPECT_EQ(sink.value("framing", ""), "length");
            // The client connection is still in step: the next request gets its own answer.
            const std::string next = "/echo?after=" + std::to_string(i);
            c->send(make_head("GET", next, c->host_header()));
            auto e = c->read_final_response();
            ASSERT_EQ(e.status, 200u);
            EXPECT_EQ(parse_json(e.body).value("target", ""), next);
            auto done = rec->wait_flow(path);
            ASSERT_TRUE(done);
            EXPECT_EQ(done->tags.count("request_body_changed_by"), 1u);
            EXPECT_EQ(done->tags.at("request_body_changed_by"), "replacer");
            EXPECT_TRUE(done->request_body.data == want) << "the flow shows another body";
            EXPECT_EQ(done->request_bytes, n) << "bytes received from the client";
        }
    }
}

// --- a request body_transform, streamed.

struct transform_stats {
    std::atomic<std::size_t> calls{0};
    std::atomic<std::size_t> largest{0};
};

class uppercase : public body_transform {
  public:
    explicit uppercase(std::shared_ptr<transform_stats> s) : stats_(std::move(s)) {}
    void on_data(std::string_view in, std::string& out) override {
        ++stats_->calls;
        if (in.size() > stats_->largest) {
            stats_->largest = in.size();
        }
        out.append(upper(std::string(in)));
    }

  private:
    std::shared_ptr<transform_stats> stats_;
};

class uppercaser : public addon {
  public:
    std::string_view name() const override { return "uppercaser"; }
    void on_request_headers(flow& f) override {
        auto s = std::make_shared<transform_stats>();
        {
            std::lock_guard lock(mutex_);
            stats_[f.request.target] = s;
        }
        f.transform_request_body(std::make_shared<uppercase>(s), name());
    }
    std::shared_ptr<transform_stats> stats(const std::string& target) {
        std::lock_guard lock(mutex_);
        auto it = stats_.find(target);
        return it == stats_.end() ? std::make_shared<transform_stats>() : it->second;
    }

  private:
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<transform_stats>> stats_;
};

TEST_F(addon_api_test, RequestBodyTransformStreamsTheTransformedBody) {
    auto up = std::make_shared<uppercaser>();
    auto rec = std::make_shared<recorder>("rec");
    start({up, rec}, {.threads = 1});
    constexpr std::size_t n = 1536 * 1024;
    auto c = proxy().connect();
    int i = 0;
    for (bool chunked : {false, true}) {
        SCOPED_TRACE(chunked ? "chunked" : "content-length");
        const std::string body = make_body(n, 300 + i);
        const std::string path = "/sink?upper=" + std::to_string(++i);
        auto r = post_framed(*c, path, body, chunked);
        ASSERT_EQ(r.status, 200u) << r.body;
        auto sink = parse_json(r.body);
        EXPECT_EQ(sink.value("body_length", std::uint64_t{0}), n);
        EXPECT_EQ(sink.value("body_sha256", ""), sha256::of(upper(body)))
            << "the upstream did not get the transformed body";
        EXPECT_EQ(sink.value("framing", ""), "chunked") << "a transformed body has no known length";
        auto stats = up->stats(path);
        auto& s = *stats;
        EXPECT_GT(s.calls.load(), 1u) << "the body was not streamed through the transform";
        EXPECT_LT(s.largest.load(), n) << "the transform got the whole body at once";
        auto done = rec->wait_flow(path);
        ASSERT_TRUE(done);
        EXPECT_EQ(done->tags.count("request_body_changed_by")
                      ? done->tags.at("request_body_changed_by")
                      : "",
                  "uppercaser");
        EXPECT_EQ(done->request_bytes, n);
    }
}

}  // namespace
}  // namespace llm_proxy::test

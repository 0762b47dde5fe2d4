// Addon API v2, framing the engine owns: a status without a body set on a bodied upstream
// response, and local replies whose headers carry framing fields or pass through response
// body transforms.

#include "addon_api_fixture.hpp"

namespace llm_proxy::test {
namespace {

// Sets 204 (or 304) on the responses of /download requests: the upstream's body must be
// read and dropped, and neither connection may fall out of step.
class no_content : public addon {
  public:
    std::string_view name() const override { return "no_content"; }
    boost::asio::awaitable<void> on_response_headers(flow& f) override {
        if (f.request.target.starts_with("/download")) {
            f.response->status = f.request.target.find("304") != std::string::npos ? 304 : 204;
            f.response->reason.clear();
        }
        co_return;
    }
};

TEST_F(addon_api_test, StatusWithoutBodyOnABodiedResponseDropsTheBodyAndKeepsConnections) {
    auto rec = std::make_shared<recorder>("rec");
    start({std::make_shared<no_content>(), rec});
    auto client = proxy().make_client();
    ASSERT_EQ(client.get("https://api.openai.com/echo?warm-up").status, 200u);
    for (std::string query : {"bytes=70000&framing=length", "bytes=70000&framing=chunked",
                              "bytes=10&framing=chunked&status=304"}) {
        SCOPED_TRACE(query);
        auto connections = upstream().stats().value("connections", std::uint64_t{0});
        auto r = client.get("https://api.openai.com/download?" + query);
        EXPECT_EQ(r.status, query.find("304") != std::string::npos ? 304u : 204u);
        EXPECT_EQ(r.body, "");
        EXPECT_FALSE(r.header("Content-Length") && query.find("304") == std::string::npos)
            << "a 204 has no Content-Length";
        EXPECT_FALSE(r.header("Transfer-Encoding"));
        // The same client connection answers the next request correctly...
        auto next = client.get("https://api.openai.com/echo?after=" + query);
        ASSERT_EQ(next.status, 200u) << next.body;
        EXPECT_EQ(parse_json(next.body).value("target", ""), "/echo?after=" + query);
        // ...over the upstream connection the dropped body came on (the only new upstream
        // connection is the one of this /stats request).
        EXPECT_EQ(upstream().stats().value("connections", std::uint64_t{0}), connections + 1)
            << "the upstream connection was not reused after its body was drained";
    }
    auto flows = rec->wait_done(7);
    for (const auto& f : flows) {
        EXPECT_EQ(f->error_kind, flow_error::none) << f->request.target << ": " << f->error;
        if (f->request.target.starts_with("/download")) {
            EXPECT_EQ(f->response_body.data, "") << "the record shows what was sent";
        }
    }
}

// Answers locally with headers that carry their own (wrong) framing fields.
class framing_liar : public addon {
  public:
    std::string_view name() const override { return "framing_liar"; }
    void on_request_headers(flow& f) override {
        if (f.request.target.starts_with("/liar")) {
            f.reply(200,
                    {{"Content-Length", "999"},
                     {"Transfer-Encoding", "chunked"},
                     {"Content-Type", "text/plain"}},
                    "twelve bytes");
        }
    }
};

TEST_F(addon_api_test, LocalReplyFramingFieldsAreTheEngines) {
    start({std::make_shared<framing_liar>()});
    auto client = proxy().make_client();
    auto r = client.get("https://api.openai.com/liar");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "twelve bytes");
    EXPECT_EQ(r.header_values("Content-Length"), std::vector<std::string>{"12"});
    EXPECT_FALSE(r.header("Transfer-Encoding"));
    auto next = client.get("https://api.openai.com/echo?after-liar");
    EXPECT_EQ(next.status, 200u);
    // A HEAD answer keeps the length of the body it leaves out.
    auto head = client.request("HEAD", "https://api.openai.com/liar");
    EXPECT_EQ(head.status, 200u);
    EXPECT_EQ(head.body, "");
    EXPECT_EQ(head.header_values("Content-Length"), std::vector<std::string>{"999"});
    auto after_head = client.get("https://api.openai.com/echo?after-head");
    EXPECT_EQ(after_head.status, 200u);
}

// Replays an SSE stream locally, event by event; another addon drops one event of it.
class local_stream : public addon {
  public:
    std::string_view name() const override { return "local_stream"; }
    void on_request_headers(flow& f) override {
        if (f.request.target.starts_with("/local-stream")) {
            std::string body;
            std::vector<std::size_t> cuts;
            for (int i = 0; i < 5; ++i) {
                body += "data: {\"n\":" + std::to_string(i) + "}\n\n";
                cuts.push_back(body.size());
            }
            f.reply(response_head{200, "OK", 11, {{"Content-Type", "text/event-stream"}}},
                    std::move(body), std::move(cuts));
        }
    }
};

class drop_event_two : public addon {
  public:
    std::string_view name() const override { return "drop_event_two"; }
    boost::asio::awaitable<void> on_response_headers(flow& f) override {
        f.transform_response_body(std::make_shared<drop_sse_event>("{\"n\":2}"), name());
        co_return;
    }
};

TEST_F(addon_api_test, LocalReplyPassesThroughResponseTransforms) {
    auto rec = std::make_shared<recorder>("rec");
    start({std::make_shared<local_stream>(), std::make_shared<drop_event_two>(), rec});
    auto client = proxy().make_client();
    auto r = client.get("https://api.openai.com/local-stream");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body,
              "data: {\"n\":0}\n\ndata: {\"n\":1}\n\ndata: {\"n\":3}\n\ndata: {\"n\":4}\n\n");
    EXPECT_EQ(r.header("Transfer-Encoding").value_or(""), "chunked")
        << "a local stream goes out piece by piece";
    auto done = rec->wait_flow("/local-stream");
    ASSERT_TRUE(done);
    EXPECT_EQ(done->response_bytes, r.body.size());
}

// A transform that throws on a local reply: nothing was sent yet, so the client gets a 500.
class throwing_transform : public body_transform {
  public:
    void on_data(std::string_view, std::string&) override { throw std::runtime_error("boom"); }
    void on_end(std::string&) override {}
};

class throw_on_local : public addon {
  public:
    std::string_view name() const override { return "throw_on_local"; }
    boost::asio::awaitable<void> on_response_headers(flow& f) override {
        f.transform_response_body(std::make_shared<throwing_transform>(), name());
        co_return;
    }
};

TEST_F(addon_api_test, LocalReplyTransformThatThrowsGivesA500) {
    auto rec = std::make_shared<recorder>("rec");
    start({std::make_shared<local_stream>(), std::make_shared<throw_on_local>(), rec});
    auto client = proxy().make_client();
    auto r = client.get("https://api.openai.com/local-stream");
    EXPECT_EQ(r.status, 500u);
    EXPECT_NE(r.body.find("addon_error"), std::string::npos) << r.body;
    auto done = rec->wait_flow("/local-stream");
    ASSERT_TRUE(done);
    EXPECT_EQ(done->error_kind, flow_error::addon_error);
}

}  // namespace
}  // namespace llm_proxy::test

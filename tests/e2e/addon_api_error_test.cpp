// Addon API v2, exceptions end to end: a hook that throws fails only its own flow. Before
// anything went to the client it gets a 500 with an addon_error JSON body; once the response
// has started it is cut off; after it completed nothing changes for the client. Every addon
// hears of it (on_error, on_flow_done) and the proxy goes on serving.

#include <algorithm>

#include "addon_api_fixture.hpp"

namespace llm_proxy::test {
namespace {

using json = nlohmann::json;
using events_t = std::vector<std::string>;

long count(const events_t& ev, std::string_view what) {
    return std::count(ev.begin(), ev.end(), what);
}

class addon_error_test : public addon_api_test {
  protected:
    // Chain: before, thrower(hook), after.
    void start_chain(const std::string& hook, std::uint64_t after_bytes = 0) {
        start({before, std::make_shared<thrower>(hook, "boom", after_bytes), after});
    }

    // A throw before the response: 500 + addon_error, every addon's on_error, the next
    // request served. `before_events` / `after_events`: what each recorder must have seen.
    void expect_contained(const std::string& hook, const events_t& before_events,
                          const events_t& after_events) {
        start_chain(hook);
        auto client = proxy().make_client();
        auto r = client.post("https://api.openai.com/echo?boom", "request body");
        EXPECT_EQ(r.status, 500u) << r.body;
        EXPECT_EQ(r.header("Content-Type").value_or(""), "application/json");
        auto j = parse_json(r.body);
        ASSERT_TRUE(j.is_object());
        EXPECT_EQ(j["error"].value("code", ""), "addon_error");
        const std::string message = j["error"].value("message", "");
        EXPECT_NE(message.find("thrower"), std::string::npos) << message;
        EXPECT_NE(message.find(hook), std::string::npos) << message;

        auto next = client.get("https://api.openai.com/echo?fine");
        EXPECT_EQ(next.status, 200u) << "the proxy stopped serving after an addon threw";
        EXPECT_EQ(parse_json(next.body).value("target", ""), "/echo?fine");

        auto f = before->wait_flow("/echo?boom");
        ASSERT_TRUE(f);
        EXPECT_EQ(f->error_kind, flow_error::addon_error);
        EXPECT_NE(f->addon_failure.find("thrower"), std::string::npos) << f->addon_failure;
        EXPECT_EQ(before->events(f->id), before_events);
        EXPECT_EQ(after->events(f->id), after_events);
        ASSERT_TRUE(after->wait_flow("/echo?fine"));
    }

    std::shared_ptr<recorder> before = std::make_shared<recorder>("before");
    std::shared_ptr<recorder> after = std::make_shared<recorder>("after");
};

TEST_F(addon_error_test, ThrowInOnRequestHeadersAnswers500AndEveryAddonGetsOnError) {
    expect_contained("on_request_headers", {"on_request_headers", "on_error", "on_flow_done"},
                     {"on_error", "on_flow_done"});
}

TEST_F(addon_error_test, ThrowInOnRequestAnswers500AndEveryAddonGetsOnError) {
    expect_contained("on_request", {"on_request_headers", "on_request", "on_error", "on_flow_done"},
                     {"on_request_headers", "on_error", "on_flow_done"});
}

TEST_F(addon_error_test, ThrowInOnResponseHeadersAnswers500AndEveryAddonGetsOnError) {
    expect_contained(
        "on_response_headers",
        {"on_request_headers", "on_request", "on_response_headers", "on_error", "on_flow_done"},
        {"on_request_headers", "on_request", "on_error", "on_flow_done"});
}

// Streams a response, returning {status, body bytes received, completed}; a response cut off
// by the proxy ends with an exception inside the client, caught here.
struct streamed {
    unsigned status = 0;
    header_list headers;
    std::string body;
    bool completed = false;
    std::string error;
};
streamed stream(http_client& client, const std::string& method, const std::string& url,
                const header_list& headers = {}, std::string body = {}) {
    streamed s;
    try {
        s.completed = client.stream(
            method, url, headers, std::move(body),
            [&](unsigned status, const header_list& h) {
                s.status = status;
                s.headers = h;
            },
            [&](std::string_view chunk) {
                s.body.append(chunk);
                return true;
            });
    } catch (const std::exception& e) {
        s.error = e.what();
    }
    return s;
}

void expect_failed_after_head(recorder& rec, const std::shared_ptr<const flow>& f) {
    auto ev = rec.events(f->id);
    SCOPED_TRACE(std::string(rec.name()));
    EXPECT_EQ(count(ev, "on_response_headers"), 1);
    EXPECT_EQ(count(ev, "on_error"), 1);
    EXPECT_EQ(count(ev, "on_response_end"), 0);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back(), "on_flow_done");
}

TEST_F(addon_error_test, ThrowInOnResponseBodyCutsTheResponseOff) {
    constexpr std::uint64_t size = 2 * 1024 * 1024;
    start_chain("on_response_body", 256 * 1024);
    auto client = proxy().make_client();
    auto s = stream(client, "GET",
                    "https://api.openai.com/download?bytes=" + std::to_string(size) + "&boom");
    EXPECT_EQ(s.status, 200u);
    EXPECT_FALSE(s.completed) << "the whole body arrived: " << s.body.size() << " bytes";
    EXPECT_NE(s.error, "") << "the response ended cleanly";
    EXPECT_LT(s.body.size(), size);
    auto f = before->wait_flow("/download");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->error_kind, flow_error::addon_error);
    EXPECT_NE(f->addon_failure.find("on_response_body"), std::string::npos) << f->addon_failure;
    expect_failed_after_head(*before, f);
    expect_failed_after_head(*after, f);

    auto next = proxy().make_client().get("https://api.openai.com/echo?fine");
    EXPECT_EQ(next.status, 200u) << "the proxy stopped serving after an addon threw";
}

// Throws from the response body transform once event `index_no` 3 comes.
class throwing_transform : public body_transform {
  public:
    void on_data(std::string_view in, std::string& out) override {
        if (in.find("\"index_no\":3}") != std::string_view::npos) {
            throw std::runtime_error("transform boom");
        }
        out.append(in);
    }
};

class transform_installer : public addon {
  public:
    std::string_view name() const override { return "transform_installer"; }
    boost::asio::awaitable<void> on_response_headers(flow& f) override {
        f.transform_response_body(std::make_shared<throwing_transform>(), name());
        co_return;
    }
};

TEST_F(addon_error_test, ThrowInResponseTransformCutsTheStreamOff) {
    start({before, std::make_shared<transform_installer>(), after});
    auto client = proxy().make_client();
    // Events 25 ms apart: the head has gone out with event 0 long before event 3 comes.
    auto s = stream(client, "POST", "https://api.openai.com/v1/chat/completions",
                    {{"Content-Type", "application/json"},
                     {"X-Fake-Events", "8"},
                     {"X-Fake-Interval-Ms", "25"}},
                    R"({"model":"m","stream":true})");
    EXPECT_EQ(s.status, 200u);
    EXPECT_FALSE(s.completed);
    EXPECT_NE(s.error, "") << "the stream ended cleanly";
    sse_parser parser;
    auto events = parser.feed(s.body);
    EXPECT_LT(events.size(), 3u + 1u) << "events after the failure reached the client";
    for (std::size_t i = 0; i < events.size(); ++i) {
        EXPECT_EQ(parse_json(events[i].data).value("index_no", -1), static_cast<int>(i));
    }
    EXPECT_EQ(s.body.find("[DONE]"), std::string::npos);
    auto f = before->wait_flow("/v1/chat/completions");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->error_kind, flow_error::addon_error);
    EXPECT_NE(f->tags.count("addon_failure"), 0u);
    expect_failed_after_head(*before, f);
    expect_failed_after_head(*after, f);

    auto next = proxy().make_client().get("https://api.openai.com/echo?fine");
    EXPECT_EQ(next.status, 200u) << "the proxy stopped serving after a transform threw";
}

TEST_F(addon_error_test, ThrowInOnResponseEndKeepsTheResponseAndTagsTheFlow) {
    start_chain("on_response_end");
    auto client = proxy().make_client();
    auto r = client.post("https://api.openai.com/echo?boom", "request body");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(parse_json(r.body).value("body", ""), "request body");
    auto next = client.get("https://api.openai.com/echo?fine");
    EXPECT_EQ(next.status, 200u);
    EXPECT_EQ(client.connections_opened(), 1u);

    auto f = before->wait_flow("/echo?boom");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->error_kind, flow_error::none) << "the flow had succeeded: " << f->error;
    ASSERT_EQ(f->tags.count("addon_failure"), 1u);
    EXPECT_NE(f->tags.at("addon_failure").find("on_response_end"), std::string::npos);
    for (auto* rec : {before.get(), after.get()}) {
        SCOPED_TRACE(std::string(rec->name()));
        auto ev = rec->events(f->id);
        EXPECT_EQ(count(ev, "on_response_end"), 1) << "every addon gets on_response_end";
        EXPECT_EQ(count(ev, "on_error"), 0);
        ASSERT_FALSE(ev.empty());
        EXPECT_EQ(ev.back(), "on_flow_done");
    }
}

}  // namespace
}  // namespace llm_proxy::test

// Addon API v2 without sockets: test addons run through addon_chain on synthetic flows with the
// addon_test_kit (make_flow, run_hook, simulate).

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>
#include <thread>

#include "llm_proxy/addon.hpp"
#include "support/addon_test_kit.hpp"

namespace llm_proxy::test {
namespace {

namespace asio = boost::asio;

const response_head sse_head{200, "OK", 11, {{"Content-Type", "text/event-stream"}}};

// Logs the hooks it sees, in order.
class hook_log : public addon {
  public:
    explicit hook_log(std::string name) : name_(std::move(name)) {}
    std::string_view name() const override { return name_; }
    void on_request_headers(flow&) override { events.push_back("on_request_headers"); }
    asio::awaitable<void> on_request(flow&) override {
        events.push_back("on_request");
        co_return;
    }
    asio::awaitable<void> on_response_headers(flow&) override {
        events.push_back("on_response_headers");
        co_return;
    }
    void on_response_body(flow&, std::string_view) override {
        events.push_back("on_response_body");
    }
    void on_response_end(flow&) override { events.push_back("on_response_end"); }
    void on_error(flow&) override { events.push_back("on_error"); }

    std::vector<std::string> events;

  private:
    std::string name_;
};

// --- reply

class cached_answer : public addon {
  public:
    std::string_view name() const override { return "cached_answer"; }
    void on_request_headers(flow& f) override {
        if (f.request.target == "/v1/models") {
            f.reply(200, {{"Content-Type", "application/json"}, {"X-Cache", "HIT"}},
                    R"({"data":[]})");
        }
    }
};

TEST(AddonKit, SimulateReplyAnswersWithoutTheUpstream) {
    auto log = std::make_shared<hook_log>("log");
    addon_chain chain;
    chain.add(std::make_shared<cached_answer>());
    chain.add(log);
    auto f = make_flow("GET", "https://api.openai.com/v1/models");
    auto r = simulate(chain, f, {500, "Upstream must not be used", 11, {}}, {"never"});
    EXPECT_TRUE(r.answered_locally);
    EXPECT_FALSE(r.upstream_called);
    EXPECT_FALSE(r.failed);
    EXPECT_EQ(r.client_status, 200u);
    EXPECT_EQ(find_header(r.client_headers, "X-Cache").value_or(""), "HIT");
    EXPECT_EQ(r.client_body, R"({"data":[]})");
    // The addons after the one that answered skip the request hooks but see the response.
    EXPECT_EQ(log->events, (std::vector<std::string>{"on_response_headers", "on_response_body",
                                                     "on_response_end"}));
    // Another request goes upstream.
    auto other = make_flow("GET", "https://api.openai.com/v1/other");
    auto up = simulate(chain, other, {200, "OK", 11, {}}, {"upstream body"});
    EXPECT_TRUE(up.upstream_called);
    EXPECT_EQ(up.client_body, "upstream body");
}

// --- replace_request_body

class prompt_redactor : public addon {
  public:
    std::string_view name() const override { return "prompt_redactor"; }
    std::size_t request_buffer_limit(const flow&) const override { return 1024; }
    asio::awaitable<void> on_request(flow& f) override {
        if (!f.request_body.truncated && f.request_body.data.find("secret") != std::string::npos) {
            f.replace_request_body(R"({"messages":"[redacted]"})", name());
        }
        co_return;
    }
};

TEST(AddonKit, SimulateReplaceRequestBodySendsTheReplacementUpstream) {
    addon_chain chain;
    chain.add(std::make_shared<prompt_redactor>());
    auto f = make_flow("POST", "https://api.openai.com/v1/chat/completions",
                       {{"Content-Type", "application/json"}}, R"({"messages":"my secret"})");
    auto r = simulate(chain, f, {200, "OK", 11, {}}, {"{}"});
    EXPECT_TRUE(r.upstream_called);
    EXPECT_EQ(r.upstream_body, R"({"messages":"[redacted]"})");
    EXPECT_EQ(f.tags["request_body_changed_by"], "prompt_redactor");
    EXPECT_EQ(r.client_body, "{}");
}

TEST(AddonKit, SimulateSendsTheWholeRequestBodyUpstreamPastTheBufferLimit) {
    // Without a replacement the upstream gets the client's body, all of it, whatever the
    // addons buffered for on_request (the engine streams the rest).
    addon_chain chain;
    chain.add(std::make_shared<prompt_redactor>());  // buffers 1024 bytes, replaces nothing
    const std::string body(5000, 'b');
    auto f = make_flow("POST", "https://api.openai.com/v1/chat/completions", {}, body);
    auto r = simulate(chain, f, {200, "OK", 11, {}}, {});
    EXPECT_EQ(r.upstream_body.size(), body.size());
    EXPECT_TRUE(r.upstream_body == body);

    addon_chain nobody_buffers;
    nobody_buffers.add(std::make_shared<hook_log>("log"));
    auto g = make_flow("POST", "https://api.openai.com/v1/chat/completions", {}, "hello");
    EXPECT_EQ(simulate(nobody_buffers, g, {200, "OK", 11, {}}, {}).upstream_body, "hello");
}

// --- response body transform

class drop_event : public body_transform {
  public:
    void on_data(std::string_view in, std::string& out) override {
        pending_.append(in);
        for (std::size_t end; (end = pending_.find("\n\n")) != std::string::npos;) {
            std::string event = pending_.substr(0, end + 2);
            pending_.erase(0, end + 2);
            if (event.find("\"i\":2") == std::string::npos) {
                out += event;
            }
        }
    }
    void on_end(std::string& out) override { out += std::exchange(pending_, {}); }

  private:
    std::string pending_;
};

class dropper : public addon {
  public:
    std::string_view name() const override { return "dropper"; }
    asio::awaitable<void> on_response_headers(flow& f) override {
        f.transform_response_body(std::make_shared<drop_event>(), name());
        co_return;
    }
};

TEST(AddonKit, SimulateResponseTransformDropsAnEvent) {
    addon_chain chain;
    chain.add(std::make_shared<dropper>());
    auto f = make_flow("POST", "https://api.openai.com/v1/chat/completions");
    // The event to drop is split over two pieces.
    auto r = simulate(
        chain, f, sse_head,
        {"data: {\"i\":1}\n\n", "data: {\"i\"", ":2}\n\ndata: {\"i\":3}\n\n", "data: [DONE]\n\n"});
    EXPECT_EQ(r.client_body, "data: {\"i\":1}\n\ndata: {\"i\":3}\n\ndata: [DONE]\n\n");
    EXPECT_EQ(f.tags["response_body_changed_by"], "dropper");
    EXPECT_EQ(f.response_bytes, r.client_body.size());
}

// --- exceptions

class exploding : public addon {
  public:
    std::string_view name() const override { return "exploding"; }
    asio::awaitable<void> on_request(flow&) override {
        throw std::runtime_error("kaboom");
        co_return;
    }
};

TEST(AddonKit, SimulateExceptionFailsTheFlowAndEveryAddonGetsOnError) {
    auto first = std::make_shared<hook_log>("first");
    auto last = std::make_shared<hook_log>("last");
    addon_chain chain;
    chain.add(first);
    chain.add(std::make_shared<exploding>());
    chain.add(last);
    auto f = make_flow("POST", "https://api.openai.com/v1/chat/completions", {}, "{}");
    simulated r;
    ASSERT_NO_THROW(r = simulate(chain, f, {200, "OK", 11, {}}, {"{}"}));
    EXPECT_TRUE(r.failed);
    EXPECT_FALSE(r.upstream_called);
    EXPECT_EQ(f.error_kind, flow_error::addon_error);
    EXPECT_EQ(f.addon_failure, "addon exploding failed in on_request: kaboom");
    EXPECT_EQ(f.tags["addon_failure"], f.addon_failure);
    EXPECT_EQ(first->events,
              (std::vector<std::string>{"on_request_headers", "on_request", "on_error"}));
    EXPECT_EQ(last->events, (std::vector<std::string>{"on_request_headers", "on_error"}));
}

// --- the chain itself

class limits : public addon {
  public:
    limits(std::size_t buffer, std::size_t request, std::size_t response)
        : buffer_(buffer), request_(request), response_(response) {}
    std::string_view name() const override { return "limits"; }
    std::size_t request_buffer_limit(const flow&) const override { return buffer_; }
    std::size_t request_capture_limit(const flow&) const override { return request_; }
    std::size_t response_capture_limit(const flow&) const override { return response_; }

  private:
    std::size_t buffer_, request_, response_;
};

TEST(AddonKit, ChainLimitsAreTheLargestAsked) {
    addon_chain chain;
    auto f = make_flow("GET", "https://api.openai.com/");
    EXPECT_EQ(chain.request_buffer_limit(f), 0u);
    chain.add(std::make_shared<limits>(10, 0, 300));
    chain.add(std::make_shared<limits>(0, 200, 30));
    EXPECT_EQ(chain.request_buffer_limit(f), 10u);
    EXPECT_EQ(chain.request_capture_limit(f), 200u);
    EXPECT_EQ(chain.response_capture_limit(f), 300u);
}

class end_thrower : public addon {
  public:
    std::string_view name() const override { return "end_thrower"; }
    void on_response_end(flow&) override { throw std::runtime_error("late"); }
};

TEST(AddonKit, ThrowInOnResponseEndStillReachesEveryAddon) {
    auto last = std::make_shared<hook_log>("last");
    addon_chain chain;
    chain.add(std::make_shared<end_thrower>());
    chain.add(last);
    auto f = make_flow("GET", "https://api.openai.com/");
    auto r = simulate(chain, f, {200, "OK", 11, {}}, {"body"});
    EXPECT_FALSE(r.failed);
    EXPECT_EQ(r.client_body, "body");
    EXPECT_EQ(last->events.back(), "on_response_end");
    EXPECT_NE(f.tags["addon_failure"].find("on_response_end"), std::string::npos);
}

// --- typed state and awaiting hooks

TEST(AddonKit, FlowSlotKeepsTypedStatePerFlowUntilReleased) {
    flow_slot<std::string> names;
    flow_slot<int> numbers;
    auto a = make_flow("GET", "https://api.openai.com/a");
    auto b = make_flow("GET", "https://api.openai.com/b");
    EXPECT_EQ(names.find(a), nullptr);
    names.emplace(a, "first");
    numbers.emplace(a, 7);
    names.emplace(b, "second");
    ASSERT_NE(names.find(a), nullptr);
    EXPECT_EQ(*names.find(a), "first");
    EXPECT_EQ(*numbers.find(a), 7);
    EXPECT_EQ(*names.find(b), "second");
    EXPECT_EQ(numbers.find(b), nullptr);
    names.emplace(a, "replaced");
    EXPECT_EQ(*names.find(a), "replaced");
    a.release_state();
    EXPECT_EQ(names.find(a), nullptr);
    EXPECT_EQ(numbers.find(a), nullptr);
    EXPECT_EQ(*names.find(b), "second");
}

asio::awaitable<std::string> on_pool(std::string in, std::thread::id* ran_on) {
    *ran_on = std::this_thread::get_id();
    co_return "computed(" + in + ")";
}

class pool_addon : public addon {
  public:
    std::string_view name() const override { return "pool_addon"; }
    asio::awaitable<void> on_request(flow& f) override {
        auto work = on_pool(f.request.target, &ran_on);
        std::string v = co_await asio::co_spawn(pool, std::move(work), asio::use_awaitable);
        f.request.headers.emplace_back("X-Computed", v);
    }
    asio::thread_pool pool{1};
    std::thread::id ran_on;
};

TEST(AddonKit, RunHookCompletesAHookThatAwaitsAnotherThread) {
    auto a = std::make_shared<pool_addon>();
    addon_chain chain;
    chain.add(a);
    auto f = make_flow("POST", "https://api.openai.com/v1/x");
    EXPECT_TRUE(run_hook(chain.on_request(f)));
    EXPECT_EQ(find_header(f.request.headers, "X-Computed").value_or(""), "computed(/v1/x)");
    EXPECT_NE(a->ran_on, std::this_thread::get_id());
    a->pool.join();
}

}  // namespace
}  // namespace llm_proxy::test

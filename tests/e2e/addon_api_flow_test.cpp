// Addon API v2, the life of a flow end to end: typed per-flow state, per-direction capture
// limits, and on_flow_done once per flow, after the last hook, for good and failed flows.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <map>
#include <mutex>
#include <set>

#include "addon_api_fixture.hpp"

namespace llm_proxy::test {
namespace {

// --- flow_slot<T>

struct per_flow_state {
    explicit per_flow_state(std::string t, std::atomic<int>& d)
        : target(std::move(t)), destroyed(d) {}
    ~per_flow_state() { ++destroyed; }
    per_flow_state(const per_flow_state&) = delete;
    per_flow_state& operator=(const per_flow_state&) = delete;

    std::string target;
    std::shared_ptr<int> token = std::make_shared<int>(1);
    std::atomic<int>& destroyed;
};

class stateful : public addon {
  public:
    std::string_view name() const override { return "stateful"; }
    void on_request_headers(flow& f) override {
        auto& s = slot_.emplace(f, f.request.target, destroyed);
        counter_.emplace(f, 0);
        std::lock_guard lock(mutex_);
        tokens_[f.id] = s.token;
    }
    void on_response_body(flow& f, std::string_view) override {
        if (auto* n = counter_.find(f)) {
            ++*n;
        }
    }
    void on_response_end(flow& f) override {
        auto* s = slot_.find(f);
        auto* n = counter_.find(f);
        std::lock_guard lock(mutex_);
        at_end[f.request.target] = s ? s->target : "<no state>";
        pieces_at_end[f.request.target] = n ? *n : -1;
    }
    void on_flow_done(const std::shared_ptr<const flow>& f) override {
        std::lock_guard lock(mutex_);
        state_gone_at_done[f->request.target] =
            slot_.find(*f) == nullptr && counter_.find(*f) == nullptr && tokens_[f->id].expired();
        destroyed_at_done[f->request.target] = destroyed.load();
    }

    std::mutex mutex_;
    std::atomic<int> destroyed{0};
    std::map<std::string, std::string> at_end;
    std::map<std::string, int> pieces_at_end;
    std::map<std::string, bool> state_gone_at_done;
    std::map<std::string, int> destroyed_at_done;

  private:
    flow_slot<per_flow_state> slot_;
    flow_slot<int> counter_;  // a second slot of the same addon, another type
    std::map<std::string, std::weak_ptr<int>> tokens_;
};

TEST_F(addon_api_test, FlowSlotStateLivesAsLongAsTheFlow) {
    auto s = std::make_shared<stateful>();
    auto rec = std::make_shared<recorder>("rec");
    start({s, rec});
    auto client = proxy().make_client();
    for (std::string path : {"/echo?state=1", "/echo?state=2"}) {
        auto r = client.get("https://api.openai.com" + path);
        ASSERT_EQ(r.status, 200u);
        ASSERT_TRUE(rec->wait_flow(path));
    }
    std::lock_guard lock(s->mutex_);
    for (std::string path : {"/echo?state=1", "/echo?state=2"}) {
        SCOPED_TRACE(path);
        EXPECT_EQ(s->at_end[path], path) << "on_response_end did not find its own flow's state";
        EXPECT_GE(s->pieces_at_end[path], 1);
        EXPECT_TRUE(s->state_gone_at_done[path]) << "the state outlived the flow";
    }
    EXPECT_EQ(s->destroyed_at_done["/echo?state=1"], 1);
    EXPECT_EQ(s->destroyed_at_done["/echo?state=2"], 2);
}

// --- capture limits per direction

// Asks for request/response capture limits on flows whose target contains `trigger`.
class capturer : public addon {
  public:
    capturer(std::string trigger, std::size_t request, std::size_t response)
        : trigger_(std::move(trigger)), request_(request), response_(response) {}
    std::string_view name() const override { return "capturer"; }
    std::size_t request_capture_limit(const flow& f) const override {
        return f.request.target.find(trigger_) != std::string::npos ? request_ : 0;
    }
    std::size_t response_capture_limit(const flow& f) const override {
        return f.request.target.find(trigger_) != std::string::npos ? response_ : 0;
    }

  private:
    std::string trigger_;
    std::size_t request_;
    std::size_t response_;
};

// The engine keeps request bodies up to this size for a retry whatever the addons ask.
constexpr std::size_t replay_buffer = 256 * 1024;

TEST_F(addon_api_test, CaptureLimitsPerDirectionAreTheLargestAsked) {
    auto rec = std::make_shared<recorder>("rec");
    start({std::make_shared<capturer>("capture", 300'000, 1000),
           std::make_shared<capturer>("more", 400'000, 5000), rec});
    std::string body;
    while (body.size() < 600'000) {
        body += "line " + std::to_string(body.size()) + " of the request body\n";
    }
    body.resize(600'000);
    struct expectation {
        std::string path;
        std::size_t request;   // captured request bytes
        std::size_t response;  // captured response bytes
    };
    for (const auto& want :
         {expectation{"/echo?capture", 300'000, 1000},
          expectation{"/echo?capture-more", 400'000, 5000}, expectation{"/echo?plain", 0, 0}}) {
        SCOPED_TRACE(want.path);
        auto client = proxy().make_client();
        auto r = client.post("https://api.openai.com" + want.path, body);
        ASSERT_EQ(r.status, 200u);
        auto f = rec->wait_flow(want.path);
        ASSERT_TRUE(f);
        const auto& req = f->request_body;
        EXPECT_EQ(req.total, body.size());
        EXPECT_TRUE(req.truncated);
        EXPECT_TRUE(body.starts_with(req.data)) << "not the start of the request body";
        if (want.request > 0) {
            EXPECT_EQ(req.data.size(), want.request);
        } else {
            EXPECT_LE(req.data.size(), replay_buffer) << "captured without anyone asking";
        }
        EXPECT_EQ(f->request_bytes, body.size());
        const auto& res = f->response_body;
        EXPECT_EQ(res.total, r.body.size());
        EXPECT_EQ(res.data.size(), want.response);
        EXPECT_TRUE(res.truncated);
        EXPECT_TRUE(r.body.starts_with(res.data)) << "not the start of the response body";
        EXPECT_EQ(f->response_bytes, r.body.size());
    }
}

// --- on_flow_done

// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
std::uint16_t closed_port() {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0},
                                     /*reuse_address=*/false);
    return a.local_endpoint().port();
}

TEST_F(addon_api_test, FlowDoneComesOncePerFlowAfterTheLastHook) {
    auto rec = std::make_shared<recorder>("rec");
    const auto refused = closed_port();
    start({rec}, {.configure = [refused](proxy_config& c) {
              c.connect_to.push_back({"refused.test", 443, "127.0.0.1", refused});
          }});
    auto client = proxy().make_client(std::chrono::seconds(20));
    EXPECT_EQ(client.get("https://api.openai.com/echo?done=1").status, 200u);
    EXPECT_EQ(client.post("https://api.openai.com/sink?done=2", std::string(100'000, 'x')).status,
              200u);
    auto events = read_sse(client, "https://api.openai.com/v1/chat/completions",
                           {{"Content-Type", "application/json"}, {"X-Fake-Interval-Ms", "1"}},
                           R"({"model":"m","stream":true})");
    EXPECT_EQ(events.size(), 6u);
    auto failed = proxy().make_client();
    auto r = failed.get("https://refused.test/echo?done=fail");
    EXPECT_EQ(r.status, 502u) << r.body;

    auto done = rec->wait_done(4);
    ASSERT_EQ(done.size(), 4u);
    std::set<std::string> ids;
    for (const auto& f : done) {
        SCOPED_TRACE(f->request.target);
        ids.insert(f->id);
        auto ev = rec->events(f->id);
        ASSERT_FALSE(ev.empty());
        EXPECT_EQ(std::count(ev.begin(), ev.end(), "on_flow_done"), 1);
        EXPECT_EQ(ev.back(), "on_flow_done");
        const bool failed_flow = f->request.target == "/echo?done=fail";
        if (failed_flow) {
            EXPECT_NE(f->error_kind, flow_error::none);
            EXPECT_EQ(ev, (std::vector<std::string>{"on_request_headers", "on_request", "on_error",
                                                    "on_flow_done"}));
        } else {
            EXPECT_EQ(f->error_kind, flow_error::none) << f->error;
            ASSERT_GE(ev.size(), 2u);
            EXPECT_EQ(ev[ev.size() - 2], "on_response_end");
            EXPECT_EQ(std::count(ev.begin(), ev.end(), "on_error"), 0);
            ASSERT_TRUE(f->response);
            EXPECT_EQ(f->response->status, 200u);
        }
    }
    EXPECT_EQ(ids.size(), 4u) << "a flow was handed over twice";
    // Nothing more arrives: still four once the proxy has stopped.
    proxy().stop();
    EXPECT_EQ(rec->wait_done(5, std::chrono::milliseconds(0)).size(), 4u);
}

}  // namespace
}  // namespace llm_proxy::test

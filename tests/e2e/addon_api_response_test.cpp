// Addon API v2, response side, end to end: status and headers set in on_response_headers,
// response body transforms on streamed and Content-Length responses, hooks that await work on
// another thread.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "addon_api_fixture.hpp"

namespace llm_proxy::test {
namespace {

using json = nlohmann::json;
namespace asio = boost::asio;

const std::string chat_url = "https://api.openai.com/v1/chat/completions";
const std::string stream_request = R"({"model":"gpt-4o-mini","stream":true,"messages":[]})";
const std::string plain_request = R"({"model":"gpt-4o-mini","messages":[]})";

// --- on_response_headers sets status, reason and headers.

class teapot : public addon {
  public:
    std::string_view name() const override { return "teapot"; }
    void on_request_headers(flow& f) override {
        if (f.request.target.starts_with("/local-teapot")) {
            f.reply(200, {{"Content-Type", "text/plain"}}, "local body");
        }
    }
    boost::asio::awaitable<void> on_response_headers(flow& f) override {
        if (f.request.target.find("teapot") != std::string::npos) {
            f.response->status = 418;
            f.response->reason = "Short and stout";
            f.response->headers.emplace_back("X-Teapot", "yes");
        }
        co_return;
    }
};

TEST_F(addon_api_test, ResponseHeadersStatusReasonAndHeaderReachTheClient) {
    start({std::make_shared<teapot>()});
    auto client = proxy().make_client();
    for (std::string path : {"/echo?teapot", "/local-teapot"}) {
        SCOPED_TRACE(path);
        auto r = client.get("https://api.openai.com" + path);
        EXPECT_EQ(r.status, 418u);
        EXPECT_EQ(r.reason, "Short and stout");
        EXPECT_EQ(r.header("X-Teapot").value_or(""), "yes");
        if (path.starts_with("/echo")) {
            EXPECT_EQ(parse_json(r.body).value("target", ""), path) << "the body is the upstream's";
        } else {
            EXPECT_EQ(r.body, "local body");
        }
    }
    // An untouched response keeps the upstream's status and reason.
    auto r = client.get("https://api.openai.com/echo?plain");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.reason, "OK");
    EXPECT_FALSE(r.header("X-Teapot"));
}

// --- response body transforms.

class event_dropper : public addon {
  public:
    std::string_view name() const override { return "event_dropper"; }
    boost::asio::awaitable<void> on_response_headers(flow& f) override {
        auto type = find_header(f.response->headers, "Content-Type");
        if (type && type->starts_with("text/event-stream")) {
            f.transform_response_body(std::make_shared<drop_sse_event>("\"index_no\":3}"), name());
        }
        co_return;
    }
};

TEST_F(addon_api_test, ResponseTransformDropsOneSseEventOfAStream) {
    auto rec = std::make_shared<recorder>("rec");
    start({std::make_shared<event_dropper>(), rec});
    auto client = proxy().make_client(std::chrono::seconds(20));
    auto r = read_sse_stream(
        client, chat_url,
        {{"Content-Type", "application/json"}, {"X-Fake-Events", "8"}, {"X-Fake-Interval-Ms", "5"}},
        stream_request);
    ASSERT_EQ(r.status, 200u) << r.raw;
    auto has = [&](std::string_view name) {
        for (const auto& [k, v] : r.headers) {
            if (iequals(k, name)) {
                return true;
            }
        }
        return false;
    };
    EXPECT_TRUE(has("Transfer-Encoding")) << "a transformed stream must go out chunked";
    EXPECT_FALSE(has("Content-Length"));
    std::vector<int> indexes;
    for (const auto& e : r.events) {
        if (e.data == "[DONE]") {
            indexes.push_back(-1);
            continue;
        }
        auto j = parse_json(e.data);
        ASSERT_TRUE(j.is_object()) << "damaged event: " << e.data;
        indexes.push_back(j.value("index_no", -2));
    }
    EXPECT_EQ(indexes, (std::vector<int>{0, 1, 2, 4, 5, 6, 7, -1}));
    auto done = rec->wait_flow("/v1/chat/completions");
    ASSERT_TRUE(done);
    EXPECT_EQ(done->tags.count("response_body_changed_by")
                  ? done->tags.at("response_body_changed_by")
                  : "",
              "event_dropper");
    EXPECT_EQ(done->response_bytes, r.raw.size());
}

// Rewrites the assistant's answer of a whole (non-stream) completion.
class answer_rewriter : public body_transform {
  public:
    void on_data(std::string_view in, std::string& out) override {
        (void)out;
        body_.append(in);
    }
    void on_end(std::string& out) override {
        auto j = json::parse(body_);
        j["choices"][0]["message"]["content"] = "rewritten by an addon";
        out += j.dump();
    }

  private:
    std::string body_;
};

class completion_rewriter : public addon {
  public:
    std::string_view name() const override { return "completion_rewriter"; }
    boost::asio::awaitable<void> on_response_headers(flow& f) override {
        if (f.request.target == "/v1/chat/completions") {
            f.transform_response_body(std::make_shared<answer_rewriter>(), name());
        }
        co_return;
    }
};

TEST_F(addon_api_test, ResponseTransformChangesAContentLengthJsonBody) {
    start({std::make_shared<completion_rewriter>()});
    auto client = proxy().make_client();
    for (int i = 0; i < 2; ++i) {  // the second one on the same connection
        auto r = client.post(chat_url, plain_request, {{"Content-Type", "application/json"}});
        ASSERT_EQ(r.status, 200u) << r.body;
        auto j = parse_json(r.body);
        ASSERT_TRUE(j.is_object());
        EXPECT_EQ(j["choices"][0]["message"].value("content", ""), "rewritten by an addon");
        EXPECT_EQ(j.value("object", ""), "chat.completion");
        if (auto cl = r.header("Content-Length")) {
            EXPECT_EQ(*cl, std::to_string(r.body.size())) << "stale Content-Length";
        }
    }
    EXPECT_EQ(client.connections_opened(), 1u);
    // An HTTP/1.0 client gets the changed body delimited by the close.
    auto c = proxy().connect();
    c->send(make_head("POST", "/v1/chat/completions", c->host_header(),
                      {{"Content-Type", "application/json"},
                       {"Content-Length", std::to_string(plain_request.size())}},
                      10) +
            plain_request);
    auto r10 = c->read_final_response();
    EXPECT_EQ(r10.status, 200u);
    EXPECT_EQ(parse_json(r10.body)["choices"][0]["message"].value("content", ""),
              "rewritten by an addon");
}

// --- hooks that await work on another thread.

// Lets `need` callers through together, or each alone once `timeout` passes.
class rendezvous {
  public:
    explicit rendezvous(std::size_t need) : need_(need) {}
    bool arrive_and_wait(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        if (++arrived_ >= need_) {
            cv_.notify_all();
        }
        return cv_.wait_for(lock, timeout, [this] { return arrived_ >= need_; });
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::size_t need_;
    std::size_t arrived_ = 0;
};

// Work for the pool: blocks its thread until all flows are in it (never the proxy's).
asio::awaitable<std::string> pooled_work(rendezvous& rv, std::string what,
                                         std::thread::id* worked_on) {
    *worked_on = std::this_thread::get_id();
    bool together = rv.arrive_and_wait(std::chrono::seconds(10));
    co_return (together ? "together:" : "alone:") + what;
}

class awaiting_addon : public addon {
  public:
    explicit awaiting_addon(std::size_t flows) : requests_(flows), responses_(flows) {}
    std::string_view name() const override { return "awaiting_addon"; }

    boost::asio::awaitable<void> on_request(flow& f) override {
        const auto hook_thread = std::this_thread::get_id();
        std::thread::id work_thread;
        auto work = pooled_work(requests_, f.request.target, &work_thread);
        std::string result = co_await asio::co_spawn(pool_, std::move(work), asio::use_awaitable);
        f.request.headers.emplace_back("X-Computed", result);
        check_threads(hook_thread, work_thread);
    }
    boost::asio::awaitable<void> on_response_headers(flow& f) override {
        const auto hook_thread = std::this_thread::get_id();
        std::thread::id work_thread;
        auto work = pooled_work(responses_, f.request.target, &work_thread);
        std::string result = co_await asio::co_spawn(pool_, std::move(work), asio::use_awaitable);
        f.response->headers.emplace_back("X-Computed-Response", result);
        check_threads(hook_thread, work_thread);
    }
    void close() override { pool_.join(); }

    std::atomic<int> resumed_elsewhere{0};  // hooks that came back on another thread
    std::atomic<int> worked_on_hook_thread{0};

  private:
    void check_threads(std::thread::id hook, std::thread::id work) {
        if (std::this_thread::get_id() != hook) {
            ++resumed_elsewhere;
        }
        if (work == hook) {
            ++worked_on_hook_thread;
        }
    }

    rendezvous requests_;
    rendezvous responses_;
    asio::thread_pool pool_{16};
};

TEST_F(addon_api_test, AwaitingHooksRunConcurrentlyOnAThreadPool) {
    constexpr std::size_t flows = 6;
    auto awaiting = std::make_shared<awaiting_addon>(flows);
    // One worker thread: the flows can only all be in their hooks at once if no hook blocks it.
    start({awaiting}, {.threads = 1});
    const auto started = std::chrono::steady_clock::now();
    std::vector<response> responses(flows);
    std::vector<std::string> errors(flows);
    std::vector<std::thread> clients;
    for (std::size_t i = 0; i < flows; ++i) {
        clients.emplace_back([&, i] {
            try {
                auto client = proxy().make_client(std::chrono::seconds(20));
                responses[i] = client.get("https://api.openai.com/echo?flow=" + std::to_string(i));
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    }
    for (auto& t : clients) {
        t.join();
    }
    const auto elapsed = std::chrono::steady_clock::now() - started;
    for (std::size_t i = 0; i < flows; ++i) {
        SCOPED_TRACE("flow " + std::to_string(i));
        const std::string target = "/echo?flow=" + std::to_string(i);
        ASSERT_EQ(errors[i], "");
        ASSERT_EQ(responses[i].status, 200u) << responses[i].body;
        EXPECT_EQ(echoed_header(parse_json(responses[i].body), "X-Computed"), "together:" + target)
            << "on_request's awaited result did not reach the upstream, or the flows did not "
               "await at the same time";
        EXPECT_EQ(responses[i].header("X-Computed-Response").value_or(""), "together:" + target);
    }
    EXPECT_LT(elapsed, std::chrono::seconds(8));
    EXPECT_EQ(awaiting->resumed_elsewhere.load(), 0) << "a hook resumed off its worker thread";
    EXPECT_EQ(awaiting->worked_on_hook_thread.load(), 0) << "the work ran on the proxy's thread";
}

}  // namespace
}  // namespace llm_proxy::test

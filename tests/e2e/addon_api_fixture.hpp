#pragma once
// Shared set-up of the addon API tests (addon_api*_test.cpp): one fake upstream per test suite
// and, per test, an in-process proxy whose chain holds the test's own addons; plus the small
// addons and body transforms several tests use.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/addon.hpp"
#include "support/fake_upstream.hpp"
#include "support/http_client.hpp"
#include "support/in_process_proxy.hpp"
#include "support/proxied_connection.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"

namespace llm_proxy::test {

inline constexpr std::string_view openai = "https://api.openai.com";

// Logs every hook call per flow ("on_request_headers", "on_request", ..., "on_flow_done"; the
// pieces of on_response_body count as one entry) and keeps the finished flows.
class recorder : public addon {
  public:
    explicit recorder(std::string name) : name_(std::move(name)) {}
    std::string_view name() const override { return name_; }

    void on_request_headers(flow& f) override;
    boost::asio::awaitable<void> on_request(flow& f) override;
    boost::asio::awaitable<void> on_response_headers(flow& f) override;
    void on_response_body(flow& f, std::string_view chunk) override;
    void on_response_end(flow& f) override;
    void on_error(flow& f) override;
    void on_flow_done(const std::shared_ptr<const flow>& f) override;

    // Waits (bounded) until `n` flows are done; returns all finished flows so far, in order.
    std::vector<std::shared_ptr<const flow>> wait_done(
        std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // The finished flow whose target starts with `target` (waits for it, bounded).
    std::shared_ptr<const flow> wait_flow(
        std::string_view target, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // The hooks flow `id` went through, in order.
    std::vector<std::string> events(const std::string& id) const;

  private:
    void note(const flow& f, std::string event);

    std::string name_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::map<std::string, std::vector<std::string>> events_;
    std::vector<std::shared_ptr<const flow>> done_;
};

// Throws std::runtime_error from `hook` for flows whose target contains `trigger`. hook is
// one of on_request_headers, on_request, on_response_headers, on_response_body (once more
// than `after_bytes` response bytes went out), on_response_end.
class thrower : public addon {
  public:
    thrower(std::string hook, std::string trigger, std::uint64_t after_bytes = 0)
        : hook_(std::move(hook)), trigger_(std::move(trigger)), after_bytes_(after_bytes) {}
    std::string_view name() const override { return "thrower"; }

    void on_request_headers(flow& f) override { maybe_throw(f, "on_request_headers"); }
    boost::asio::awaitable<void> on_request(flow& f) override;
    boost::asio::awaitable<void> on_response_headers(flow& f) override;
    void on_response_body(flow& f, std::string_view) override;
    void on_response_end(flow& f) override { maybe_throw(f, "on_response_end"); }

  private:
    void maybe_throw(const flow& f, std::string_view hook) const;

    std::string hook_;
    std::string trigger_;
    std::uint64_t after_bytes_;
};

// Drops every SSE event (text up to and including a blank line) that contains `needle`; the
// others pass unchanged and in order, also when an event is split over pieces.
class drop_sse_event : public body_transform {
  public:
    explicit drop_sse_event(std::string needle) : needle_(std::move(needle)) {}
    void on_data(std::string_view in, std::string& out) override;
    void on_end(std::string& out) override;

  private:
    std::string needle_;
    std::string pending_;
};

// ASCII a-z to A-Z, byte for byte.
std::string upper(std::string s);

class addon_api_test : public ::testing::Test {
  public:
    static void SetUpTestSuite();
    static void TearDownTestSuite();

  protected:
    void TearDown() override { proxy_.reset(); }

    static fake_upstream& upstream();
    static const test_pki& pki();

    // Starts this test's proxy with `addons` in chain order.
    in_process_proxy& start(std::vector<std::shared_ptr<addon>> addons,
                            in_process_proxy_options options = {});
    in_process_proxy& proxy() { return *proxy_; }

    // Requests the upstream has seen so far (its /stats requests_seen).
    std::size_t upstream_requests();

    std::unique_ptr<in_process_proxy> proxy_;

  private:
    struct env;
    static std::unique_ptr<env> env_;
};

// Parses JSON, failing the test (and returning null) when it is not.
nlohmann::json parse_json(std::string_view text);
// The first value of header `name` in an /echo answer's "headers" array, or "".
std::string echoed_header(const nlohmann::json& echo, std::string_view name);

// POSTs `body` to `path` on c, framed with Content-Length or as chunks of 16 KiB, head and
// body in one write; returns the final response.
raw_response post_framed(proxied_connection& c, std::string_view path, std::string_view body,
                         bool chunked, const header_list& extra_headers = {});

}  // namespace llm_proxy::test

#pragma once
// Talking to the web view (--web, `llm_proxy web`) in tests: its port from the log, its URLs,
// and its event stream read on a thread of its own.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace llm_proxy::test {

// The port of "web view listening on ADDRESS:PORT" (IPv4) in the child's stderr; 0 when it does
// not come within 10 s.
std::uint16_t wait_for_web_port(child_process& p);

// "http://127.0.0.1:PORT" + path.
std::string web_url(std::uint16_t port, const std::string& path);

struct web_event {
    std::string kind;  // started, updated, finished
    nlohmann::json flow;
};

// GET /api/events, kept open (resumed with ?since= after a quiet while) until destroyed.
class web_event_stream {
  public:
    explicit web_event_stream(std::uint16_t port);
    ~web_event_stream();
    web_event_stream(const web_event_stream&) = delete;
    web_event_stream& operator=(const web_event_stream&) = delete;

    bool wait_connected(std::chrono::milliseconds timeout);
    // The first event for which `pred` holds, waiting up to `timeout`.
    std::optional<web_event> wait_for(const std::function<bool(const web_event&)>& pred,
                                      std::chrono::milliseconds timeout);
    std::vector<web_event> events() const;
    std::string text() const;  // everything received

  private:
    void run();
    void parse_locked();

    std::uint16_t port_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool connected_ = false;
    bool stopping_ = false;
    std::string text_;
    std::size_t parsed_ = 0;
    std::string last_id_ = "0";
    std::vector<web_event> events_;
    std::thread thread_;
};

}  // namespace llm_proxy::test

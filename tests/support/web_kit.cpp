#include "support/web_kit.hpp"

#include <regex>

#include "support/http_client.hpp"

namespace llm_proxy::test {

using namespace std::chrono_literals;

std::uint16_t wait_for_web_port(child_process& p) {
    auto line =
        p.wait_for_stderr_line(std::regex(R"(web view listening on [0-9.]+:([0-9]+))"), 10s);
    return line ? static_cast<std::uint16_t>(std::stoi((*line)[1])) : 0;
}

std::string web_url(std::uint16_t port, const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port) + path;
}

web_event_stream::web_event_stream(std::uint16_t port) : port_(port) {
    thread_ = std::thread([this] { run(); });
}

web_event_stream::~web_event_stream() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    thread_.join();
}

void web_event_stream::run() {
    for (;;) {
        std::string since;
        {
            std::lock_guard lock(mutex_);
            if (stopping_) {
                return;
            }
            text_.resize(parsed_);  // a cut event of the last connection
            since = last_id_;
        }
        client_options o;
        o.timeout = 1s;  // quiet for a second: reconnect (and see whether to stop)
        http_client client(o);
        try {
            client.stream(
                "GET", web_url(port_, "/api/events?since=" + since), {}, {},
                [this](unsigned status, const header_list&) {
                    std::lock_guard lock(mutex_);
                    connected_ = connected_ || status == 200;
                    changed_.notify_all();
                },
                [this](std::string_view chunk) {
                    std::lock_guard lock(mutex_);
                    text_ += chunk;
                    parse_locked();
                    changed_.notify_all();
                    return !stopping_;
                });
        } catch (const std::exception&) {
            // a timeout or a closed connection: go round
        }
    }
}

void web_event_stream::parse_locked() {
    for (;;) {
        auto end = text_.find("\n\n", parsed_);
        if (end == std::string::npos) {
            return;
        }
        std::string block = text_.substr(parsed_, end - parsed_);
        parsed_ = end + 2;
        web_event e;
        std::string data;
        std::size_t pos = 0;
        while (pos < block.size()) {
            auto nl = block.find('\n', pos);
            auto line = block.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
            pos = nl == std::string::npos ? block.size() : nl + 1;
            if (line.starts_with("event: ")) {
                e.kind = line.substr(7);
            } else if (line.starts_with("data: ")) {
                data += line.substr(6);
            } else if (line.starts_with("id: ")) {
                last_id_ = line.substr(4);
            }
        }
        if (!e.kind.empty()) {
            e.flow = nlohmann::json::parse(data, nullptr, false);
            events_.push_back(std::move(e));
        }
    }
}

bool web_event_stream::wait_connected(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [this] { return connected_; });
}

std::optional<web_event> web_event_stream::wait_for(
    const std::function<bool(const web_event&)>& pred, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::optional<web_event> found;
    changed_.wait_for(lock, timeout, [&] {
        for (const auto& e : events_) {
            if (pred(e)) {
                found = e;
                return true;
            }
        }
        return false;
    });
    return found;
}

std::vector<web_event> web_event_stream::events() const {
    std::lock_guard lock(mutex_);
    return events_;
}

std::string web_event_stream::text() const {
    std::lock_guard lock(mutex_);
    return text_;
}

}  // namespace llm_proxy::test

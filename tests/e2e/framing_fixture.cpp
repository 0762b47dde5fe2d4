#include "framing_fixture.hpp"

#include <algorithm>
#include <atomic>

namespace llm_proxy::test {

std::unique_ptr<framing_env> framing_suite::env_;

const char* name_of(proxy_kind kind) {
    switch (kind) {
        case proxy_kind::simple:
            return "simple";
        case proxy_kind::dir_logger:
            return "dir_logger";
        case proxy_kind::dir_logger_tiny:
            return "dir_logger_tiny";
        case proxy_kind::cache:
            return "cache";
    }
    return "?";
}

framing_env::framing_env() {
    pki_ = make_test_pki(work_ / "pki");
    upstream_ = std::make_unique<fake_upstream>(pki_);
    // The proxies' CA: an EC test CA of its own in mitmproxy's layout (key + certificate in
    // mitmproxy-ca.pem), so no proxy spends a second generating an RSA CA key at start-up.
    const auto proxy_pki = make_test_pki(work_ / "proxy-pki");
    std::filesystem::create_directories(ca_dir_);
    const auto combined = ca_dir_ / "mitmproxy-ca.pem";
    write_file(combined, read_file(proxy_pki.ca_key) + read_file(proxy_pki.ca_cert));
    std::filesystem::permissions(
        combined, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

framing_env::~framing_env() {
    proxies_.clear();  // proxies first: they hold connections to the upstream
    upstream_.reset();
}

std::filesystem::path framing_env::fresh_dir(std::string_view tag) {
    auto dir = work_ / (std::string(tag) + "-" + std::to_string(++dirs_));
    std::filesystem::create_directories(dir);
    return dir;
}

std::vector<std::string> framing_env::base_args() const {
    return {"--ca_dir",       ca_dir_.string(),
            "--upstream-ca",  pki_.ca_cert.string(),
            "--connect-to",   "api.openai.com:443:127.0.0.1:" + std::to_string(upstream_->port()),
            "--threads",      "1",
            "--idle-timeout", "300"};
}

std::vector<std::string> framing_env::kind_args(proxy_kind kind,
                                                const std::filesystem::path& log_dir) const {
    switch (kind) {
        case proxy_kind::simple:
            return {"simple"};
        case proxy_kind::dir_logger:
            return {"dir_logger", "-o", log_dir.string()};
        case proxy_kind::dir_logger_tiny:
            return {"dir_logger", "-o", log_dir.string(), "--max-body-log", "1000"};
        case proxy_kind::cache:
            return {"cache", "--cache-engine", "memory", "--cache-max-body",
                    std::to_string(cache_max_body)};
    }
    return {};
}

proxy_process& framing_env::shared_proxy(proxy_kind kind) {
    auto& slot = proxies_[kind];
    if (slot && !slot->running()) {
        ADD_FAILURE() << "the shared " << name_of(kind) << " proxy died (exit code "
                      << slot->stop().value_or(-1) << "); stderr:\n"
                      << slot->stderr_text();
        slot.reset();
    }
    if (!slot) {
        slot = start_proxy(kind_args(kind, fresh_dir(std::string("logs-") + name_of(kind))));
    }
    return *slot;
}

std::unique_ptr<proxy_process> framing_env::start_proxy(const std::vector<std::string>& args) {
    auto all = base_args();
    all.insert(all.end(), args.begin(), args.end());
    // A generous start-up bound: a loaded machine running sanitized builds can be slow.
    return std::make_unique<proxy_process>(all, spawn_options{}, std::chrono::seconds(60));
}

void framing_suite::SetUpTestSuite() {
    if (!env_) {
        env_ = std::make_unique<framing_env>();
    }
}

void framing_suite::TearDownTestSuite() {
    env_.reset();
}

void framing_suite::TearDown() {
    if (HasFailure() && env_) {
        env_->stop_shared_proxies();
    }
}

framing_env& framing_suite::env() {
    if (!env_) {
        env_ = std::make_unique<framing_env>();
    }
    return *env_;
}

proxied_connection framing_suite::connect(proxy_process& proxy, std::string_view origin,
                                          std::chrono::milliseconds timeout) {
    return proxied_connection(proxy.host(), proxy.port(), origin, env().proxy_ca(), timeout);
}

std::string unique_id(std::string_view tag) {
    static std::atomic<std::uint64_t> next{1};
    return std::string(tag) + "-" + std::to_string(next.fetch_add(1));
}

std::uint64_t next_seed() {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1);
}

upload_outcome upload(proxied_connection& c, const upload_spec& spec, send_timing timing,
                      bool expect_continue, const std::string& path,
                      const header_list& extra_headers) {
    header_list headers = framing_headers(spec);
    headers.emplace_back("Content-Type", "application/octet-stream");
    if (expect_continue) {
        headers.emplace_back("Expect", "100-continue");
    }
    headers.insert(headers.end(), extra_headers.begin(), extra_headers.end());
    const std::string head = make_head("POST", c.target(path), c.host_header(), headers);
    upload_outcome out;
    if (expect_continue) {
        c.send(head);
        raw_response first = c.read_response();
        if (first.status != 100) {
            // A final answer without a 100 is only right when there is no body to wait for.
            out.response = std::move(first);
            out.sent = expected_body(spec);
            if (spec.framing == body_framing::chunked || spec.size != 0) {
                ADD_FAILURE() << "final response " << out.response.status
                              << " before any 100 Continue, body not sent: "
                              << out.response.body.substr(0, 300);
            }
            return out;
        }
        out.got_continue = true;
    }
    try {
        if (expect_continue) {
            out.sent = send_body(c, spec);
        } else if (timing == send_timing::together) {
            out.sent = send_body(c, spec, head);
        } else {
            c.send(head);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            out.sent = send_body(c, spec);
        }
    } catch (const connection_closed& e) {
        // The proxy gave up on the body; it may have said why before closing.
        out.send_error = e.what();
        try {
            out.response = c.read_final_response();
        } catch (const std::exception& read_error) {
            throw connection_closed(out.send_error + "; then no response: " + read_error.what());
        }
        return out;
    }
    out.response = c.read_final_response();
    return out;
}

void expect_sink_received(const upload_outcome& out, const std::string& path) {
    EXPECT_EQ(out.send_error, "") << "the proxy stopped taking the body";
    ASSERT_EQ(out.response.status, 200u) << out.response.body.substr(0, 500);
    auto j = nlohmann::json::parse(out.response.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not the upstream's /sink answer: "
                               << out.response.body.substr(0, 500);
    EXPECT_EQ(j.value("target", ""), path) << "the answer belongs to another request";
    EXPECT_EQ(j.value("method", ""), "POST");
    EXPECT_EQ(j.value("body_length", std::uint64_t{0}), out.sent.length)
        << "the upstream received " << j.value("body_length", std::uint64_t{0}) << " of "
        << out.sent.length << " body bytes (framing upstream: " << j.value("framing", "?") << ")";
    EXPECT_EQ(j.value("body_sha256", ""), out.sent.sha256) << "the body differs";
}

raw_response expect_own_echo(proxied_connection& c, const std::string& id, unsigned version,
                             const header_list& extra_headers) {
    const std::string path = "/echo?id=" + id;
    c.send(make_head("GET", c.target(path), c.host_header(), extra_headers, version));
    raw_response r = c.read_final_response();
    EXPECT_EQ(r.status, 200u) << "GET " << path << ": " << r.body.substr(0, 500);
    EXPECT_FALSE(r.header("X-Smuggled").has_value()) << "GET " << path << " got a smuggled answer";
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (!j.is_object()) {
        ADD_FAILURE() << "GET " << path
                      << " got an answer that is not /echo's: " << r.body.substr(0, 500);
        return r;
    }
    EXPECT_EQ(j.value("target", ""), path) << "GET " << path << " got another request's answer";
    EXPECT_EQ(j.value("method", ""), "GET");
    return r;
}

std::vector<std::string> sorted_requests_seen(const nlohmann::json& stats) {
    std::vector<std::string> out;
    for (const auto& r : stats.value("requests_seen", nlohmann::json::array())) {
        out.push_back(r.get<std::string>());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<nlohmann::json> read_records(const std::filesystem::path& dir, std::size_t n,
                                         std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        std::vector<nlohmann::json> out;
        if (std::filesystem::exists(dir)) {
            for (const auto& e : std::filesystem::directory_iterator(dir)) {
                const auto name = e.path().filename().string();
                if (e.path().extension() == ".json" && name[0] != '.') {
                    out.push_back(nlohmann::json::parse(read_file(e.path()), nullptr, false));
                }
            }
        }
        if (out.size() >= n || std::chrono::steady_clock::now() > deadline) {
            std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
                return a.value("timestamp", "") < b.value("timestamp", "");
            });
            return out;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace llm_proxy::test

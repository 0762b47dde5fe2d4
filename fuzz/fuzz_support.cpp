#include "fuzz_support.hpp"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "llm_proxy/addons/llm_observer.hpp"
#include "llm_proxy/llm/prices.hpp"
#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/record/stream_decoder.hpp"
#include "llm_proxy/tls/contexts.hpp"
#include "proxy/client_session.hpp"
#include "proxy/worker.hpp"

namespace llm_proxy::fuzz {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Keeps what it may of every flow and renders its record when the flow is done: the record
// must be JSON that parses back.
class record_addon : public addon {
  public:
    std::string_view name() const override { return "fuzz_record"; }
    std::size_t request_buffer_limit(const flow&) const override { return 16 * 1024; }
    std::size_t request_capture_limit(const flow&) const override { return 16 * 1024; }
    std::size_t response_capture_limit(const flow&) const override { return 16 * 1024; }
    void on_flow_done(const std::shared_ptr<const flow>& f) override {
        record::record_options options;
        options.max_body_log = 8 * 1024;
        std::string text = record::render_record(*f, options, "fuzz");
        check(nlohmann::json::accept(text), "a flow's record is not JSON");
    }
};

std::string canned_response(std::string_view path, const std::string& body, bool head) {
    auto with_length = [&](std::string_view status, std::string_view headers,
                           std::string_view payload) {
        std::string out = "HTTP/1.1 ";
        out += status;
        out += "\r\n";
        out += headers;
        out += "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n";
        if (!head) {
            out += payload;
        }
        return out;
    };
    if (path.starts_with("/cl")) {
        return with_length("200 OK", "Content-Type: application/json\r\n", R"({"ok":true})");
    }
    if (path.starts_with("/chunked")) {
        std::string out =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n";
        if (!head) {
            out += "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\n\r\n";
        }
        return out;
    }
    if (path.starts_with("/close")) {
        return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n" +
               std::string(head ? "" : "until the connection closes");
    }
    if (path.starts_with("/sse")) {
        std::string out =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: "
            "chunked\r\n\r\n";
        if (!head) {
            const std::string events =
                "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-"
                "mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
                "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-"
                "mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,"
                "\"total_tokens\":4}}\n\ndata: [DONE]\n\n";
            char size[32];
            std::snprintf(size, sizeof size, "%zx\r\n", events.size());
            out += size + events + "\r\n0\r\n\r\n";
        }
        return out;
    }
    if (path.starts_with("/gzip")) {
        // gzip of "compressed hello\n".
        static const unsigned char gz[] = {
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x4b, 0xce, 0xcf,
            0x2d, 0x28, 0x4a, 0x2d, 0x2e, 0x4e, 0x4d, 0x51, 0xc8, 0x48, 0xcd, 0xc9, 0xc9,
            0xe7, 0x02, 0x00, 0x4b, 0x2c, 0x8b, 0x6c, 0x11, 0x00, 0x00, 0x00};
        return with_length("200 OK", "Content-Encoding: gzip\r\n",
                           std::string_view(reinterpret_cast<const char*>(gz), sizeof gz));
    }
    if (path.starts_with("/continue")) {
        return "HTTP/1.1 100 Continue\r\n\r\n" + with_length("200 OK", "", body);
    }
    if (path.starts_with("/early-hints")) {
        return "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" +
               with_length("200 OK", "", "after hints");
    }
    if (path.starts_with("/204")) {
        return "HTTP/1.1 204 No Content\r\n\r\n";
    }
    if (path.starts_with("/304")) {
        return "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n";
    }
    if (path.starts_with("/switch")) {
        return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "
               "websocket\r\n\r\nraw bytes after the switch";
    }
    return with_length("200 OK", "Content-Type: application/octet-stream\r\n", body);
}

}  // namespace

void quiet_logs() {
    if (!std::getenv("LLM_PROXY_FUZZ_LOG")) {
        spdlog::set_level(spdlog::level::off);
    }
}

struct engine_harness::impl {
    upstream_mode mode;
    std::filesystem::path ca_dir;
    proxy::shared_state shared;
    std::unique_ptr<proxy::worker> worker;
    std::unique_ptr<tcp::acceptor> proxy_acceptor;
    std::unique_ptr<tcp::acceptor> upstream_acceptor;
    std::string raw_response;
    std::size_t upstream_open = 0;  // upstream connections still being served

    asio::io_context& ioc() { return worker->ioc; }

    asio::awaitable<void> accept_upstream() {
        for (;;) {
            auto [ec, socket] = co_await upstream_acceptor->async_accept(use_tuple);
            if (ec) {
                co_return;
            }
            ++upstream_open;
            asio::co_spawn(ioc(), serve(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> serve(tcp::socket s) {
        struct done_guard {
            std::size_t& n;
            ~done_guard() { --n; }
        } guard{upstream_open};
        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(64 * 1024);
            parser.body_limit(1u << 20);
            auto [ec, n] = co_await http::async_read_header(s, buffer, parser, use_tuple);
            if (ec) {
                break;
            }
            std::string path(parser.get().target());
            bool head = parser.get().method() == http::verb::head;
            if (mode == upstream_mode::scripted && path.starts_with("/continue")) {
                // Asked for 100 Continue: the interim response goes first (also when the
                // request did not say Expect: 100-continue).
                std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
                auto [wec, wn] = co_await asio::async_write(s, asio::buffer(interim), use_tuple);
                if (wec) {
                    break;
                }
            }
            auto [bec, bn] = co_await http::async_read(s, buffer, parser, use_tuple);
            if (bec) {
                break;
            }
            std::string response;
            bool close = false;
            if (mode == upstream_mode::raw) {
                response = raw_response;
                close = true;
            } else {
                response = canned_response(path, parser.get().body(), head);
                if (path.starts_with("/continue")) {
                    response.erase(0, std::string_view("HTTP/1.1 100 Continue\r\n\r\n").size());
                }
                close = path.starts_with("/close") || path.starts_with("/switch") ||
                        !parser.get().keep_alive();
            }
            auto [wec, wn] = co_await asio::async_write(s, asio::buffer(response), use_tuple);
            if (wec || close) {
                break;
            }
        }
        // Half-close, then wait for the proxy to let go of the connection (it may still be
        // sending, or keep it in its pool until the exchange ends).
        beast::error_code ignored;
        s.shutdown(tcp::socket::shutdown_send, ignored);
        char sink[4096];
        for (;;) {
            auto [ec, n] = co_await s.async_read_some(asio::buffer(sink), use_tuple);
            if (ec) {
                break;
            }
        }
        s.close(ignored);
    }
};

engine_harness::engine_harness(upstream_mode mode) : impl_(std::make_unique<impl>()) {
    quiet_logs();
    impl_->mode = mode;
    char dir_template[] = "/tmp/llm_proxy_fuzz_ca_XXXXXX";
    check(mkdtemp(dir_template) != nullptr, "mkdtemp");
    impl_->ca_dir = dir_template;
    static std::vector<std::filesystem::path> to_remove;
    to_remove.push_back(impl_->ca_dir);
    std::atexit([] {
        std::error_code ec;
        for (const auto& p : to_remove) {
            std::filesystem::remove_all(p, ec);
        }
    });

    auto& config = impl_->shared.config;
    config.listen_host = "127.0.0.1";
    config.listen_port = 0;
    config.ca_dir = impl_->ca_dir;
    config.threads = 1;
    config.client_header_timeout = std::chrono::milliseconds(1000);
    config.client_idle_timeout = std::chrono::milliseconds(1000);
    config.client_io_timeout = std::chrono::milliseconds(1000);
    config.connect_timeout = std::chrono::milliseconds(1000);
    config.upstream_timeout = std::chrono::milliseconds(1000);
    config.tunnel_idle_timeout = std::chrono::milliseconds(1000);
    config.shutdown_grace = std::chrono::milliseconds(100);
    config.max_header_bytes = 8 * 1024;
    // CONNECTs to blind.* become blind tunnels; every other host is intercepted.
    config.intercept = host_filter(host_filter::mode::ignore, {"^blind\\."}, "--ignore-hosts");
    config.log_tunnels = true;

    auto chain = std::make_shared<addon_chain>();
    addons::llm_observer_options llm;
    llm.prices = std::make_shared<const llm::price_table>(llm::price_table::builtin());
    llm.max_decoded_body = 64 * 1024;
    chain->add(std::make_shared<addons::llm_observer>(std::move(llm)));
    chain->add(std::make_shared<record_addon>());
    impl_->shared.chain = chain;
    impl_->shared.ca = tls::certificate_authority::load_or_create(impl_->ca_dir);
    impl_->shared.server_tls = tls::make_server_context(impl_->shared.ca);
    impl_->shared.upstream_tls = tls::make_upstream_context(true, std::nullopt);
    impl_->worker = std::make_unique<proxy::worker>(impl_->shared);

    auto loopback = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    impl_->proxy_acceptor = std::make_unique<tcp::acceptor>(impl_->ioc(), loopback);
    impl_->upstream_acceptor = std::make_unique<tcp::acceptor>(impl_->ioc(), loopback);
    // Every upstream connection, whatever the host and port, goes to the local upstream.
    config.connect_to.push_back(connect_to_rule{
        .host = "",
        .port = 0,
        .connect_host = "127.0.0.1",
        .connect_port = impl_->upstream_acceptor->local_endpoint().port(),
    });
    asio::co_spawn(impl_->ioc(), impl_->accept_upstream(), asio::detached);
}

engine_harness::~engine_harness() {
    beast::error_code ec;
    impl_->upstream_acceptor->close(ec);
    impl_->proxy_acceptor->close(ec);
    impl_->worker->pool.close_all();
    impl_->ioc().run_for(std::chrono::milliseconds(200));
}

engine_harness& harness_for(upstream_mode mode) {
    if (mode == upstream_mode::raw) {
        static engine_harness raw(upstream_mode::raw);
        return raw;
    }
    static engine_harness scripted(upstream_mode::scripted);
    return scripted;
}

std::uint16_t engine_harness::upstream_port() const {
    return impl_->upstream_acceptor->local_endpoint().port();
}

std::string engine_harness::exchange(std::string_view client_bytes, std::string_view raw_response) {
    auto& ioc = impl_->ioc();
    impl_->raw_response.assign(raw_response);
    // Connected and accepted through the event loop: a blocking connect() is not restarted
    // after a signal, and libFuzzer's timeout alarm interrupted one in 166,751 inputs (EINTR).
    tcp::socket client(ioc);
    tcp::socket accepted(ioc);
    std::optional<beast::error_code> connected;
    std::optional<beast::error_code> taken;
    client.async_connect(impl_->proxy_acceptor->local_endpoint(),
                         [&](beast::error_code ec) { connected = ec; });
    impl_->proxy_acceptor->async_accept(accepted, [&](beast::error_code ec) { taken = ec; });
    ioc.restart();
    while (!connected || !taken) {
        ioc.run_one();
    }
    check(!*connected && !*taken, "the loopback connection to the proxy failed");
    proxy::client_session::start(*impl_->worker, std::move(accepted));

    std::string received;
    bool writer_done = false;
    bool reader_done = false;
    std::string to_send(client_bytes);
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            co_await asio::async_write(client, asio::buffer(to_send), use_tuple);
            beast::error_code ec;
            client.shutdown(tcp::socket::shutdown_send, ec);
            writer_done = true;
        },
        asio::detached);
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            char buf[8192];
            for (;;) {
                auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), use_tuple);
                if (ec) {
                    break;
                }
                if (received.size() < (1u << 20)) {
                    received.append(buf, n);
                }
            }
            reader_done = true;
        },
        asio::detached);

    ioc.restart();
    while (!(writer_done && reader_done && impl_->worker->session_count.load() == 0)) {
        ioc.run_one();
    }
    beast::error_code ec;
    client.close(ec);
    // Pooled upstream connections go, so that each input starts from the same state.
    impl_->worker->pool.close_all();
    while (impl_->upstream_open > 0) {
        ioc.run_one();
    }
    ioc.poll();
    return received;
}

}  // namespace llm_proxy::fuzz

#include "client_session.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "client_hello.hpp"
#include "http_util.hpp"
#include "llm_proxy/tls/contexts.hpp"
#include "llm_proxy/util/authority.hpp"
#include "llm_proxy/util/ids.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::proxy {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string remote_text(const tcp::socket& s) {
    beast::error_code ec;
    auto ep = s.remote_endpoint(ec);
    if (ec) {
        return "unknown";
    }
    return endpoint_text(ep);
}

}  // namespace

void worker::close_idle_sessions() {
    for (auto* s : sessions) {
        s->close_if_idle();
    }
}

client_session::client_session(worker& w, tcp::socket socket)
    : worker_(w),
      shared_(w.shared),
      client_(beast::tcp_stream(std::move(socket))),
      buffer_(w.shared.config.max_header_bytes + 64 * 1024) {
    client_address_ = remote_text(client_.tcp().socket());
    beast::error_code ec;
    auto ep = client_.tcp().socket().remote_endpoint(ec);
    client_ip_ = ec ? "unknown" : ep.address().to_string();
    buffer_.reserve(4 * 1024);  // a typical request head and body in one read
    worker_.sessions.insert(this);
    ++worker_.session_count;
}

client_session::~client_session() {
    worker_.sessions.erase(this);
    --worker_.session_count;
    --worker_.shared.open_connections;
}

void client_session::start(worker& w, tcp::socket socket) {
    auto self = std::make_shared<client_session>(w, std::move(socket));
    asio::co_spawn(
        w.ioc, [self]() { return self->run(); },
        [](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::error("client session ended by an unexpected error: {}", ex.what());
                }
            }
        });
}

void client_session::close_if_idle() {
    if (idle_) {
        beast::error_code ec;
        client_.tcp().socket().cancel(ec);
        client_.tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    }
}

asio::awaitable<void> client_session::run() {
    beast::error_code ec;
    client_.tcp().socket().set_option(tcp::no_delay(true), ec);
    spdlog::debug("{} connected", client_address_);
    if (shared_.listener_tls) {
        bool ok = co_await accept_listener_tls();
        if (!ok) {
            client_.close();
            co_return;
        }
    }
    bool first = true;
    while (!shared_.stopping.load(std::memory_order_relaxed)) {
        request_parser parser;
        parser.header_limit(static_cast<std::uint32_t>(shared_.config.max_header_bytes));
        parser.body_limit(boost::none);
        shrink_idle_buffer(buffer_);
        client_.shrink_idle();
        idle_ = true;
        auto head = co_await read_head_bytes(first ? std::min(shared_.config.client_header_timeout,
                                                              shared_.config.client_idle_timeout)
                                                   : shared_.config.client_idle_timeout);
        idle_ = false;
        first = false;
        if (head.ec) {
            if (head.ec == beast::error::timeout && buffer_.size() > 0) {
                co_await reject(408, flow_error::request_timeout,
                                "request header not received in time", nullptr);
            }
            spdlog::debug("{} closing: {}", client_address_, head.ec.message());
            break;
        }
        if (head.too_large) {
            co_await reject(431, flow_error::request_header_fields_too_large,
                            "request header block exceeds " +
                                std::to_string(shared_.config.max_header_bytes) + " bytes",
                            nullptr);
            break;
        }
        if (!head.problem.empty()) {
            co_await reject(400, flow_error::bad_request, "malformed request: " + head.problem,
                            nullptr);
            break;
        }
        // The whole head is in the buffer: Beast parses it without reading. The buffer is
        // consumed only once it parsed, so a refused head is still there for the record.
        beast::error_code rec;
        std::size_t used = 0;
        while (!rec && !parser.is_header_done()) {
            auto n = parser.put(asio::buffer(buffer_.data() + used, head.length - used), rec);
            used += n;
            if (n == 0 && !rec) {
                rec = http::error::need_more;  // cannot happen with a complete head
            }
        }
        if (rec) {
            if (rec == http::error::header_limit) {
                co_await reject(431, flow_error::request_header_fields_too_large,
                                "request header block exceeds " +
                                    std::to_string(shared_.config.max_header_bytes) + " bytes",
                                nullptr);
            } else {
                co_await reject(400, flow_error::bad_request, "malformed request: " + rec.message(),
                                nullptr);
            }
            spdlog::debug("{} closing: {}", client_address_, rec.message());
            break;
        }
        buffer_.consume(used);
        bool keep_going = false;
        if (!tunnel_host_ && !co_await authorized(parser)) {
            keep_going = co_await send_auth_required(parser);
        } else if (parser.get().method() == http::verb::connect) {
            keep_going = co_await handle_connect(parser);
        } else {
            // Backpressure: an addon that cannot take more flows (a full record queue) holds
            // the request here; its head is read, its body not yet.
            co_await shared_.chain->wait_for_capacity();
            keep_going = co_await handle_request(parser);
        }
        if (!keep_going) {
            break;
        }
    }
    if (client_.is_tls() && !shared_.stopping.load(std::memory_order_relaxed)) {
        // A best-effort close_notify; the peer may already be gone. Skipped at shutdown so an
        // idle client cannot hold the exit up.
        client_.tcp().expires_after(std::chrono::seconds(2));
        co_await client_.tls().async_shutdown(use_tuple);
    }
    client_.close();
    spdlog::debug("{} disconnected", client_address_);
}

asio::awaitable<bool> client_session::handle_connect(request_parser& parser) {
    std::string host;
    std::uint16_t port = 0;
    if (tunnel_host_) {
        co_return co_await reject(400, flow_error::bad_request, "CONNECT inside a tunnel", &parser);
    }
    if (client_.is_tls()) {
        co_return co_await reject(400, flow_error::bad_request,
                                  "CONNECT over a TLS connection to the proxy is not supported",
                                  &parser);
    }
    if (!parse_connect_target(parser.get().target(), host, port)) {
        co_return co_await reject(
            400, flow_error::bad_request,
            "CONNECT needs host:port, got '" + std::string(parser.get().target()) + "'", &parser);
    }
    if (buffer_.size() > 0) {
        // The client sent tunnel bytes before our 200; they belong to the tunnel, which must
        // start from a clean stream.
        co_return co_await reject(400, flow_error::bad_request,
                                  "data sent before the CONNECT response", &parser);
    }
    const auto& filter = shared_.config.intercept;
    const std::string authority = host_port_text(host, port);
    // The target alone decides when it matches a pattern: an ignored target is relayed blind,
    // an allowed one intercepted. Otherwise the ClientHello's server name may still match.
    bool decided = filter.intercepts_everything() || filter.matches(authority);
    if (decided && !filter.intercept({authority})) {
        std::string no_sni;  // named: no temporaries inside co_await (GCC 12)
        co_return co_await run_blind_tunnel(host, port, std::move(no_sni), false);
    }
    if (decided) {
        // Intercepted: the upstream connection opens while the client reads our answer and
        // handshakes with us.
        early_ = worker_.pool.connect_early({"https", host, port, {}});
    }
    static constexpr std::string_view established = "HTTP/1.1 200 Connection established\r\n\r\n";
    client_.tcp().expires_after(shared_.config.client_io_timeout);
    auto [wec, wn] = co_await asio::async_write(client_, asio::buffer(established), use_tuple);
    if (wec) {
        co_return false;
    }
    tunnel_host_ = host;
    tunnel_port_ = port;
    spdlog::debug("{} CONNECT {}:{}", client_address_, host, port);

    std::optional<std::string> sni;
    if (!decided) {
        bool gone = false;
        sni = co_await peek_sni(gone);
        if (gone) {
            co_return false;
        }
        std::vector<std::string> names = {authority};
        if (sni) {
            names.push_back(*sni);
            names.push_back(host_port_text(*sni, port));
        }
        if (!filter.intercept(names)) {
            std::string name = sni.value_or("");
            co_return co_await run_blind_tunnel(host, port, std::move(name), true);
        }
    }

    // TLS starts with a handshake record (0x16); anything else is plain HTTP in the tunnel.
    auto first = co_await peek_first_byte();
    if (!first) {
        co_return false;
    }
    if (*first != 0x16) {
        tunnel_scheme_ = "http";
        early_.reset();  // a TLS connection is of no use here: it closes
        co_return true;
    }
    tunnel_scheme_ = "https";
    if (decided) {
        bool gone = false;
        sni = co_await peek_sni(gone);
        if (gone) {
            co_return false;
        }
    }
    if (sni && !iequals(*sni, host)) {
        // The ClientHello names another server than the CONNECT target (typically an
        // address): the name is what our certificate, the upstream's check and the record
        // use; the CONNECT target stays where the connection goes.
        spdlog::debug("{} CONNECT {}:{} names {} in its ClientHello", client_address_, host, port,
                      *sni);
        tunnel_address_ = host;
        tunnel_host_ = *sni;
        early_.reset();
    }
    if (!early_) {
        early_ = worker_.pool.connect_early({"https", *tunnel_host_, port, tunnel_address_});
    }
    co_return co_await start_tunnel_tls();
}

asio::awaitable<std::optional<unsigned char>> client_session::peek_first_byte() {
    // The stream's own timeout covers only its reads and writes, not a wait on the socket.
    auto& socket = client_.tcp().socket();
    asio::steady_timer deadline(socket.get_executor());
    deadline.expires_after(shared_.config.client_header_timeout);
    auto waiting = std::make_shared<bool>(true);
    deadline.async_wait([&socket, waiting](const beast::error_code& e) {
        if (!e && *waiting) {
            beast::error_code ignored;
            socket.cancel(ignored);
        }
    });
    auto [ec] = co_await socket.async_wait(tcp::socket::wait_read, use_tuple);
    *waiting = false;
    deadline.cancel();
    if (ec) {
        co_return std::nullopt;
    }
    unsigned char first = 0;
    beast::error_code pec;
    std::size_t got = socket.receive(asio::buffer(&first, 1), tcp::socket::message_peek, pec);
    if (pec || got == 0) {
        co_return std::nullopt;
    }
    co_return first;
}

asio::awaitable<bool> client_session::accept_listener_tls() {
    auto first = co_await peek_first_byte();
    if (!first) {
        co_return false;
    }
    if (*first != 0x16) {
        co_return true;  // plain HTTP on the same port
    }
    client_.start_tls(*shared_.listener_tls);
    client_.tcp().expires_after(shared_.config.client_header_timeout);
    auto [ec] = co_await client_.tls().async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
        spdlog::debug("{} TLS handshake with the listener failed: {}", client_address_,
                      ec.message());
        co_return false;
    }
    spdlog::debug("{} TLS established with the listener", client_address_);
    co_return true;
}

asio::awaitable<bool> client_session::start_tunnel_tls() {
    const std::string& host = *tunnel_host_;
    auto leaf = shared_.ca->cached_leaf(host);
    if (!leaf) {
        // A named function object: GCC 12 destroys lambda temporaries with non-trivial
        // captures twice when they appear inside a co_await expression.
        auto mint = [ca = shared_.ca,
                     host]() -> asio::awaitable<std::shared_ptr<const tls::leaf_certificate>> {
            co_return ca->leaf_for(host);
        };
        leaf = co_await asio::co_spawn(shared_.mint_pool, std::move(mint), asio::use_awaitable);
        spdlog::debug("minted a certificate for {}", host);
    }
    client_.start_tls(*shared_.server_tls);
    tls::use_leaf(client_.tls().native_handle(), *leaf, shared_.ca->cert());
    client_.tcp().expires_after(shared_.config.client_header_timeout);
    auto [ec] = co_await client_.tls().async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
        spdlog::debug("{} TLS handshake for {} failed: {} (does the client trust the CA in {}?)",
                      client_address_, host, ec.message(), shared_.ca->cert_pem_path().string());
        co_return false;
    }
    spdlog::debug("{} TLS established for {}", client_address_, host);
    co_return true;
}

asio::awaitable<bool> client_session::authorized(const request_parser& parser) {
    const auto& credentials = shared_.config.proxy_auth;
    if (!credentials.enabled()) {
        co_return true;
    }
    auto it = parser.get().find(http::field::proxy_authorization);
    if (it == parser.get().end()) {
        co_return false;
    }
    auto fast = credentials.check_fast(it->value());
    if (fast != proxy_credentials::verdict::unknown) {
        co_return fast == proxy_credentials::verdict::accepted;
    }
    // A named function object (GCC 12: no lambda temporaries inside co_await).
    auto slow = [&credentials, value = std::string(it->value())]() -> asio::awaitable<bool> {
        co_return credentials.accepts(value);
    };
    co_return co_await asio::co_spawn(shared_.mint_pool, std::move(slow), asio::use_awaitable);
}

asio::awaitable<bool> client_session::send_auth_required(const request_parser& parser) {
    spdlog::debug("{} proxy authentication missing or wrong: 407", client_address_);
    record_rejection(407, flow_error::proxy_auth_required,
                     parser.get().count(http::field::proxy_authorization) > 0
                         ? "proxy credentials wrong"
                         : "proxy credentials missing",
                     &parser);
    http::response<http::string_body> res{http::status::proxy_authentication_required, 11};
    res.set(http::field::proxy_authenticate, "Basic realm=\"llm_proxy\"");
    res.set(http::field::content_type, "application/json");
    res.set("X-Llm_proxy-Error", "proxy_auth_required");
    res.body() = error_json("proxy_auth_required",
                            "proxy authentication required: send Proxy-Authorization with the "
                            "Basic credentials given to --proxy-auth");
    res.keep_alive(false);  // the request's body, if any, was not read
    res.prepare_payload();
    client_.tcp().expires_after(shared_.config.client_io_timeout);
    co_await http::async_write(client_, res, use_tuple);
    co_return false;
}

asio::awaitable<std::optional<std::string>> client_session::peek_sni(bool& client_gone) {
    auto& socket = client_.tcp().socket();
    const auto deadline = std::chrono::steady_clock::now() + shared_.config.client_header_timeout;
    std::string bytes(max_client_hello_bytes, '\0');
    asio::steady_timer timer(worker_.ioc);
    auto pause = std::chrono::milliseconds(1);
    std::size_t seen = 0;
    while (true) {
        timer.expires_at(deadline);
        auto raced = co_await (socket.async_wait(tcp::socket::wait_read, use_tuple) ||
                               timer.async_wait(use_tuple));
        if (raced.index() == 1 || std::get<0>(std::get<0>(raced))) {
            client_gone = true;
            co_return std::nullopt;
        }
        beast::error_code ec;
        std::size_t n = socket.receive(asio::buffer(bytes), tcp::socket::message_peek, ec);
        if (ec || n == 0) {
            client_gone = true;
            co_return std::nullopt;
        }
        auto scan = scan_client_hello(std::string_view(bytes.data(), n));
        if (scan.state != client_hello_scan::status::need_more || n == bytes.size()) {
            co_return scan.sni;
        }
        if (n == seen) {
            // Peeking shows the same bytes even after the client closed: ask the socket
            // whether the peer hung up, or a client that sent half a ClientHello and left
            // would hold its session (and descriptors) until the header timeout.
            pollfd p{socket.native_handle(), POLLRDHUP, 0};
            if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
                client_gone = true;
                co_return std::nullopt;
            }
            // Part of a ClientHello is in, the rest not yet: the socket stays readable, so
            // wait a moment before peeking again (rare: a ClientHello split over segments).
            timer.expires_after(pause);
            co_await timer.async_wait(use_tuple);
            pause = std::min(pause * 2, std::chrono::milliseconds(50));
            if (std::chrono::steady_clock::now() >= deadline) {
                client_gone = true;
                co_return std::nullopt;
            }
        }
        seen = n;
    }
}

asio::awaitable<client_session::head_bytes> client_session::read_head_bytes(
    std::chrono::steady_clock::duration timeout) {
    // The stream's own timeout would close the socket: a timer cancels the read instead, so a
    // client that stopped halfway through its head can still be told 408.
    auto& socket = client_.tcp().socket();
    client_.tcp().expires_never();
    asio::steady_timer deadline(socket.get_executor());
    deadline.expires_after(timeout);
    auto waiting = std::make_shared<bool>(true);
    auto expired = std::make_shared<bool>(false);
    deadline.async_wait([&socket, waiting, expired](const beast::error_code& e) {
        if (!e && *waiting) {
            *expired = true;
            beast::error_code ignored;
            socket.cancel(ignored);
        }
    });
    auto out = co_await scan_head_bytes();
    *waiting = false;
    deadline.cancel();
    if (out.ec && *expired) {
        out.ec = beast::error::timeout;
    }
    co_return out;
}

asio::awaitable<client_session::head_bytes> client_session::scan_head_bytes() {
    head_bytes out;
    std::size_t scanned = 0;
    const std::size_t limit = shared_.config.max_header_bytes;
    for (;;) {
        std::string_view bytes(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        auto scan = scan_request_head(bytes, scanned);
        if (scan.state == head_scan::status::complete) {
            if (scan.length > limit) {
                // The bound counts the whole head, request line and final empty line
                // included (Beast's own header_limit leaves the request line out).
                out.too_large = true;
                co_return out;
            }
            out.length = scan.length;
            out.problem = request_head_problem(bytes.substr(0, scan.length));
            co_return out;
        }
        if (scan.state == head_scan::status::bad) {
            out.problem = std::move(scan.problem);
            co_return out;
        }
        if (bytes.size() > limit) {
            out.too_large = true;
            co_return out;
        }
        scanned = bytes.size() >= 3 ? bytes.size() - 3 : 0;  // an end may straddle reads
        auto room = std::min<std::size_t>(16 * 1024, buffer_.max_size() - buffer_.size());
        auto [ec, n] = co_await client_.async_read_some(buffer_.prepare(room), use_tuple);
        buffer_.commit(n);
        if (ec) {
            out.ec = ec;
            co_return out;
        }
    }
}

void client_session::record_rejection(unsigned status, flow_error kind, std::string message,
                                      const request_parser* parsed) {
    auto owner = std::make_shared<flow>();
    flow& f = *owner;
    f.id = make_uuid();
    f.client_address = client_address_;
    f.started_at = std::chrono::system_clock::now();
    f.started = std::chrono::steady_clock::now();
    auto& r = f.rejected.emplace();
    r.status = status;
    if (parsed) {
        const auto& req = parsed->get();
        f.request.method = std::string(req.method_string());
        f.request.version = req.version() == 10 ? 10 : 11;
        r.target = std::string(req.target());
        for (const auto& field : req) {
            // Whatever the record's filters say, proxy credentials never reach a record.
            if (field.name() != http::field::proxy_authorization) {
                f.request.headers.emplace_back(std::string(field.name_string()),
                                               std::string(field.value()));
            }
        }
        request_head where;
        if (tunnel_host_) {
            f.request.scheme = tunnel_scheme_;
            f.request.host = *tunnel_host_;
            f.request.port = tunnel_port_;
            f.request.target = r.target.starts_with("/") ? r.target : "/";
        } else if (req.method() != http::verb::connect &&
                   parse_absolute_target(r.target, where).empty()) {
            f.request.scheme = where.scheme;
            f.request.host = where.host;
            f.request.port = where.port;
            f.request.target = where.target;
        }
    } else {
        std::string_view bytes(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        r.raw_head = std::string(bytes.substr(0, rejection::max_raw_head));
        r.raw_head_truncated = bytes.size() > rejection::max_raw_head;
    }
    f.error_kind = kind;
    f.error = std::move(message);
    spdlog::debug("{} request refused: {} {}: {}", client_address_, status, to_string(kind),
                  f.error);
    auto& chain = *shared_.chain;
    chain.on_error(f);
    f.release_state();
    chain.on_flow_done(std::move(owner));
}

asio::awaitable<bool> client_session::reject(unsigned status, flow_error kind, std::string message,
                                             const request_parser* parsed, bool keep_alive) {
    std::string text = message;
    record_rejection(status, kind, std::move(message), parsed);
    co_return co_await send_error(status, to_string(kind), text, keep_alive);
}

asio::awaitable<bool> client_session::send_error(unsigned status, std::string_view code,
                                                 std::string_view message, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "application/json");
    res.set("X-Llm_proxy-Error", code);
    res.body() = error_json(code, message);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    client_.tcp().expires_after(shared_.config.client_io_timeout);
    auto [ec, n] = co_await http::async_write(client_, res, use_tuple);
    co_return !ec && keep_alive;
}

}  // namespace llm_proxy::proxy

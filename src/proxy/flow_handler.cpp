// One flow, in stages: admission -> addons see the head -> request body for addons ->
// local answer or upstream exchange (acquire, send, retry) -> response head -> response body
// relay -> end. Bodies move through body_relay in both directions.
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <charconv>

#include "body_relay.hpp"
#include "client_session.hpp"
#include "http_util.hpp"
#include "llm_proxy/util/ids.hpp"

namespace llm_proxy::proxy {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Request bodies up to this size are kept so a request can be retried once on a fresh
// connection when a pooled keep-alive connection turns out to be dead.
constexpr std::size_t replay_limit = 256 * 1024;
constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";

bool is_connection_loss(const beast::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == http::error::partial_message || ec == asio::ssl::error::stream_truncated;
}

// The request head as the upstream connection takes it. Plain HTTP through the parent proxy:
// absolute-form, with the parent's Proxy-Authorization (on this hop only, never in the flow).
std::string upstream_head_text(const upstream_connection& up, const request_head& r,
                               head_framing framing) {
    if (up.absolute_prefix.empty()) {
        return request_head_text(r.method, r.target, r.headers, framing);
    }
    std::string target = r.target.starts_with("/") ? up.absolute_prefix + r.target
                                                   : up.absolute_prefix + "/" + r.target;
    if (up.proxy_authorization.empty()) {
        return request_head_text(r.method, target, r.headers, framing);
    }
    header_list headers = r.headers;
    headers.emplace_back("Proxy-Authorization", up.proxy_authorization);
    return request_head_text(r.method, target, headers, framing);
}

// Watches the client's connection while the proxy waits for the upstream (its response head,
// or the next bytes of the response body): a connection that comes to read as closed (FIN) or
// reset means the client is gone, and the pending upstream read is cancelled, so the exchange
// is abandoned at once instead of holding the upstream (an LLM generating for nobody) until it
// sends something. Bytes from the client (a pipelined request) end the watch and stay unread.
// A client whose FIN is already there when the watch starts half-closed its connection after
// its requests and waits for the answers: it is not watched.
class client_watcher {
  public:
    client_watcher(asio::ip::tcp::socket& client, beast::tcp_stream& upstream)
        : state_(std::make_shared<state>()) {
        char byte = 0;
        if (::recv(client.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) {
            return;  // bytes (a pipelined request) or a half-close: nothing to watch
        }
        asio::co_spawn(client.get_executor(), watch(client, upstream, state_), asio::detached);
    }
    ~client_watcher() {
        state_->done = true;
        state_->stop.emit(asio::cancellation_type::all);
    }
    client_watcher(const client_watcher&) = delete;
    client_watcher& operator=(const client_watcher&) = delete;
    // The client closed or reset its connection while watched.
    bool gone() const { return state_->gone; }

  private:
    struct state {
        bool done = false;  // the watch is over: the watcher touches nothing any more
        bool gone = false;
        asio::cancellation_signal stop;
    };
    static asio::awaitable<void> watch(asio::ip::tcp::socket& client, beast::tcp_stream& upstream,
                                       std::shared_ptr<state> s) {
        for (;;) {
            auto token = asio::bind_cancellation_slot(s->stop.slot(), use_tuple);
            auto [ec] = co_await client.async_wait(asio::ip::tcp::socket::wait_read, token);
            if (s->done || ec) {
                co_return;
            }
            char byte = 0;
            auto n = ::recv(client.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                continue;  // not readable after all
            }
            if (n > 0) {
                co_return;
            }
            s->gone = true;
            upstream.cancel();
            co_return;
        }
    }
    std::shared_ptr<state> state_;
};

}  // namespace

namespace {
framing_encoder encoder_for(const head_framing& h) {
    switch (h.kind) {
        case framing::length:
            return framing_encoder::for_length(h.length);
        case framing::chunked:
            return framing_encoder::for_chunked();
        case framing::until_close:
            return framing_encoder::for_until_close();
        case framing::none:
            break;
    }
    return framing_encoder();
}
}  // namespace

// What the stages of one flow share.
struct client_session::flow_context {
    explicit flow_context(request_parser& p)
        : parser(p), owner(std::make_shared<flow>()), f(*owner) {}
    request_parser& parser;
    std::shared_ptr<flow> owner;  // handed to on_flow_done when the flow ends
    flow& f;
    std::size_t request_capture = 0;  // capture limits of this flow
    std::size_t response_capture = 0;
    framing_decoder request_body;  // the client's request body framing
    bool client_sent_length = false;
    bool client_keep_alive = false;
    bool expect_continue = false;
    unsigned reject_status = 400;  // when admission fails
    flow_error reject_kind = flow_error::bad_request;
    bool body_in_memory = false;  // f.request_body.data is the whole body
    std::string unsent_prefix;    // body bytes read for addons but not yet sent upstream
    std::unique_ptr<upstream_connection> up;
    std::optional<response_parser> response;
    bool client_gone = false;     // the client left while the proxy waited for the upstream
    bool response_ended = false;  // on_response_end ran before the last write (held end)
};

void client_session::fail_flow(flow& f, flow_error kind, std::string message) {
    f.error_kind = kind;
    f.error = std::move(message);
    f.duration = std::chrono::steady_clock::now() - f.started;
    spdlog::debug("{} flow {} failed: {}: {}", client_address_, f.id, to_string(f.error_kind),
                  f.error);
    flow_chain_->on_error(f);
}

asio::awaitable<bool> client_session::handle_request(request_parser& parser) {
    flow_context ctx(parser);
    auto& f = ctx.f;
    f.id = make_uuid();
    f.client_address = client_address_;
    f.started_at = std::chrono::system_clock::now();
    f.started = std::chrono::steady_clock::now();
    flow_chain_ = shared_.chain.get();
    if (auto problem = admit(ctx); !problem.empty()) {
        // A path no --reverse rule knows is not a broken request: a bodiless one keeps the
        // connection.
        bool keep_alive =
            ctx.reject_status == 404 && ctx.client_keep_alive && ctx.request_body.done();
        co_return co_await reject(ctx.reject_status, ctx.reject_kind, std::move(problem), &parser,
                                  keep_alive);
    }
    if (!tunnel_host_ &&
        !shared_.config.intercept.intercept({host_port_text(f.request.host, f.request.port)})) {
        // Not intercepted: forwarded as it came, no addon sees it, no record.
        spdlog::debug("{} {} {}:{} forwarded without interception", client_address_,
                      f.request.method, f.request.host, f.request.port);
        flow_chain_ = &shared_.no_addons;
    }
    bool keep_alive = co_await run_flow(ctx);
    // The flow is finished: its addon state goes, and it no longer changes.
    f.release_state();
    flow_chain_->on_flow_done(std::move(ctx.owner));
    co_return keep_alive;
}

asio::awaitable<bool> client_session::run_flow(flow_context& ctx) {
    auto& f = ctx.f;
    auto& chain = *flow_chain_;
    const std::string client_authority = f.request.authority();
    if (!chain.on_request_headers(f)) {
        co_return co_await fail_addon(ctx);
    }
    // Inside a tunnel the client's Host stays, unless an addon sent the request elsewhere.
    if (!tunnel_host_ || !find_header(f.request.headers, "Host") ||
        f.request.authority() != client_authority) {
        // RFC 9112 section 3.2.2: with absolute-form the target's authority is the Host.
        erase_header(f.request.headers, "Host");
        f.request.headers.insert(f.request.headers.begin(), {"Host", f.request.authority()});
    }
    ctx.request_capture = std::max(chain.request_capture_limit(f), replay_limit);
    ctx.body_in_memory = ctx.request_body.done();
    if (!f.answered_locally) {
        if (auto limit = chain.request_buffer_limit(f); limit > 0 && !ctx.body_in_memory) {
            if (!co_await read_body_for_addons(ctx, limit)) {
                co_return false;
            }
        }
        if (!co_await chain.on_request(f)) {
            co_return co_await fail_addon(ctx);
        }
        if (!ctx.unsent_prefix.empty()) {
            // The addons saw at most their limit; the record keeps up to the capture limit.
            f.request_body.data = ctx.unsent_prefix.substr(0, ctx.request_capture);
            f.request_body.truncated = f.request_body.total > f.request_body.data.size();
        }
    }
    if (f.answered_locally) {
        co_return co_await answer_locally(f, ctx.client_keep_alive && ctx.request_body.done());
    }
    if (f.request_body_replacement && !co_await use_replaced_body(ctx)) {
        co_return false;
    }
    if (auto failed = co_await exchange_with_upstream(ctx)) {
        co_return *failed;
    }
    co_return co_await relay_response(ctx);
}

// An addon threw (the chain logged it): the flow fails; the client gets a 500 when nothing
// was sent to it yet.
asio::awaitable<bool> client_session::fail_addon(flow_context& ctx) {
    if (ctx.up) {
        ctx.up->stream.close();
    }
    fail_flow(ctx.f, flow_error::addon_error, ctx.f.addon_failure);
    co_return co_await send_error(500, to_string(flow_error::addon_error), ctx.f.addon_failure,
                                  ctx.client_keep_alive && ctx.request_body.done());
}

// Admission: the request head must say unambiguously where the message ends and where it
// goes (RFC 9112 sections 3.2 and 6.3: never guess the framing). Returns a problem or "".
std::string client_session::admit(flow_context& ctx) {
    auto& req = ctx.parser.get();
    auto& f = ctx.f;
    f.request.method = std::string(req.method_string());
    f.request.version = req.version() == 10 ? 10 : 11;
    ctx.client_keep_alive = ctx.parser.keep_alive();
    bool has_te = req.count(http::field::transfer_encoding) > 0;
    ctx.client_sent_length = req.count(http::field::content_length) > 0;
    if (has_te && ctx.client_sent_length) {
        return "request has both Content-Length and Transfer-Encoding";
    }
    if (has_te && req.version() == 10) {
        return "Transfer-Encoding in an HTTP/1.0 request";
    }
    if (has_te) {
        // RFC 9112 section 6.3: a request body is delimited by chunked, which must be the last
        // coding and applied once; the proxy decodes no other coding (section 6.1: 501).
        auto codings = transfer_codings(req.base());
        if (codings.empty() || codings.back() != "chunked") {
            return "Transfer-Encoding does not end with chunked: the body's length cannot be "
                   "determined";
        }
        if (std::count(codings.begin(), codings.end(), "chunked") > 1) {
            return "chunked applied more than once in Transfer-Encoding";
        }
        if (codings.size() > 1) {
            ctx.reject_status = 501;
            ctx.reject_kind = flow_error::not_implemented;
            return "unsupported transfer coding '" + codings.front() +
                   "' (only chunked is accepted)";
        }
        if (!ctx.parser.chunked()) {
            return "unsupported Transfer-Encoding (only chunked is accepted)";
        }
    }
    if (ctx.parser.chunked()) {
        ctx.request_body = framing_decoder::for_chunked();
    } else if (auto n = ctx.parser.content_length(); n && *n > 0) {
        ctx.request_body = framing_decoder::for_length(*n);
    }
    std::string_view raw_target = req.target();
    bool reverse = false;
    if (!tunnel_host_ && raw_target.starts_with("/") && !shared_.config.reverse.empty()) {
        // Reverse mode: the flow gets the same upstream fields an absolute-form request
        // to the route's URL would.
        auto m = match_reverse_route(shared_.config.reverse, raw_target);
        if (!m) {
            ctx.reject_status = 404;
            ctx.reject_kind = flow_error::not_found;
            return "no --reverse rule matches the path '" +
                   std::string(raw_target.substr(0, raw_target.find('?')).substr(0, 200)) + "'";
        }
        f.request.scheme = m->route->scheme;
        f.request.host = m->route->host;
        f.request.port = m->route->port;
        f.request.target = std::move(m->target);
        reverse = true;
    } else if (!tunnel_host_ || !raw_target.starts_with("/")) {
        if (auto problem = parse_absolute_target(raw_target, f.request); !problem.empty()) {
            return problem;
        }
    } else {
        f.request.target = std::string(raw_target);
    }
    if (tunnel_host_) {
        // Absolute-form inside a tunnel still goes where the tunnel points.
        f.request.scheme = tunnel_scheme_;
        f.request.host = *tunnel_host_;
        f.request.port = tunnel_port_;
    }
    f.request.headers = end_to_end_headers(req.base());
    if (reverse && shared_.config.reverse_forwarded_for) {
        append_forwarded_for(f.request.headers, client_ip_);
    }
    if (auto e = req.find(http::field::expect); e != req.end()) {
        ctx.expect_continue = iequals(e->value(), "100-continue") && req.version() == 11;
    }
    return {};
}

// Reads the client's request body batch by batch, counting its bytes, until it ends or
// `take` returns false. False when the body failed (the flow is failed and answered).
asio::awaitable<bool> client_session::read_request_body(flow_context& ctx, const body_taker& take) {
    body_source source(client_, buffer_, ctx.request_body, shared_.config.client_io_timeout);
    if (std::exchange(ctx.expect_continue, false)) {
        source.send_before_first_read(continue_line);
    }
    std::vector<std::string_view> pieces;
    while (!source.done()) {
        auto st = co_await source.next(pieces);
        if (st != body_source::status::ok) {
            co_return co_await fail_request_body(ctx, st == body_source::status::bad_framing,
                                                 source.error());
        }
        bool more = true;
        for (auto p : pieces) {
            ctx.f.request_bytes += p.size();
            more = take(p) && more;
        }
        if (!more) {
            break;
        }
    }
    co_return true;
}

// The addons asked for the request body before on_request: it is read into the flow up to
// `limit`. A longer body is handed to them truncated; what was read streams on later.
asio::awaitable<bool> client_session::read_body_for_addons(flow_context& ctx, std::size_t limit) {
    auto& body = ctx.f.request_body;
    body_taker take = [&body, limit](std::string_view piece) {
        body.data.append(piece);
        body.total += piece.size();
        return body.data.size() <= limit;
    };
    if (!co_await read_request_body(ctx, take)) {
        co_return false;
    }
    if (body.data.size() > limit) {
        ctx.unsent_prefix = std::move(body.data);
        body.data = ctx.unsent_prefix.substr(0, limit);
        body.truncated = true;
    } else {
        ctx.body_in_memory = true;
    }
    co_return true;
}

// The client's request body failed: bad framing gets a 400, a cut-off body nothing (the client
// is gone or broke its own request). Either way the connection is not used again.
asio::awaitable<bool> client_session::fail_request_body(flow_context& ctx, bool bad_framing,
                                                        const beast::error_code& ec) {
    if (ctx.up) {
        ctx.up->stream.close();  // a partial request must never complete upstream
    }
    if (bad_framing) {
        std::string message =
            "malformed request body: " + std::string(to_string(ctx.request_body.error()));
        fail_flow(ctx.f, flow_error::bad_request, message);
        co_return co_await send_error(400, to_string(flow_error::bad_request), message, false);
    }
    fail_flow(ctx.f, flow_error::client_aborted,
              "client broke off the request body: " + ec.message());
    co_return false;
}

// An addon replaced the request body: the rest of the client's body is read and dropped, and
// the replacement is what goes upstream (and into the record).
asio::awaitable<bool> client_session::use_replaced_body(flow_context& ctx) {
    auto& f = ctx.f;
    body_taker drop = [](std::string_view) { return true; };
    if (!co_await read_request_body(ctx, drop)) {
        co_return false;
    }
    ctx.unsent_prefix.clear();
    std::string body = std::move(*f.request_body_replacement);
    f.request_body_replacement.reset();
    f.request_body = captured_body{std::move(body), 0, false};
    f.request_body.total = f.request_body.data.size();
    ctx.body_in_memory = true;
    ctx.client_sent_length = true;  // an empty replacement still says Content-Length: 0
    co_return true;
}

// Acquires an upstream connection, sends the request and reads the response head; a request
// that found a pooled connection dead is retried once on a new one when it can be replayed.
// Returns nothing when the response head is there; after a failure, whether the client
// connection may serve another request.
asio::awaitable<std::optional<bool>> client_session::exchange_with_upstream(flow_context& ctx) {
    auto& f = ctx.f;
    upstream_target target{f.request.scheme, f.request.host, f.request.port, {}};
    if (tunnel_host_ && f.request.host == *tunnel_host_ && f.request.port == tunnel_port_) {
        target.address = tunnel_address_;
    }
    for (int attempt = 0;; ++attempt) {
        // The tunnel's early connection serves its first request (when it is for the same
        // target: an addon may have sent the request elsewhere).
        auto early = std::exchange(early_, nullptr);
        auto acquired = co_await worker_.pool.acquire(target, early.get());
        if (!acquired.connection) {
            auto& e = acquired.error;
            fail_flow(f, e.kind, e.message);
            co_return co_await send_error(e.status, to_string(e.kind), e.message,
                                          ctx.client_keep_alive && ctx.request_body.done());
        }
        ctx.up = std::move(acquired.connection);
        bool retryable = ctx.up->reused && attempt == 0;
        auto sent = co_await send_request(ctx);
        if (sent.status == relay_status::stopped) {
            co_return co_await fail_addon(ctx);
        }
        if (sent.status == relay_status::bad_framing || sent.status == relay_status::cut_off) {
            co_return co_await fail_request_body(ctx, sent.status == relay_status::bad_framing,
                                                 sent.error);
        }
        beast::error_code ec = sent.error;
        if (!ec) {
            ec = co_await read_response_head(ctx);
        }
        if (!ec && !ctx.up->parent.empty() && ctx.response->get().result_int() == 407) {
            // Only the parent asks for proxy credentials: its 407 is no answer of the origin.
            auto& res = ctx.response->get();
            std::string message = "upstream proxy " + ctx.up->parent + " refused " +
                                  ctx.up->absolute_prefix + ": 407 " + std::string(res.reason());
            ctx.up->stream.close();
            fail_flow(f, flow_error::upstream_proxy, message);
            co_return co_await send_error(502, to_string(flow_error::upstream_proxy), message,
                                          ctx.client_keep_alive && ctx.request_body.done());
        }
        if (!ec) {
            co_return std::nullopt;
        }
        ctx.up->stream.close();
        if (ctx.client_gone) {
            fail_flow(f, flow_error::client_disconnected,
                      "client went away while waiting for the response from " + target.key());
            co_return false;
        }
        if (is_connection_loss(ec) && retryable && ctx.body_in_memory) {
            spdlog::debug("{} pooled connection to {} was closed by the server; retrying",
                          client_address_, target.key());
            continue;
        }
        co_return co_await fail_upstream(ctx, target, ec);
    }
}

// The framing of the request to the upstream: a body known whole keeps (or gets) its length,
// a streamed one keeps the client's length unless a transform may change it.
head_framing client_session::upstream_framing(flow_context& ctx) {
    auto& f = ctx.f;
    if (ctx.body_in_memory && ctx.request_body.trailers().empty()) {
        if (!f.request_body.data.empty() || ctx.client_sent_length) {
            return {framing::length, f.request_body.data.size()};
        }
        return {};
    }
    if (ctx.request_body.kind() == framing::length && f.request_transforms.empty()) {
        return {framing::length, *ctx.parser.content_length()};
    }
    return {framing::chunked, 0};
}

// Sends the request head and body: from memory when the body is known whole, else relayed
// from the client as it arrives.
asio::awaitable<relay_result> client_session::send_request(flow_context& ctx) {
    auto& f = ctx.f;
    if (ctx.body_in_memory && !f.request_transforms.empty()) {
        // Transformed once, whole; what is sent is what the record shows.
        std::vector<std::string_view> pieces{f.request_body.data};
        std::string out;
        if (!transform_body(f, f.request_transforms, pieces, true, out)) {
            co_return relay_result{relay_status::stopped, {}};
        }
        f.request_body = captured_body{std::move(out), 0, false};
        f.request_body.total = f.request_body.data.size();
        f.request_transforms.clear();
    }
    auto framing = upstream_framing(ctx);
    auto encoder = encoder_for(framing);
    body_sink sink{ctx.up->stream,
                   encoder,
                   shared_.config.upstream_timeout,
                   upstream_head_text(*ctx.up, f.request, framing),
                   {}};
    if (ctx.body_in_memory) {
        co_return co_await send_body(sink, f.request_body.data, ctx.request_body.trailers());
    }
    co_return co_await relay_request_body(ctx, sink);
}

// Relays the rest of the client's body upstream (after what was read for the addons), through
// the request transforms, capturing what is sent.
asio::awaitable<relay_result> client_session::relay_request_body(flow_context& ctx,
                                                                 body_sink& sink) {
    auto& f = ctx.f;
    body_source source(client_, buffer_, ctx.request_body, shared_.config.client_io_timeout);
    if (std::exchange(ctx.expect_continue, false)) {
        source.send_before_first_read(continue_line);
    }
    // A named std::function: GCC 12 mishandles converted temporaries inside co_await.
    body_filter filter = [this, &f, capture = ctx.request_capture](
                             std::vector<std::string_view>& pieces, bool last,
                             std::string& scratch) {
        for (auto p : pieces) {
            f.request_bytes += p.size();
        }
        if (!transform_body(f, f.request_transforms, pieces, last, scratch)) {
            return false;
        }
        for (auto p : pieces) {
            f.request_body.append(p, capture);
        }
        return true;
    };
    std::string_view prefix = ctx.unsent_prefix;
    std::string transformed_prefix;
    if (!prefix.empty() && !f.request_transforms.empty()) {
        // Read for the addons before the transforms were known to apply: transformed now.
        std::vector<std::string_view> pieces{prefix};
        if (!transform_body(f, f.request_transforms, pieces, false, transformed_prefix)) {
            co_return relay_result{relay_status::stopped, {}};
        }
        prefix = transformed_prefix;
        f.request_body = captured_body{};
        f.request_body.append(prefix, ctx.request_capture);
    }
    auto result = co_await relay_body(source, sink, filter, prefix);
    if (result.status == relay_status::done) {
        ctx.unsent_prefix.clear();
        // Small enough to replay on a retry.
        ctx.body_in_memory = f.request_body.total == f.request_body.data.size();
    }
    co_return result;
}

// Reads the final response head; interim responses (103 Early Hints...) are not relayed.
asio::awaitable<beast::error_code> client_session::read_response_head(flow_context& ctx) {
    auto& up = *ctx.up;
    client_watcher watch(client_.tcp().socket(), up.stream.tcp());
    for (;;) {
        auto& rp = ctx.response.emplace();
        rp.header_limit(static_cast<std::uint32_t>(shared_.config.max_header_bytes));
        rp.body_limit(boost::none);
        if (ctx.f.request.method == "HEAD") {
            rp.skip(true);
        }
        up.stream.tcp().expires_after(shared_.config.upstream_timeout);
        auto [ec, n] = co_await http::async_read_header(up.stream, up.buffer, rp, use_tuple);
        if (!ec && n > shared_.config.max_header_bytes) {
            // The bound counts the whole head, status line and final empty line included
            // (Beast's header_limit leaves the status line out).
            ec = http::error::header_limit;
        }
        if (ec) {
            ctx.client_gone = watch.gone();
            co_return ec;
        }
        unsigned st = rp.get().result_int();
        if (st < 100 || st >= 200 || st == 101) {
            co_return beast::error_code{};
        }
    }
}

asio::awaitable<bool> client_session::fail_upstream(flow_context& ctx,
                                                    const upstream_target& target,
                                                    const beast::error_code& ec) {
    auto kind = flow_error::upstream_reset;
    unsigned status = 502;
    std::string message = "upstream " + target.key() + ": " + ec.message();
    if (ec == beast::error::timeout) {
        kind = flow_error::upstream_timeout;
        status = 504;
        message = "upstream " + target.key() + " did not answer in time";
    } else if (!is_connection_loss(ec) &&
               ec.category() == http::make_error_code(http::error::bad_method).category()) {
        kind = flow_error::bad_upstream_response;
        message = "upstream " + target.key() + " sent an invalid response: " + ec.message();
    } else if (ec.category() == asio::error::get_ssl_category()) {
        // A TLS alert or failure after the handshake, e.g. TLS 1.3's answer to a missing client
        // certificate, which comes once the client has finished its part of the handshake.
        kind = flow_error::tls;
        message = "upstream " + target.key() + " TLS failure: " + ec.message();
    }
    fail_flow(ctx.f, kind, message);
    co_return co_await send_error(status, to_string(kind), message,
                                  ctx.client_keep_alive && ctx.request_body.done());
}

// Copies the upstream's response head into the flow; returns the decoder of its body.
framing_decoder client_session::take_response_head(flow_context& ctx,
                                                   std::optional<std::string>& head_length) {
    auto& f = ctx.f;
    auto& ures = ctx.response->get();
    unsigned upstream_status = ures.result_int();
    f.time_to_first_byte = std::chrono::steady_clock::now() - f.started;
    f.response = response_head{upstream_status, std::string(ures.reason()), ures.version(),
                               end_to_end_headers(ures.base())};
    auto cl = ures.find(http::field::content_length);
    if (cl != ures.end()) {
        head_length = std::string(cl->value());
        std::uint64_t n = 0;
        if (std::from_chars(head_length->data(), head_length->data() + head_length->size(), n).ec ==
            std::errc()) {
            f.response->content_length = n;
        }
    }
    framing_decoder decoder;
    if (response_has_no_body(f.request.method, upstream_status)) {
        // no body
    } else if (ctx.response->chunked()) {
        decoder = framing_decoder::for_chunked();
    } else if (auto n = ctx.response->content_length()) {
        decoder = framing_decoder::for_length(*n);
    } else {
        decoder = framing_decoder::for_until_close();
    }
    return decoder;
}

// Response head: upstream -> flow -> addons -> client; then the body, relayed as it arrives
// (an SSE event goes out the moment it comes in; memory stays at one buffer).
asio::awaitable<bool> client_session::relay_response(flow_context& ctx) {
    auto& f = ctx.f;
    auto& up = *ctx.up;
    std::optional<std::string> head_length;  // a HEAD answer keeps the length it leaves out
    auto decoder = take_response_head(ctx, head_length);
    unsigned upstream_status = ctx.response->get().result_int();
    if (!co_await flow_chain_->on_response_headers(f)) {
        co_return co_await fail_addon(ctx);
    }
    ctx.response_capture = flow_chain_->response_capture_limit(f);
    bool switching = f.response->status == 101 || upstream_status == 101;
    auto out = client_framing(ctx, decoder, head_length);
    ctx.client_keep_alive = ctx.client_keep_alive && out.kind != framing::until_close &&
                            !switching && !shared_.stopping.load(std::memory_order_relaxed);
    auto encoder = encoder_for(out);
    body_sink sink{client_,
                   encoder,
                   shared_.config.client_io_timeout,
                   response_head_text(f.request.version, f.response->status, f.response->reason,
                                      f.response->headers, out, ctx.client_keep_alive),
                   {}};
    hold_response_end(f, sink, ctx.response_ended);
    relay_result result;
    {
        // The source reads the upstream connection's buffer, and its destructor consumes from
        // it: it must be gone before finish_response hands the connection back to the pool,
        // which may free it (a full pool, a pool closed for shutdown).
        body_source source(up.stream, up.buffer, decoder, shared_.config.upstream_timeout);
        // An addon made a bodied response one without a body (204, 304): the body is read and
        // dropped, so the upstream connection stays in step.
        bool drop_body = out.kind == framing::none && decoder.kind() != framing::none;
        body_filter filter = [this, &f, capture = ctx.response_capture, drop_body](
                                 std::vector<std::string_view>& pieces, bool last,
                                 std::string& scratch) {
            if (drop_body) {
                pieces.clear();
                return true;
            }
            if (!transform_body(f, f.response_transforms, pieces, last, scratch)) {
                return false;
            }
            for (auto p : pieces) {
                f.response_body.append(p, capture);
                f.response_bytes += p.size();
                if (!flow_chain_->on_response_body(f, p)) {
                    return false;
                }
            }
            return true;
        };
        client_watcher watch(client_.tcp().socket(), up.stream.tcp());
        result = co_await relay_body(source, sink, filter);
        ctx.client_gone = watch.gone();
    }
    co_return co_await finish_response(ctx, result, decoder, switching, sink.head.empty());
}

// The framing of the response to the client. A HEAD answer may carry the Content-Length of
// the body it leaves out (added to the headers here); a body a transform may change cannot
// keep its length.
head_framing client_session::client_framing(flow_context& ctx, const framing_decoder& decoder,
                                            const std::optional<std::string>& head_length) {
    auto& f = ctx.f;
    if (response_has_no_body(f.request.method, f.response->status)) {
        if (head_length && f.response->status != 204 && f.response_transforms.empty()) {
            f.response->headers.emplace_back("Content-Length", *head_length);
        }
        return {};
    }
    if (decoder.kind() == framing::length && f.response_transforms.empty()) {
        return {framing::length, *decoder.remaining()};
    }
    if (decoder.kind() == framing::none && f.response_transforms.empty()) {
        return {framing::length, 0};
    }
    if (f.request.version == 11) {
        return {framing::chunked, 0};
    }
    return {framing::until_close, 0};  // an HTTP/1.0 client reads until the connection closes
}

// Runs a body batch through the flow's transforms; false when one threw (the flow fails).
bool client_session::transform_body(flow& f,
                                    const std::vector<std::shared_ptr<body_transform>>& transforms,
                                    std::vector<std::string_view>& pieces, bool last,
                                    std::string& scratch) {
    try {
        run_transforms(transforms, pieces, last, scratch);
        return true;
    } catch (const std::exception& e) {
        f.addon_failure = std::string("a body transform failed: ") + e.what();
    } catch (...) {
        f.addon_failure = "a body transform failed";
    }
    f.tags["addon_failure"] = f.addon_failure;
    spdlog::error("flow {}: {}", f.id, f.addon_failure);
    return false;
}

asio::awaitable<bool> client_session::finish_response(flow_context& ctx, const relay_result& result,
                                                      const framing_decoder& decoder,
                                                      bool switching, bool head_sent) {
    auto& f = ctx.f;
    auto& up = ctx.up;
    if (result.status == relay_status::stopped) {
        if (!head_sent) {
            co_return co_await fail_addon(ctx);
        }
        up->stream.close();
        fail_flow(f, flow_error::addon_error, f.addon_failure);
        co_return false;  // cut off: the client sees the body is incomplete
    }
    if (result.status != relay_status::done) {
        up->stream.close();
        if (result.status == relay_status::sink_failed ||
            (ctx.client_gone && result.status == relay_status::cut_off)) {
            fail_flow(f, flow_error::client_disconnected,
                      "client went away during the response: " + result.error.message());
        } else {
            bool framing = result.status == relay_status::bad_framing;
            fail_flow(
                f,
                result.error == beast::error::timeout ? flow_error::upstream_timeout
                : framing                             ? flow_error::bad_upstream_response
                                                      : flow_error::upstream_reset,
                "upstream " + up->key + " broke off the response body: " +
                    (framing ? std::string(to_string(decoder.error())) : result.error.message()));
        }
        co_return false;  // closing tells the client the body is incomplete
    }
    if (!ctx.response_ended) {
        f.duration = std::chrono::steady_clock::now() - f.started;
        flow_chain_->on_response_end(f);
    }
    // Reused only when both messages ended exactly at their framing boundary: nothing
    // unread may wait on the connection (bytes past the response would be taken as the
    // answer to the next client's request).
    bool reusable = !switching && decoder.kind() != framing::until_close &&
                    ctx.response->get().keep_alive() && up->buffer.size() == 0 &&
                    !up->stream.has_unread_input();
    if (reusable) {
        worker_.pool.release(std::move(up));
    } else {
        up->stream.close();
    }
    co_return ctx.client_keep_alive;
}

// The pieces of a local reply's body (a cached stream replays event by event), through the
// response transforms; false when a transform threw.
bool client_session::local_reply_pieces(flow& f, std::vector<std::string>& out) {
    std::string_view body = f.local_response_body;
    std::vector<std::string_view> pieces;
    std::size_t at = 0;
    for (std::size_t end : f.local_response_pieces) {
        end = std::min(end, body.size());
        if (end > at) {
            pieces.push_back(body.substr(at, end - at));
            at = end;
        }
    }
    if (at < body.size() || pieces.empty()) {
        pieces.push_back(body.substr(at));
    }
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        std::vector<std::string_view> batch{pieces[i]};
        std::string scratch;
        if (!transform_body(f, f.response_transforms, batch, i + 1 == pieces.size(), scratch)) {
            return false;
        }
        std::string& piece = out.emplace_back();
        for (auto p : batch) {
            piece.append(p);
        }
    }
    return true;
}

asio::awaitable<bool> client_session::answer_locally(flow& f, bool keep_alive) {
    f.time_to_first_byte = std::chrono::steady_clock::now() - f.started;
    if (!f.response) {
        f.response = response_head{500, "Internal Server Error", 11, {}};
    }
    auto& chain = *flow_chain_;
    if (!co_await chain.on_response_headers(f)) {
        fail_flow(f, flow_error::addon_error, f.addon_failure);
        co_return co_await send_error(500, to_string(flow_error::addon_error), f.addon_failure,
                                      keep_alive);
    }
    keep_alive = keep_alive && !shared_.stopping.load(std::memory_order_relaxed);
    auto& headers = f.response->headers;
    auto length_field = find_header(headers, "Content-Length");
    std::string head_length(length_field.value_or(""));
    erase_header(headers, "Content-Length");  // the engine frames the body it sends
    erase_header(headers, "Transfer-Encoding");
    std::vector<std::string> pieces;
    head_framing out;
    if (response_has_no_body(f.request.method, f.response->status)) {
        if (f.request.method == "HEAD" && f.response->status >= 200 && f.response->status != 204) {
            // A HEAD answer may carry the Content-Length of the body it leaves out.
            headers.emplace_back(
                "Content-Length",
                length_field ? head_length : std::to_string(f.local_response_body.size()));
        }
    } else {
        if (!local_reply_pieces(f, pieces)) {
            fail_flow(f, flow_error::addon_error, f.addon_failure);
            co_return co_await send_error(500, to_string(flow_error::addon_error), f.addon_failure,
                                          keep_alive);
        }
        std::uint64_t total = 0;
        for (const auto& p : pieces) {
            total += p.size();
        }
        bool chunked = pieces.size() > 1 && f.request.version == 11;
        out = chunked ? head_framing{framing::chunked, 0} : head_framing{framing::length, total};
    }
    auto encoder = encoder_for(out);
    body_sink sink{client_,
                   encoder,
                   shared_.config.client_io_timeout,
                   response_head_text(f.request.version, f.response->status, f.response->reason,
                                      headers, out, keep_alive),
                   {}};
    std::vector<std::string_view> views(pieces.begin(), pieces.end());
    // The whole body is in hand: the addons see it before it goes (a held end needs it).
    auto capture = chain.response_capture_limit(f);
    for (auto p : views) {
        f.response_body.append(p, capture);
        f.response_bytes += p.size();
        chain.on_response_body(f, p);
    }
    bool ended = false;
    hold_response_end(f, sink, ended);
    auto sent = co_await send_pieces(sink, views);
    if (sent.status != relay_status::done) {
        fail_flow(f, flow_error::client_disconnected, "client went away before the response");
        co_return false;
    }
    if (!ended) {
        f.duration = std::chrono::steady_clock::now() - f.started;
        chain.on_response_end(f);
    }
    co_return keep_alive;
}

// When an addon holds the response's end (addon::holds_response_end), the response is ended
// for the addons, and their before_response_end awaited, before its last write.
void client_session::hold_response_end(flow& f, body_sink& sink, bool& ended) {
    if (!flow_chain_->holds_response_end()) {
        return;
    }
    sink.before_end = [this, &f, &ended] {
        ended = true;
        f.duration = std::chrono::steady_clock::now() - f.started;
        flow_chain_->on_response_end(f);
        return flow_chain_->before_response_end(f);
    };
}

}  // namespace llm_proxy::proxy

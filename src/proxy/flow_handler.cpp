// One flow: request from the client -> addons -> upstream -> response streamed back.
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

#include "client_session.hpp"
#include "http_util.hpp"
#include "llm_proxy/util/ids.hpp"

namespace llm_proxy::proxy {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Request bodies up to this size are kept so a request can be retried once on a fresh
// connection when a pooled keep-alive connection turns out to be dead.
constexpr std::size_t replay_limit = 256 * 1024;

std::string lower(std::string s) {
    for (auto& c : s) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
}

// Beast reads max(512, free capacity) bytes at a time into a dynamic buffer, and a buffer
// sized for a header never grows past that: bodies would then move in 512-byte reads (and,
// through TLS, 512-byte records to the client). Give reads of a large or open-ended body room
// for whole TLS records; small bodies fit the buffer as it is. (Idle connections give the room
// back: see shrink_idle_buffer.)
void reserve_read_space(beast::flat_buffer& buffer, boost::optional<std::uint64_t> body_length) {
    constexpr std::size_t room = 64 * 1024;
    if (body_length && *body_length <= 16 * 1024) {
        return;
    }
    if (buffer.capacity() - buffer.size() < room) {
        buffer.reserve(std::min(buffer.size() + room, buffer.max_size()));
    }
}

bool is_connection_loss(const beast::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == http::error::partial_message || ec == asio::ssl::error::stream_truncated;
}

// Fills scheme/host/port/target of an absolute-form request target. Returns an error text.
std::string parse_absolute_target(std::string_view target, request_head& head) {
    auto r = boost::urls::parse_absolute_uri(target);
    if (!r) {
        return "not a proxy request: expected an absolute URL (GET http://host/path) or CONNECT, "
               "got '" +
               std::string(target.substr(0, 200)) + "'";
    }
    head.scheme = lower(std::string(r->scheme()));
    if (head.scheme != "http" && head.scheme != "https") {
        return "unsupported scheme '" + head.scheme + "'";
    }
    if (r->host_type() == boost::urls::host_type::ipv6) {
        head.host = r->host_ipv6_address().to_string();
    } else {
        head.host = lower(std::string(r->encoded_host()));
    }
    if (head.host.empty()) {
        return "missing host in '" + std::string(target.substr(0, 200)) + "'";
    }
    if (r->has_port()) {
        if (r->port_number() == 0) {
            return "bad port in '" + std::string(target.substr(0, 200)) + "'";
        }
        head.port = r->port_number();
    } else {
        head.port = head.scheme == "https" ? 443 : 80;
    }
    head.target = std::string(r->encoded_path());
    if (head.target.empty()) {
        head.target = "/";
    }
    if (r->has_query()) {
        head.target += "?" + std::string(r->encoded_query());
    }
    return {};
}

}  // namespace

void client_session::fail_flow(flow& f, std::string kind, std::string message) {
    f.error_kind = std::move(kind);
    f.error = std::move(message);
    f.duration = std::chrono::steady_clock::now() - f.started;
    spdlog::debug("{} flow {} failed: {}: {}", client_address_, f.id, f.error_kind, f.error);
    shared_.chain->on_error(f);
}

asio::awaitable<bool> client_session::handle_request(request_parser& parser) {
    auto& req = parser.get();
    flow f;
    f.id = make_uuid();
    f.client_address = client_address_;
    f.started_at = std::chrono::system_clock::now();
    f.started = std::chrono::steady_clock::now();
    f.request.method = std::string(req.method_string());
    f.request.version = req.version() == 10 ? 10 : 11;
    bool client_keep_alive = parser.keep_alive();

    // Request smuggling defence (RFC 9112 section 6.3): never guess the framing.
    bool has_te = req.count(http::field::transfer_encoding) > 0;
    if (has_te && req.count(http::field::content_length) > 0) {
        co_return co_await send_error(
            400, "bad_request", "request has both Content-Length and Transfer-Encoding", false);
    }
    if (has_te && !parser.chunked()) {
        co_return co_await send_error(
            400, "bad_request", "unsupported Transfer-Encoding (only chunked is accepted)", false);
    }

    std::string_view raw_target = req.target();
    if (tunnel_host_ && raw_target.starts_with("/")) {
        f.request.scheme = tunnel_scheme_;
        f.request.host = *tunnel_host_;
        f.request.port = tunnel_port_;
        f.request.target = std::string(raw_target);
    } else {
        auto problem = parse_absolute_target(raw_target, f.request);
        if (!problem.empty()) {
            co_return co_await send_error(400, "bad_request", problem, false);
        }
        if (tunnel_host_) {
            // Absolute-form inside a tunnel still goes where the tunnel points.
            f.request.scheme = tunnel_scheme_;
            f.request.host = *tunnel_host_;
            f.request.port = tunnel_port_;
        }
    }
    f.request.headers = end_to_end_headers(req.base());
    bool expect_continue = false;
    if (auto e = req.find(http::field::expect); e != req.end()) {
        expect_continue = iequals(e->value(), "100-continue") && req.version() == 11;
    }
    bool has_body = parser.chunked() || parser.content_length().value_or(0) > 0;

    shared_.chain->on_request_headers(f);
    if (!tunnel_host_ || !find_header(f.request.headers, "Host")) {
        // RFC 9112 section 3.2.2: with absolute-form the target's authority is the Host.
        erase_header(f.request.headers, "Host");
        f.request.headers.insert(f.request.headers.begin(), {"Host", f.request.authority()});
    }

    const std::size_t capture = std::max(shared_.capture_limit, replay_limit);
    bool body_in_memory = !has_body;
    // Bytes of the body already read from the client but not yet sent upstream.
    std::string body_prefix;
    if (has_body && shared_.chain->needs_request_body(f)) {
        auto got = co_await read_request_body(parser, f);
        if (got == body_read::failed) {
            co_return false;
        }
        expect_continue = false;  // answered while reading
        if (got == body_read::complete) {
            body_in_memory = true;
        } else {
            // Longer than addons look at: they see it truncated, and it streams on.
            body_prefix = std::move(f.request_body.data);
            f.request_body.data = body_prefix.substr(0, capture);
        }
    }
    co_await shared_.chain->on_request(f);
    if (f.answered_locally) {
        co_return co_await answer_locally(f, client_keep_alive && body_in_memory);
    }

    upstream_target target{f.request.scheme, f.request.host, f.request.port};
    http::request<http::buffer_body> up_req;
    up_req.method_string(f.request.method);
    up_req.target(f.request.target);
    up_req.version(11);
    append_headers(up_req.base(), f.request.headers);
    if (has_body && body_in_memory) {
        up_req.content_length(f.request_body.data.size());
    } else if (parser.chunked()) {
        up_req.chunked(true);
    } else if (parser.content_length()) {
        up_req.content_length(*parser.content_length());
    }

    std::unique_ptr<upstream_connection> up;
    std::optional<response_parser> rp;
    for (int attempt = 0;; ++attempt) {
        auto acquired = co_await worker_.pool.acquire(target);
        if (!acquired.connection) {
            auto& e = acquired.error;
            fail_flow(f, e.kind, e.message);
            co_return co_await send_error(e.status, e.kind, e.message,
                                          client_keep_alive && body_in_memory);
        }
        up = std::move(acquired.connection);
        // A reused connection may have been closed by the server in the meantime; such a
        // request is retried once on a new connection when its body can be replayed.
        auto retryable = [&] {
            return up->reused && attempt == 0 &&
                   (body_in_memory || (!f.request_body.truncated && parser.is_done()));
        };
        auto [hec, hn] =
            co_await [&]() -> asio::awaitable<std::tuple<beast::error_code, std::size_t>> {
            // The head goes out together with the first body piece (one TLS record, one
            // syscall) whenever that piece is at hand; it is never held back for a body the
            // client has not sent yet.
            http::request_serializer<http::buffer_body> sr{up_req};
            up->stream.tcp().expires_after(shared_.config.upstream_timeout);
            // Writes the head if still pending, then data[0, n); more: body bytes follow.
            auto send =
                [&](const char* data, std::size_t n,
                    bool more) -> asio::awaitable<std::tuple<beast::error_code, std::size_t>> {
                up_req.body() = {const_cast<char*>(data), n, more};
                up->stream.tcp().expires_after(shared_.config.upstream_timeout);
                auto [wec, wn] = co_await http::async_write(up->stream, sr, use_tuple);
                co_return std::tuple{wec == http::error::need_buffer ? beast::error_code{} : wec,
                                     wn};
            };
            if (!has_body || body_in_memory) {
                co_return co_await send(f.request_body.data.data(),
                                        has_body ? f.request_body.data.size() : 0, false);
            }
            if (!body_prefix.empty() || buffer_.size() == 0 || expect_continue) {
                auto [ec, n] = co_await send(body_prefix.data(), body_prefix.size(), true);
                if (ec) {
                    co_return std::tuple{ec, n};
                }
            }
            if (expect_continue) {
                static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
                client_.tcp().expires_after(shared_.config.client_io_timeout);
                co_await asio::async_write(client_, asio::buffer(cont), use_tuple);
                expect_continue = false;
            }
            auto& body = req.body();
            reserve_read_space(buffer_, parser.content_length());
            while (!parser.is_done()) {
                body.data = body_buffer_.data();
                body.size = body_buffer_.size();
                client_.tcp().expires_after(shared_.config.client_io_timeout);
                auto [rec, rn] =
                    co_await http::async_read_some(client_, buffer_, parser, use_tuple);
                if (rec == http::error::need_buffer) {
                    rec = {};
                }
                if (rec) {
                    // The client broke off its own request: nothing to answer.
                    co_return std::tuple{beast::error_code(asio::error::operation_aborted), 0};
                }
                std::size_t got = body_buffer_.size() - body.size;
                if (got == 0) {
                    continue;
                }
                f.request_body.append({body_buffer_.data(), got}, capture);
                f.request_bytes += got;
                auto [wec, wn] = co_await send(body_buffer_.data(), got, !parser.is_done());
                if (wec) {
                    co_return std::tuple{wec, wn};
                }
            }
            if (f.request_body.total == f.request_body.data.size()) {
                body_in_memory = true;  // small enough to replay on a retry
            }
            if (sr.is_done()) {
                co_return std::tuple{beast::error_code{}, 0};
            }
            co_return co_await send(nullptr, 0, false);
        }();
        if (hec == asio::error::operation_aborted) {
            fail_flow(f, "client_aborted", "client closed the connection while sending the body");
            up->stream.close();
            co_return false;
        }
        if (!hec) {
            rp.emplace();
            rp->header_limit(static_cast<std::uint32_t>(shared_.config.max_header_bytes));
            rp->body_limit(boost::none);
            if (req.method() == http::verb::head) {
                rp->skip(true);
            }
            up->stream.tcp().expires_after(shared_.config.upstream_timeout);
            for (;;) {
                auto [rec, rn] =
                    co_await http::async_read_header(up->stream, up->buffer, *rp, use_tuple);
                hec = rec;
                if (rec) {
                    break;
                }
                unsigned st = rp->get().result_int();
                if (st < 100 || st >= 200 || st == 101) {
                    break;
                }
                // Interim responses (103 Early Hints...) are not relayed.
                rp.emplace();
                rp->header_limit(static_cast<std::uint32_t>(shared_.config.max_header_bytes));
                rp->body_limit(boost::none);
                if (req.method() == http::verb::head) {
                    rp->skip(true);
                }
            }
        }
        if (!hec) {
            break;
        }
        up->stream.close();
        if (is_connection_loss(hec) && retryable()) {
            spdlog::debug("{} pooled connection to {} was closed by the server; retrying",
                          client_address_, target.key());
            continue;
        }
        std::string kind = "upstream_reset";
        unsigned status = 502;
        std::string message = "upstream " + target.key() + ": " + hec.message();
        if (hec == beast::error::timeout) {
            kind = "upstream_timeout";
            status = 504;
            message = "upstream " + target.key() + " did not answer in time";
        } else if (!is_connection_loss(hec) &&
                   hec.category() == http::make_error_code(http::error::bad_method).category()) {
            kind = "bad_upstream_response";
            message = "upstream " + target.key() + " sent an invalid response: " + hec.message();
        }
        fail_flow(f, kind, message);
        co_return co_await send_error(status, kind, message, client_keep_alive && parser.is_done());
    }

    // Response head: upstream -> flow -> addons -> client.
    auto& ures = rp->get();
    unsigned status = ures.result_int();
    f.response = response_head{status, std::string(ures.reason()), ures.version(),
                               end_to_end_headers(ures.base())};
    if (auto cl = ures.find(http::field::content_length); cl != ures.end()) {
        std::uint64_t n = 0;
        auto v = cl->value();
        if (std::from_chars(v.data(), v.data() + v.size(), n).ec == std::errc()) {
            f.response->content_length = n;
        }
    }
    shared_.chain->on_response_headers(f);
    bool no_body = response_has_no_body(f.request.method, status);
    http::response<http::buffer_body> cres;
    cres.result(status);
    cres.version(f.request.version);
    cres.reason(f.response->reason);
    append_headers(cres.base(), f.response->headers);
    bool close_after = false;
    if (no_body) {
        if (auto cl = ures.find(http::field::content_length); cl != ures.end() && status != 204) {
            cres.set(http::field::content_length, cl->value());
        }
    } else if (rp->content_length()) {
        cres.content_length(*rp->content_length());
    } else if (f.request.version == 11) {
        cres.chunked(true);
    } else {
        close_after = true;  // an HTTP/1.0 client reads until the connection closes
    }
    client_keep_alive =
        client_keep_alive && !close_after && !shared_.stopping.load(std::memory_order_relaxed);
    cres.keep_alive(client_keep_alive);

    http::response_serializer<http::buffer_body> csr{cres};
    // The head goes out at once unless body bytes are already here to go with it (one TLS
    // record, one syscall): a stream's head is never held back waiting for its first event.
    if (no_body || (up->buffer.size() == 0 && !rp->is_done())) {
        client_.tcp().expires_after(shared_.config.client_io_timeout);
        auto [wec, wn] = co_await http::async_write_header(client_, csr, use_tuple);
        if (wec) {
            fail_flow(f, "client_disconnected",
                      "client went away before the response: " + wec.message());
            up->stream.close();
            co_return false;
        }
    }

    if (!no_body) {
        // Relay the body piece by piece as it arrives: an SSE event goes out the moment it
        // comes in, and memory stays at one buffer whatever the body size.
        auto& body = ures.body();
        reserve_read_space(up->buffer, rp->content_length());
        for (;;) {
            if (rp->is_done()) {
                break;
            }
            body.data = body_buffer_.data();
            body.size = body_buffer_.size();
            up->stream.tcp().expires_after(shared_.config.upstream_timeout);
            auto [rec, rn] = co_await http::async_read_some(up->stream, up->buffer, *rp, use_tuple);
            if (rec == http::error::need_buffer) {
                rec = {};
            }
            if (rec) {
                fail_flow(
                    f, rec == beast::error::timeout ? "upstream_timeout" : "upstream_reset",
                    "upstream " + target.key() + " broke off the response body: " + rec.message());
                up->stream.close();
                co_return false;  // closing tells the client the body is incomplete
            }
            std::size_t got = body_buffer_.size() - body.size;
            if (got == 0) {
                continue;
            }
            std::string_view chunk(body_buffer_.data(), got);
            f.response_body.append(chunk, shared_.capture_limit);
            f.response_bytes += got;
            shared_.chain->on_response_body(f, chunk);
            // The last piece goes with the end of the message (the last chunk) in one write.
            cres.body() = {body_buffer_.data(), got, !rp->is_done()};
            client_.tcp().expires_after(shared_.config.client_io_timeout);
            auto [cec, cn] = co_await http::async_write(client_, csr, use_tuple);
            if (cec && cec != http::error::need_buffer) {
                // The client is gone: stop the upstream request too.
                fail_flow(f, "client_disconnected",
                          "client went away during the response: " + cec.message());
                up->stream.close();
                co_return false;
            }
        }
        if (!csr.is_done()) {
            cres.body() = {nullptr, 0, false};
            client_.tcp().expires_after(shared_.config.client_io_timeout);
            auto [cec, cn] = co_await http::async_write(client_, csr, use_tuple);
            if (cec) {
                fail_flow(f, "client_disconnected", "client went away at the end of the response");
                up->stream.close();
                co_return false;
            }
        }
    }

    f.duration = std::chrono::steady_clock::now() - f.started;
    shared_.chain->on_response_end(f);
    if (rp->keep_alive() && rp->is_done()) {
        worker_.pool.release(std::move(up));
    } else {
        up->stream.close();
    }
    co_return client_keep_alive;
}

asio::awaitable<client_session::body_read> client_session::read_request_body(request_parser& parser,
                                                                             flow& f) {
    auto& req = parser.get();
    if (auto e = req.find(http::field::expect);
        e != req.end() && iequals(e->value(), "100-continue") && req.version() == 11) {
        static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
        client_.tcp().expires_after(shared_.config.client_io_timeout);
        auto [ec, n] = co_await asio::async_write(client_, asio::buffer(cont), use_tuple);
        if (ec) {
            co_return body_read::failed;
        }
    }
    auto& body = req.body();
    reserve_read_space(buffer_, parser.content_length());
    while (!parser.is_done()) {
        body.data = body_buffer_.data();
        body.size = body_buffer_.size();
        client_.tcp().expires_after(shared_.config.client_io_timeout);
        auto [ec, n] = co_await http::async_read_some(client_, buffer_, parser, use_tuple);
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        if (ec) {
            fail_flow(f, "client_aborted", "client broke off the request body: " + ec.message());
            co_return body_read::failed;
        }
        std::size_t got = body_buffer_.size() - body.size;
        // Every byte read is kept (the caller sends them upstream when the body overflows).
        f.request_body.data.append(body_buffer_.data(), got);
        f.request_body.total += got;
        f.request_bytes += got;
        if (f.request_body.data.size() > shared_.capture_limit) {
            f.request_body.truncated = true;
            co_return body_read::overflow;
        }
    }
    co_return body_read::complete;
}

asio::awaitable<bool> client_session::answer_locally(flow& f, bool keep_alive) {
    if (!f.response) {
        f.response = response_head{500, "Internal Server Error", 11, {}};
    }
    shared_.chain->on_response_headers(f);
    const std::string& body = f.local_response_body;
    http::response<http::buffer_body> res;
    res.result(f.response->status);
    res.version(f.request.version);
    res.reason(f.response->reason);
    append_headers(res.base(), f.response->headers);
    bool no_body = response_has_no_body(f.request.method, f.response->status);
    bool pieces = !no_body && !f.local_response_pieces.empty() && f.request.version == 11;
    if (pieces) {
        res.chunked(true);
    } else if (!no_body || res.find(http::field::content_length) == res.end()) {
        // A HEAD answer may carry the Content-Length of the body it leaves out.
        res.content_length(body.size());
    }
    res.keep_alive(keep_alive && !shared_.stopping.load(std::memory_order_relaxed));
    http::response_serializer<http::buffer_body> sr{res};
    client_.tcp().expires_after(shared_.config.client_io_timeout);
    auto [ec, n] = co_await http::async_write_header(client_, sr, use_tuple);
    // Sends body[from, to) as one piece (one chunk when chunked).
    auto send = [&](std::size_t from, std::size_t to) -> asio::awaitable<beast::error_code> {
        res.body() = {const_cast<char*>(body.data()) + from, to - from, true};
        client_.tcp().expires_after(shared_.config.client_io_timeout);
        auto [wec, wn] = co_await http::async_write(client_, sr, use_tuple);
        co_return wec == http::error::need_buffer ? beast::error_code{} : wec;
    };
    if (!ec && !no_body) {
        std::size_t at = 0;
        if (pieces) {
            for (std::size_t end : f.local_response_pieces) {
                end = std::min(end, body.size());
                if (end > at && !ec) {
                    ec = co_await send(at, end);
                    at = end;
                }
            }
        }
        if (at < body.size() && !ec) {
            ec = co_await send(at, body.size());
        }
        if (!ec) {
            res.body() = {nullptr, 0, false};
            std::tie(ec, std::ignore) = co_await http::async_write(client_, sr, use_tuple);
        }
    }
    if (ec) {
        fail_flow(f, "client_disconnected", "client went away before the response");
        co_return false;
    }
    if (!no_body) {
        f.response_body.append(body, shared_.capture_limit);
        f.response_bytes = body.size();
        shared_.chain->on_response_body(f, body);
    }
    f.duration = std::chrono::steady_clock::now() - f.started;
    shared_.chain->on_response_end(f);
    co_return res.keep_alive();
}

}  // namespace llm_proxy::proxy

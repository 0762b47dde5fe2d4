#include "parent_connect.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>

namespace llm_proxy::proxy {

namespace {

constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

bool digit(char c) {
    return c >= '0' && c <= '9';
}

std::string printable(std::string_view s, std::size_t max) {
    std::string out;
    for (char c : s.substr(0, max)) {
        auto u = static_cast<unsigned char>(c);
        out += (u >= 0x20 && u < 0x7f) ? c : '?';
    }
    return out;
}

}  // namespace

std::string connect_request_text(const parent_proxy& parent, std::string_view authority) {
    std::string out;
    out.append("CONNECT ").append(authority).append(" HTTP/1.1\r\n");
    out.append("Host: ").append(authority).append("\r\n");
    if (parent.has_credentials) {
        out.append("Proxy-Authorization: ").append(parent.authorization()).append("\r\n");
    }
    out.append("\r\n");
    return out;
}

connect_answer parse_connect_answer(std::string_view bytes, std::size_t max_head) {
    connect_answer a;
    auto end = bytes.find("\r\n\r\n");
    std::size_t head_size = end == std::string_view::npos ? 0 : end + 4;
    if (end == std::string_view::npos || head_size > max_head) {
        if (bytes.size() >= max_head) {
            a.result = connect_answer::state::malformed;
            a.problem = "answer head larger than " + std::to_string(max_head) + " bytes";
        }
        // A status line that cannot be one is malformed already.
        if (bytes.size() >= 5 && !bytes.starts_with("HTTP/")) {
            a.result = connect_answer::state::malformed;
            a.problem = "not an HTTP answer: '" + printable(bytes, 40) + "'";
        }
        return a;
    }
    std::string_view line = bytes.substr(0, bytes.find("\r\n"));
    // "HTTP/1.x SSS[ reason]"
    if (line.size() < 12 || !line.starts_with("HTTP/1.") || !digit(line[7]) || line[8] != ' ' ||
        !digit(line[9]) || !digit(line[10]) || !digit(line[11]) ||
        (line.size() > 12 && line[12] != ' ')) {
        a.result = connect_answer::state::malformed;
        a.problem = "not an HTTP/1.x status line: '" + printable(line, 80) + "'";
        return a;
    }
    a.status =
        static_cast<unsigned>((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
    a.reason = line.size() > 13 ? printable(line.substr(13), 200) : "";
    if (a.status < 200 || a.status >= 300) {
        a.result = connect_answer::state::refused;
        return a;
    }
    if (bytes.size() > head_size) {
        a.result = connect_answer::state::malformed;
        a.problem = "unexpected bytes after the " + std::to_string(a.status) + " answer";
        return a;
    }
    a.result = connect_answer::state::accepted;
    return a;
}

boost::asio::awaitable<std::string> parent_connect(boost::beast::tcp_stream& stream,
                                                   const parent_proxy& parent,
                                                   std::string authority,
                                                   std::chrono::milliseconds timeout,
                                                   std::size_t max_head) {
    const std::string who = "upstream proxy " + parent.authority();
    stream.expires_after(timeout);
    auto request = connect_request_text(parent, authority);
    auto [wec, wn] =
        co_await boost::asio::async_write(stream, boost::asio::buffer(request), use_tuple);
    if (wec) {
        co_return who + ": cannot send CONNECT " + authority + ": " + wec.message();
    }
    std::string received;
    char chunk[4096];
    for (;;) {
        // A parent sends nothing after its 2xx before our TLS hello: any such bytes make the
        // answer malformed (parse_connect_answer), so nothing read here belongs to the tunnel.
        auto [ec, n] = co_await stream.async_read_some(boost::asio::buffer(chunk), use_tuple);
        received.append(chunk, n);
        auto a = parse_connect_answer(received, max_head);
        switch (a.result) {
            case connect_answer::state::accepted:
                co_return std::string();
            case connect_answer::state::refused:
                co_return who + " refused CONNECT " + authority + ": " + std::to_string(a.status) +
                    (a.reason.empty() ? "" : " " + a.reason);
            case connect_answer::state::malformed:
                co_return who + " sent a malformed answer to CONNECT " + authority + ": " +
                    a.problem;
            case connect_answer::state::incomplete:
                break;
        }
        if (ec == boost::beast::error::timeout) {
            co_return who + " did not answer CONNECT " + authority + " in time";
        }
        if (ec) {
            co_return who + " closed the connection during CONNECT " + authority + ": " +
                ec.message();
        }
    }
}

}  // namespace llm_proxy::proxy

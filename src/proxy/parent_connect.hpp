#pragma once
// The CONNECT handshake with the --upstream-proxy parent: the request, and the parent's answer
// read with a bounded size and time.

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "llm_proxy/proxy/parent_proxy.hpp"

namespace llm_proxy::proxy {

// "CONNECT authority HTTP/1.1", Host, Proxy-Authorization when the parent has credentials.
std::string connect_request_text(const parent_proxy& parent, std::string_view authority);

// The parent's answer to CONNECT, read so far.
struct connect_answer {
    enum class state {
        incomplete,  // no end of head yet: read more
        accepted,    // a 2xx: the tunnel is open
        refused,     // a status but not 2xx (407, 502...)
        malformed,   // not an HTTP/1.x status line, too large, or bytes after a 2xx head
    };
    state result = state::incomplete;
    unsigned status = 0;
    std::string reason;   // printable characters only, cut to 200
    std::string problem;  // what is wrong, for malformed
};

// Reads `bytes` (everything received so far). A head longer than `max_head` is malformed.
connect_answer parse_connect_answer(std::string_view bytes, std::size_t max_head);

// Sends CONNECT over `stream` and reads the answer; the whole exchange gets `timeout`.
// Returns an empty string when the tunnel is open, else why not (for the client's 502).
boost::asio::awaitable<std::string> parent_connect(boost::beast::tcp_stream& stream,
                                                   const parent_proxy& parent,
                                                   std::string authority,
                                                   std::chrono::milliseconds timeout,
                                                   std::size_t max_head);

}  // namespace llm_proxy::proxy

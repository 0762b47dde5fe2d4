#pragma once
// Reading the server name (SNI) from the first bytes of a TLS connection, without a TLS
// library: the proxy peeks at the client's ClientHello to decide whether to intercept the
// connection before it answers the handshake.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace llm_proxy::proxy {

struct client_hello_scan {
    enum class status {
        need_more,  // a ClientHello so far: more bytes are needed to reach its end
        not_tls,    // not a TLS handshake record carrying a ClientHello (or malformed)
        complete,   // the whole ClientHello was read
    };
    status state = status::need_more;
    std::optional<std::string> sni;  // the host_name entry, lower case; set with `complete`
};

// The most bytes worth peeking at: a ClientHello in records of up to 16 KiB.
inline constexpr std::size_t max_client_hello_bytes = 2 * (16 * 1024 + 5);

// Scans `bytes`, the start of what the client sent.
client_hello_scan scan_client_hello(std::string_view bytes);

}  // namespace llm_proxy::proxy

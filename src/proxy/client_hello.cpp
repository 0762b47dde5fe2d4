#include "client_hello.hpp"

#include <cstdint>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::proxy {

namespace {

using status = client_hello_scan::status;

// A bounds-checked reader over the handshake message.
struct reader {
    std::string_view s;
    bool ok = true;
    std::size_t take_uint(std::size_t n) {
        if (!ok || s.size() < n) {
            ok = false;
            return 0;
        }
        std::size_t v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            v = (v << 8) | static_cast<unsigned char>(s[i]);
        }
        s.remove_prefix(n);
        return v;
    }
    std::string_view take(std::size_t n) {
        if (!ok || s.size() < n) {
            ok = false;
            return {};
        }
        auto out = s.substr(0, n);
        s.remove_prefix(n);
        return out;
    }
};

// The host a server name stands for, lower case: some clients (Go programs built before
// Go 1.20, e.g. `hey` with a proxy) send "host:port", which RFC 6066 does not allow; the port
// is dropped. A name that is no DNS host name even then (IP literals are not allowed either,
// but some clients send them: kept) is ignored.
std::optional<std::string> server_name_host(std::string_view name) {
    auto colon = name.rfind(':');
    if (colon != std::string_view::npos && name.find(':') == colon && colon + 1 < name.size() &&
        colon + 6 >= name.size()) {
        bool digits = true;
        for (char c : name.substr(colon + 1)) {
            digits = digits && c >= '0' && c <= '9';
        }
        if (digits) {
            name = name.substr(0, colon);
        }
    }
    if (name.empty()) {
        return std::nullopt;
    }
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_';
        if (!ok) {
            return std::nullopt;
        }
    }
    return to_lower(name);
}

std::optional<std::string> find_sni(std::string_view hello) {
    reader r{hello};
    r.take(2 + 32);          // legacy_version, random
    r.take(r.take_uint(1));  // session id
    r.take(r.take_uint(2));  // cipher suites
    r.take(r.take_uint(1));  // compression methods
    if (!r.ok || r.s.empty()) {
        return std::nullopt;  // no extensions
    }
    reader ext{r.take(r.take_uint(2))};
    while (r.ok && ext.ok && !ext.s.empty()) {
        auto type = ext.take_uint(2);
        reader body{ext.take(ext.take_uint(2))};
        if (!ext.ok || type != 0) {
            continue;
        }
        reader list{body.take(body.take_uint(2))};
        while (list.ok && !list.s.empty()) {
            auto name_type = list.take_uint(1);
            auto name = list.take(list.take_uint(2));
            if (list.ok && name_type == 0 && !name.empty()) {
                return server_name_host(name);
            }
        }
        return std::nullopt;
    }
    return std::nullopt;
}

}  // namespace

client_hello_scan scan_client_hello(std::string_view bytes) {
    // The handshake message may span records: collect the fragments.
    std::string message;
    std::size_t needed = 0;  // 4 + length of the ClientHello, once known
    while (true) {
        if (bytes.size() < 5) {
            return {bytes.empty() || static_cast<unsigned char>(bytes[0]) == 0x16
                        ? status::need_more
                        : status::not_tls,
                    std::nullopt};
        }
        if (static_cast<unsigned char>(bytes[0]) != 0x16 ||
            static_cast<unsigned char>(bytes[1]) != 0x03) {
            return {status::not_tls, std::nullopt};
        }
        std::size_t length =
            (static_cast<unsigned char>(bytes[3]) << 8) | static_cast<unsigned char>(bytes[4]);
        if (length == 0 || length > 16 * 1024 + 256) {
            return {status::not_tls, std::nullopt};
        }
        std::size_t available = std::min(length, bytes.size() - 5);
        message.append(bytes.substr(5, available));
        if (needed == 0 && message.size() >= 4) {
            if (static_cast<unsigned char>(message[0]) != 0x01) {
                return {status::not_tls, std::nullopt};
            }
            needed = 4 + ((static_cast<std::size_t>(static_cast<unsigned char>(message[1])) << 16) |
                          (static_cast<std::size_t>(static_cast<unsigned char>(message[2])) << 8) |
                          static_cast<unsigned char>(message[3]));
        }
        if (needed != 0 && message.size() >= needed) {
            return {status::complete, find_sni(std::string_view(message).substr(4, needed - 4))};
        }
        if (available < length) {
            return {status::need_more, std::nullopt};
        }
        bytes.remove_prefix(5 + length);
    }
}

}  // namespace llm_proxy::proxy

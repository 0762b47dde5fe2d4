// The server name read from a ClientHello before the proxy answers the handshake, and the
// record of a blind tunnel.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "llm_proxy/flow.hpp"
#include "llm_proxy/record/flow_record.hpp"
#include "proxy/client_hello.hpp"

using namespace llm_proxy;
using proxy::client_hello_scan;
using proxy::scan_client_hello;

namespace {

// The first flight of a real OpenSSL client: its ClientHello record(s).
std::string client_hello(const char* sni) {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                          SSL_CTX_free);
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl.get(), in, out);  // ssl owns both
    if (sni != nullptr) {
        SSL_set_tlsext_host_name(ssl.get(), sni);
    }
    SSL_set_connect_state(ssl.get());
    EXPECT_LE(SSL_do_handshake(ssl.get()), 0);  // wants to read the server's answer
    char* data = nullptr;
    long n = BIO_get_mem_data(out, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// The same handshake message cut into two records.
std::string split_into_two_records(const std::string& one_record) {
    std::string header = one_record.substr(0, 3);
    std::string message = one_record.substr(5);
    std::size_t half = message.size() / 2;
    auto record = [&](std::string_view part) {
        std::string r = header;
        r.push_back(static_cast<char>(part.size() >> 8));
        r.push_back(static_cast<char>(part.size() & 0xff));
        return r + std::string(part);
    };
    return record(std::string_view(message).substr(0, half)) +
           record(std::string_view(message).substr(half));
}

}  // namespace

TEST(ClientHello, ServerNameOfARealClientHello) {
    auto hello = client_hello("Api.Example.COM");
    auto scan = scan_client_hello(hello);
    ASSERT_EQ(scan.state, client_hello_scan::status::complete);
    EXPECT_EQ(scan.sni, "api.example.com");
    // Extra bytes after it change nothing.
    EXPECT_EQ(scan_client_hello(hello + "\x17\x03\x03").sni, "api.example.com");
}

TEST(ClientHello, EveryPrefixNeedsMore) {
    auto hello = client_hello("upstream.test");
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4}, std::size_t{5},
                          std::size_t{9}, hello.size() / 2, hello.size() - 1}) {
        EXPECT_EQ(scan_client_hello(hello.substr(0, n)).state, client_hello_scan::status::need_more)
            << n;
    }
}

// Go clients before Go 1.20 (e.g. `hey` through a proxy) send "host:port" as the server name:
// the host is what it names. A name that is no host name at all is ignored.
TEST(ClientHello, ServerNameWithAPortNamesTheHost) {
    EXPECT_EQ(scan_client_hello(client_hello("Upstream.Test:8443")).sni, "upstream.test");
    EXPECT_EQ(scan_client_hello(client_hello("upstream.test:443")).sni, "upstream.test");
    EXPECT_EQ(scan_client_hello(client_hello("127.0.0.1:443")).sni, "127.0.0.1");
    EXPECT_EQ(scan_client_hello(client_hello("127.0.0.1")).sni, "127.0.0.1");
    EXPECT_FALSE(scan_client_hello(client_hello("upstream.test:")).sni);
    EXPECT_FALSE(scan_client_hello(client_hello("upstream.test:44x")).sni);
    EXPECT_FALSE(scan_client_hello(client_hello("::1")).sni);
    EXPECT_FALSE(scan_client_hello(client_hello("a b")).sni);
    EXPECT_FALSE(scan_client_hello(client_hello("x/y:443")).sni);
}

TEST(ClientHello, WithoutServerName) {
    auto scan = scan_client_hello(client_hello(nullptr));
    EXPECT_EQ(scan.state, client_hello_scan::status::complete);
    EXPECT_FALSE(scan.sni);
}

TEST(ClientHello, SpreadOverTwoRecords) {
    auto two = split_into_two_records(client_hello("two.records.test"));
    auto scan = scan_client_hello(two);
    ASSERT_EQ(scan.state, client_hello_scan::status::complete);
    EXPECT_EQ(scan.sni, "two.records.test");
    EXPECT_EQ(scan_client_hello(two.substr(0, two.size() - 3)).state,
              client_hello_scan::status::need_more);
}

TEST(ClientHello, NotTls) {
    EXPECT_EQ(scan_client_hello("GET / HTTP/1.1\r\n\r\n").state,
              client_hello_scan::status::not_tls);
    EXPECT_EQ(scan_client_hello("G").state, client_hello_scan::status::not_tls);
    // A handshake record that is no ClientHello (a ServerHello, type 2).
    EXPECT_EQ(scan_client_hello(std::string("\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9)).state,
              client_hello_scan::status::not_tls);
    // A zero-length record.
    EXPECT_EQ(scan_client_hello(std::string("\x16\x03\x01\x00\x00", 5)).state,
              client_hello_scan::status::not_tls);
}

TEST(ClientHello, TruncatedExtensionsGiveNoNameButNoCrash) {
    auto hello = client_hello("cut.test");
    // Claim a longer extension block than there is, inside a complete message.
    std::string bad = hello;
    for (std::size_t i = 5 + 4 + 34; i < bad.size(); ++i) {
        bad[i] = '\xff';
    }
    auto scan = scan_client_hello(bad);
    EXPECT_EQ(scan.state, client_hello_scan::status::complete);
    EXPECT_FALSE(scan.sni);
}

namespace {

// A ClientHello with server name `sni` padded (padding extension) so that its records take
// `total` bytes, in records of at most 16 KiB of handshake bytes each.
std::string padded_client_hello(const std::string& sni, std::size_t total) {
    auto u16 = [](std::size_t v) {
        return std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
    };
    std::string sni_ext =
        u16(0) + u16(sni.size() + 5) + u16(sni.size() + 3) + '\0' + u16(sni.size()) + sni;
    std::string fixed =
        "\x03\x03" + std::string(32, 'r') + '\0' + u16(2) + "\x13\x01" + std::string("\x01\x00", 2);
    auto message_for = [&](std::size_t padding) {
        std::string ext = sni_ext + u16(21) + u16(padding) + std::string(padding, '\0');
        std::string body = fixed + u16(ext.size()) + ext;
        return std::string{'\x01', static_cast<char>(body.size() >> 16),
                           static_cast<char>((body.size() >> 8) & 0xff),
                           static_cast<char>(body.size() & 0xff)} +
               body;
    };
    constexpr std::size_t fragment = 16 * 1024;
    const std::size_t bare = message_for(0).size();
    // The fewest records that can carry it; the message is split evenly between them.
    const std::size_t records = (total + fragment + 4) / (fragment + 5);
    EXPECT_GT(total, bare + 5 * records);
    const std::string message = message_for(total - 5 * records - bare);
    const std::size_t part_size = (message.size() + records - 1) / records;
    EXPECT_LE(part_size, fragment);
    std::string out;
    for (std::size_t at = 0; at < message.size(); at += part_size) {
        auto part = message.substr(at, part_size);
        out += std::string("\x16\x03\x01", 3) + u16(part.size()) + part;
    }
    EXPECT_EQ(out.size(), total);
    return out;
}

}  // namespace

// The proxy peeks at most max_client_hello_bytes: a ClientHello that fills two records of 16 KiB
// is read whole, one byte more is not (no server name then).
TEST(ClientHello, PeekBoundHoldsTwoFullRecords) {
    using proxy::max_client_hello_bytes;
    static_assert(max_client_hello_bytes == 2 * (16 * 1024 + 5));
    for (std::size_t total :
         {max_client_hello_bytes - 1, max_client_hello_bytes, max_client_hello_bytes + 1}) {
        SCOPED_TRACE(total);
        const std::string hello = padded_client_hello("edge.test", total);
        ASSERT_EQ(hello.size(), total);
        auto whole = scan_client_hello(hello);
        ASSERT_EQ(whole.state, client_hello_scan::status::complete);
        EXPECT_EQ(whole.sni, "edge.test");
        auto peeked = scan_client_hello(std::string_view(hello).substr(0, max_client_hello_bytes));
        if (total <= max_client_hello_bytes) {
            EXPECT_EQ(peeked.state, client_hello_scan::status::complete);
            EXPECT_EQ(peeked.sni, "edge.test");
        } else {
            EXPECT_EQ(peeked.state, client_hello_scan::status::need_more);
            EXPECT_FALSE(peeked.sni);
        }
    }
}

TEST(TunnelRecord, FieldsOfABlindTunnel) {
    flow f;
    f.id = "id";
    f.client_address = "127.0.0.1:5000";
    f.request.method = "CONNECT";
    f.request.scheme = "https";
    f.request.host = "example.com";
    f.request.port = 443;
    f.duration = std::chrono::milliseconds(1500);
    f.tunnel.emplace();
    f.tunnel->sni = "example.com";
    f.tunnel->bytes_from_client = 517;
    f.tunnel->bytes_from_upstream = 4096;
    f.tunnel->end = "client_closed";
    auto r = record::make_record(f, {}, "proxy");
    EXPECT_EQ(r["request"]["method"], "CONNECT");
    EXPECT_EQ(r["request"]["url"], "example.com:443");
    EXPECT_EQ(r["connection_stats"]["url"], "example.com:443");
    EXPECT_EQ(r["connection_stats"]["duration_ms"], 1500);
    EXPECT_FALSE(r.contains("response"));
    EXPECT_FALSE(r.contains("error"));
    EXPECT_EQ(r["tunnel"], (nlohmann::json{{"bytes_from_client", 517},
                                           {"bytes_from_upstream", 4096},
                                           {"end", "client_closed"},
                                           {"host", "example.com"},
                                           {"port", 443},
                                           {"sni", "example.com"}}));
    EXPECT_EQ(r["schema"], "v2");

    f.tunnel->end = "error";
    f.tunnel->sni.clear();
    f.error_kind = flow_error::connect;
    f.error = "cannot connect";
    f.request.host = "::1";
    r = record::make_record(f, {}, "proxy");
    EXPECT_EQ(r["error"]["kind"], "connect");
    EXPECT_EQ(r["request"]["url"], "[::1]:443");
    EXPECT_FALSE(r["tunnel"].contains("sni"));
}

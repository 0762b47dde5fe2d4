// --upstream-proxy: the URL, the --upstream-no-proxy matcher, and reading the parent's answer
// to CONNECT.

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "cli_run.hpp"
#include "llm_proxy/proxy/parent_proxy.hpp"
#include "proxy/parent_connect.hpp"

using namespace llm_proxy;
using cli::test::exits_2_with;
using cli::test::run_cli_captured;
using proxy::connect_answer;
using proxy::parse_connect_answer;

namespace {

std::string url_error(const std::string& text) {
    try {
        parse_parent_proxy(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

std::string no_proxy_error(const std::string& text) {
    try {
        no_proxy_list::parse(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

}  // namespace

TEST(ParentProxyUrl, HostAndPort) {
    auto p = parse_parent_proxy("http://proxy.corp.example:3128");
    EXPECT_EQ(p.host, "proxy.corp.example");
    EXPECT_EQ(p.port, 3128);
    EXPECT_FALSE(p.has_credentials);
    EXPECT_EQ(p.authorization(), "");
    EXPECT_EQ(p.authority(), "proxy.corp.example:3128");

    auto v6 = parse_parent_proxy("HTTP://[::1]:8080/");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, 8080);
    EXPECT_EQ(v6.authority(), "[::1]:8080");
}

TEST(ParentProxyUrl, CredentialsArePercentDecoded) {
    auto p = parse_parent_proxy("http://al%40ice:p%3Ass%20w%2Frd@127.0.0.1:3128");
    EXPECT_TRUE(p.has_credentials);
    EXPECT_EQ(p.user, "al@ice");
    EXPECT_EQ(p.password, "p:ss w/rd");
    // base64("Aladdin:open sesame"), RFC 7617's example.
    auto q = parse_parent_proxy("http://Aladdin:open%20sesame@proxy:1");
    EXPECT_EQ(q.authorization(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    auto empty_password = parse_parent_proxy("http://user@proxy:1");
    EXPECT_TRUE(empty_password.has_credentials);
    EXPECT_EQ(empty_password.authorization(), "Basic dXNlcjo=");  // "user:"
}

TEST(ParentProxyUrl, RejectsOtherSchemesAndBadPorts) {
    EXPECT_EQ(url_error("https://proxy:3128"),
              "--upstream-proxy: only http:// parent proxies are supported, got "
              "'https://proxy:3128'");
    EXPECT_NE(url_error("socks5://proxy:1080"), "");
    EXPECT_NE(url_error("proxy:3128"), "");  // no scheme: "proxy" is read as one
    EXPECT_EQ(url_error("http://proxy:99999"),
              "--upstream-proxy: bad port '99999' in 'http://proxy:99999'");
    EXPECT_EQ(url_error("http://proxy:0"), "--upstream-proxy: bad port '0' in 'http://proxy:0'");
    EXPECT_EQ(url_error("http://proxy"),
              "--upstream-proxy: a port is required (host:port) in 'http://proxy'");
    EXPECT_EQ(url_error("http://proxy:"), "--upstream-proxy: bad port '' in 'http://proxy:'");
    EXPECT_EQ(url_error("http://proxy:notaport"),
              "--upstream-proxy: bad port 'notaport' in 'http://proxy:notaport'");
    EXPECT_EQ(url_error("http://[::1]:x"), "--upstream-proxy: bad port 'x' in 'http://[::1]:x'");
    EXPECT_EQ(url_error("http://:3128"), "--upstream-proxy: no host in 'http://:3128'");
    EXPECT_EQ(url_error("http://proxy:3128/path"),
              "--upstream-proxy: no path or query allowed in 'http://proxy:3128/path'");
    EXPECT_NE(url_error("not a url"), "");
    EXPECT_NE(url_error(""), "");
}

TEST(ParentProxyUrl, BadValuesExit2) {
    EXPECT_TRUE(exits_2_with({"--upstream-proxy", "https://proxy:3128", "simple"},
                             "only http:// parent proxies are supported"));
    EXPECT_TRUE(exits_2_with({"--upstream-proxy", "http://proxy:notaport", "simple"},
                             "--upstream-proxy: bad port 'notaport'"));
    EXPECT_TRUE(exits_2_with(
        {"--upstream-proxy", "http://proxy:3128", "--upstream-no-proxy", "10.0.0.0/33", "simple"},
        "'10.0.0.0/33' has a bad prefix length"));
    EXPECT_TRUE(exits_2_with({"--upstream-no-proxy", "localhost", "simple"},
                             "--upstream-no-proxy needs --upstream-proxy"));
}

TEST(ParentProxyUrl, MakeProxyConfig) {
    cli::global_options g;
    g.listen = "127.0.0.1:0";
    g.upstream_proxy = "http://u:p@127.0.0.1:3128";
    g.upstream_no_proxy = "localhost,.internal";
    auto c = cli::make_proxy_config(g);
    ASSERT_TRUE(c.upstream_proxy.has_value());
    EXPECT_EQ(c.upstream_proxy->port, 3128);
    EXPECT_TRUE(c.upstream_no_proxy.matches("db.internal"));
    EXPECT_FALSE(c.upstream_no_proxy.matches("api.openai.com"));

    cli::global_options none;
    none.listen = "127.0.0.1:0";
    EXPECT_FALSE(cli::make_proxy_config(none).upstream_proxy.has_value());
}

TEST(NoProxyList, HostNamesMatchExactly) {
    auto l = no_proxy_list::parse("localhost, Internal.Example.com ,");
    EXPECT_TRUE(l.matches("localhost"));
    EXPECT_TRUE(l.matches("LOCALHOST"));
    EXPECT_TRUE(l.matches("internal.example.com"));
    EXPECT_TRUE(l.matches("internal.example.com."));
    EXPECT_FALSE(l.matches("www.internal.example.com"));
    EXPECT_FALSE(l.matches("example.com"));
    EXPECT_FALSE(l.matches("notlocalhost"));
}

TEST(NoProxyList, SuffixesMatchSubdomains) {
    auto l = no_proxy_list::parse(".corp.example,*.svc.local");
    EXPECT_TRUE(l.matches("git.corp.example"));
    EXPECT_TRUE(l.matches("a.b.corp.example"));
    EXPECT_FALSE(l.matches("corp.example"));
    EXPECT_FALSE(l.matches("evilcorp.example"));
    EXPECT_TRUE(l.matches("api.svc.local"));
    EXPECT_FALSE(l.matches("svc.local"));
    EXPECT_FALSE(l.matches("api.openai.com"));
}

TEST(NoProxyList, Ipv4AndIpv6Cidrs) {
    auto l =
        no_proxy_list::parse("10.0.0.0/8,192.168.1.7,172.16.0.0/12,fd00::/8,::1,[2001:db8::]/33");
    EXPECT_TRUE(l.matches("10.1.2.3"));
    EXPECT_TRUE(l.matches("10.255.255.255"));
    EXPECT_FALSE(l.matches("11.0.0.1"));
    EXPECT_TRUE(l.matches("192.168.1.7"));
    EXPECT_FALSE(l.matches("192.168.1.8"));
    EXPECT_TRUE(l.matches("172.31.255.1"));
    EXPECT_FALSE(l.matches("172.32.0.1"));
    EXPECT_TRUE(l.matches("fd12:3456::1"));
    EXPECT_FALSE(l.matches("fe80::1"));
    EXPECT_TRUE(l.matches("::1"));
    EXPECT_TRUE(l.matches("[::1]"));
    EXPECT_FALSE(l.matches("::2"));
    EXPECT_TRUE(l.matches("2001:db8:7fff::1"));
    EXPECT_FALSE(l.matches("2001:db8:8000::1"));
    // IPv4 blocks never match IPv6 addresses or names.
    EXPECT_FALSE(l.matches("::ffff:10.0.0.1"));
    EXPECT_FALSE(l.matches("10.example"));
}

TEST(NoProxyList, StarMatchesEverything) {
    auto l = no_proxy_list::parse("*");
    EXPECT_TRUE(l.matches("api.openai.com"));
    EXPECT_TRUE(l.matches("10.0.0.1"));
    EXPECT_FALSE(l.empty());
    EXPECT_TRUE(no_proxy_list::parse("").empty());
    EXPECT_FALSE(no_proxy_list::parse("").matches("localhost"));
    auto zero = no_proxy_list::parse("0.0.0.0/0");
    EXPECT_TRUE(zero.matches("8.8.8.8"));
    EXPECT_FALSE(zero.matches("::1"));
}

TEST(NoProxyList, RejectsBadEntries) {
    EXPECT_EQ(no_proxy_error("10.0.0.0/33"),
              "--upstream-no-proxy: '10.0.0.0/33' has a bad prefix length (0 to 32)");
    EXPECT_EQ(no_proxy_error("fd00::/129"),
              "--upstream-no-proxy: 'fd00::/129' has a bad prefix length (0 to 128)");
    EXPECT_NE(no_proxy_error("10.0.0.0/"), "");
    EXPECT_NE(no_proxy_error("host.example/8"), "");
    EXPECT_NE(no_proxy_error("host:8080"), "");
    EXPECT_NE(no_proxy_error("a b"), "");
    EXPECT_NE(no_proxy_error("."), "");
    EXPECT_NE(no_proxy_error("*."), "");
}

TEST(ConnectAnswer, RequestText) {
    auto p = parse_parent_proxy("http://Aladdin:open%20sesame@proxy:3128");
    EXPECT_EQ(proxy::connect_request_text(p, "api.openai.com:443"),
              "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
              "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n");
    auto anonymous = parse_parent_proxy("http://proxy:3128");
    EXPECT_EQ(proxy::connect_request_text(anonymous, "[::1]:8443"),
              "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n");
}

TEST(ConnectAnswer, TwoHundredOpensTheTunnel) {
    auto a = parse_connect_answer("HTTP/1.1 200 Connection established\r\n\r\n", 1024);
    EXPECT_EQ(a.result, connect_answer::state::accepted);
    EXPECT_EQ(a.status, 200u);
    EXPECT_EQ(a.reason, "Connection established");
    auto b = parse_connect_answer("HTTP/1.0 200\r\nProxy-agent: x\r\n\r\n", 1024);
    EXPECT_EQ(b.result, connect_answer::state::accepted);
    EXPECT_EQ(b.reason, "");
}

TEST(ConnectAnswer, IncompleteHeadWaitsForMore) {
    EXPECT_EQ(parse_connect_answer("", 1024).result, connect_answer::state::incomplete);
    EXPECT_EQ(parse_connect_answer("HTTP/1.1 200 OK\r\n", 1024).result,
              connect_answer::state::incomplete);
    EXPECT_EQ(parse_connect_answer("HTT", 1024).result, connect_answer::state::incomplete);
}

// The bound counts the whole head, status line and final empty line included.
TEST(ConnectAnswer, HeadAtItsBound) {
    const std::size_t max = 1024;
    auto head = [](std::size_t size) {
        std::string start = "HTTP/1.1 200 OK\r\nX-Pad: ";
        return start + std::string(size - start.size() - 4, 'p') + "\r\n\r\n";
    };
    for (std::size_t size : {max - 1, max}) {
        auto h = head(size);
        ASSERT_EQ(h.size(), size);
        EXPECT_EQ(parse_connect_answer(h, max).result, connect_answer::state::accepted) << size;
        // Every shorter prefix waits for more.
        EXPECT_EQ(parse_connect_answer(std::string_view(h).substr(0, size - 1), max).result,
                  connect_answer::state::incomplete)
            << size;
    }
    auto over = head(max + 1);
    auto a = parse_connect_answer(over, max);
    EXPECT_EQ(a.result, connect_answer::state::malformed);
    EXPECT_NE(a.problem.find("larger than 1024 bytes"), std::string::npos) << a.problem;
    // Its first `max` bytes are already too many for a head that has not ended.
    EXPECT_EQ(parse_connect_answer(std::string_view(over).substr(0, max), max).result,
              connect_answer::state::malformed);
    EXPECT_EQ(parse_connect_answer(std::string_view(over).substr(0, max - 1), max).result,
              connect_answer::state::incomplete);
}

TEST(ConnectAnswer, ProxyAuthenticationRequiredKeepsTheReason) {
    auto a = parse_connect_answer(
        "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic "
        "realm=\"x\"\r\nContent-Length: 5\r\n\r\nnope!",
        1024);
    EXPECT_EQ(a.result, connect_answer::state::refused);
    EXPECT_EQ(a.status, 407u);
    EXPECT_EQ(a.reason, "Proxy Authentication Required");
    auto b = parse_connect_answer("HTTP/1.1 502 Bad\x01Gateway\r\n\r\n", 1024);
    EXPECT_EQ(b.result, connect_answer::state::refused);
    EXPECT_EQ(b.reason, "Bad?Gateway");
}

TEST(ConnectAnswer, GarbageIsMalformed) {
    auto a = parse_connect_answer("SSH-2.0-OpenSSH_9.2\r\n", 1024);
    EXPECT_EQ(a.result, connect_answer::state::malformed);
    EXPECT_NE(a.problem.find("not an HTTP answer"), std::string::npos) << a.problem;
    auto b = parse_connect_answer("HTTP/1.1 2OO OK\r\n\r\n", 1024);
    EXPECT_EQ(b.result, connect_answer::state::malformed);
    EXPECT_NE(b.problem.find("not an HTTP/1.x status line"), std::string::npos) << b.problem;
    EXPECT_EQ(parse_connect_answer("HTTP/2 200\r\n\r\n", 1024).result,
              connect_answer::state::malformed);
    // Bytes after a 2xx head: the tunnel would start with something that is not ours.
    auto c = parse_connect_answer("HTTP/1.1 200 OK\r\n\r\nextra", 1024);
    EXPECT_EQ(c.result, connect_answer::state::malformed);
}

TEST(ConnectAnswer, OversizeHeadIsMalformed) {
    std::string head = "HTTP/1.1 200 OK\r\nX-Filler: " + std::string(200, 'a');
    auto a = parse_connect_answer(head, 128);
    EXPECT_EQ(a.result, connect_answer::state::malformed);
    EXPECT_EQ(a.problem, "answer head larger than 128 bytes");
    auto whole = parse_connect_answer(head + "\r\n\r\n", 128);
    EXPECT_EQ(whole.result, connect_answer::state::malformed);
    EXPECT_EQ(parse_connect_answer(head + "\r\n\r\n", 4096).result,
              connect_answer::state::accepted);
}

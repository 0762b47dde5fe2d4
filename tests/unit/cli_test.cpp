#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/options.hpp"
#include "cli_run.hpp"

using namespace llm_proxy;
using cli::test::exits_2_with;
using cli::test::run_cli_captured;

TEST(Cli, ParseListen) {
    proxy_config c;
    cli::parse_listen("127.0.0.1:8080", c);
    EXPECT_EQ(c.listen_host, "127.0.0.1");
    EXPECT_EQ(c.listen_port, 8080);
    cli::parse_listen("[::1]:0", c);
    EXPECT_EQ(c.listen_host, "::1");
    EXPECT_EQ(c.listen_port, 0);
    cli::parse_listen(":9000", c);
    EXPECT_EQ(c.listen_host, "0.0.0.0");
    cli::parse_listen("localhost:1", c);
    EXPECT_EQ(c.listen_host, "127.0.0.1");
    EXPECT_THROW(cli::parse_listen("127.0.0.1:99999", c), std::invalid_argument);
    EXPECT_THROW(cli::parse_listen("nohost.example:80", c), std::invalid_argument);
    EXPECT_THROW(cli::parse_listen("127.0.0.1:", c), std::invalid_argument);
}

namespace {
// The message parse_listen throws for `text`, or "" when it accepts it.
std::string listen_error(const std::string& text) {
    proxy_config c;
    try {
        cli::parse_listen(text, c);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}
}  // namespace

TEST(Cli, ParseListenPortRange) {
    proxy_config c;
    cli::parse_listen("127.0.0.1:0", c);
    EXPECT_EQ(c.listen_port, 0);
    cli::parse_listen("127.0.0.1:65535", c);
    EXPECT_EQ(c.listen_port, 65535);
    cli::parse_listen("127.0.0.1:008080", c);
    EXPECT_EQ(c.listen_port, 8080);
    EXPECT_EQ(listen_error("127.0.0.1:65536"), "--listen: bad port '65536' in '127.0.0.1:65536'");
    EXPECT_EQ(listen_error("127.0.0.1:99999"), "--listen: bad port '99999' in '127.0.0.1:99999'");
    EXPECT_EQ(listen_error("127.0.0.1:"), "--listen: bad port '' in '127.0.0.1:'");
    EXPECT_EQ(listen_error("1.2.3.4:notaport"),
              "--listen: bad port 'notaport' in '1.2.3.4:notaport'");
    EXPECT_EQ(listen_error("1.2.3.4:-1"), "--listen: bad port '-1' in '1.2.3.4:-1'");
}

TEST(Cli, ParseListenPortOnly) {
    proxy_config c;
    cli::parse_listen("8081", c);
    EXPECT_EQ(c.listen_host, "127.0.0.1");
    EXPECT_EQ(c.listen_port, 8081);
    cli::parse_listen(":0", c);
    EXPECT_EQ(c.listen_host, "0.0.0.0");
    EXPECT_EQ(c.listen_port, 0);
    EXPECT_EQ(listen_error("localhost"), "--listen: bad port 'localhost' in 'localhost'");
    EXPECT_EQ(listen_error(""), "--listen: bad port '' in ''");
    EXPECT_EQ(listen_error(":"), "--listen: bad port '' in ':'");
}

TEST(Cli, ParseListenIpv6) {
    proxy_config c;
    cli::parse_listen("[::1]:8080", c);
    EXPECT_EQ(c.listen_host, "::1");
    EXPECT_EQ(c.listen_port, 8080);
    cli::parse_listen("[::]:1", c);
    EXPECT_EQ(c.listen_host, "::");
    cli::parse_listen("[::ffff:127.0.0.1]:2", c);
    EXPECT_EQ(c.listen_host, "::ffff:127.0.0.1");
    cli::parse_listen("[fe80::1%lo]:3", c);  // a zone, as asio takes it
    EXPECT_EQ(c.listen_host, "fe80::1%lo");
    EXPECT_EQ(c.listen_port, 3);
    EXPECT_EQ(listen_error("[::1]"), "--listen: expected [IPv6]:PORT, got '[::1]'");
    EXPECT_EQ(listen_error("[::1"), "--listen: expected [IPv6]:PORT, got '[::1'");
    EXPECT_EQ(listen_error("[::1]8080"), "--listen: expected [IPv6]:PORT, got '[::1]8080'");
    EXPECT_EQ(listen_error("[::1]:x"), "--listen: bad port 'x' in '[::1]:x'");
    EXPECT_EQ(listen_error("[zzz]:80"), "--listen: 'zzz' is not an IP address");
    EXPECT_EQ(listen_error("[::1]:65536"), "--listen: bad port '65536' in '[::1]:65536'");
    // A bare IPv6 address is ambiguous with a port: brackets are required.
    EXPECT_EQ(listen_error("::1:8080"), "--listen: write the IPv6 address in brackets: [::1]:8080");
    EXPECT_NE(listen_error("::1"), "");
}

TEST(Cli, ParseListenRejectsNamesAndUserinfo) {
    EXPECT_EQ(listen_error("nohost.example:80"), "--listen: 'nohost.example' is not an IP address");
    EXPECT_EQ(listen_error("user@127.0.0.1:80"), "--listen: 'user@127.0.0.1' is not an IP address");
    EXPECT_NE(listen_error("127.0.0.1:80/x"), "");
    EXPECT_NE(listen_error("[v1.x]:80"), "");
}

TEST(Cli, MakeProxyConfigFromFlags) {
    cli::global_options g;
    g.listen = "127.0.0.1:0";
    g.ca_dir = "/tmp/ca";
    g.connect_to = {"api.openai.com:443:127.0.0.1:9443"};
    g.upstream_timeout_s = 1.5;
    g.max_idle_upstream = 7;
    auto c = cli::make_proxy_config(g);
    EXPECT_EQ(c.max_idle_upstream, 7u);
    EXPECT_EQ(c.ca_dir, "/tmp/ca");
    ASSERT_EQ(c.connect_to.size(), 1u);
    EXPECT_EQ(c.connect_to[0].connect_port, 9443);
    EXPECT_EQ(c.upstream_timeout.count(), 1500);
}

TEST(Cli, UnknownSubcommandExits2) {
    EXPECT_TRUE(exits_2_with({"frobnicate"}, "llm_proxy: unknown subcommand 'frobnicate'"));
}
TEST(Cli, MissingSubcommandExits2) {
    EXPECT_TRUE(exits_2_with({}, "llm_proxy: a subcommand is required"));
}
TEST(Cli, BadFlagValueExits2) {
    EXPECT_TRUE(exits_2_with({"simple", "--threads", "many"}, "--threads"));
    EXPECT_TRUE(exits_2_with({"simple", "--max-idle-upstream", "-1"}, "--max-idle-upstream"));
    EXPECT_TRUE(exits_2_with({"--max-idle-upstream", "lots", "simple"}, "--max-idle-upstream"));
}
TEST(Cli, UnknownFlagExits2) {
    EXPECT_TRUE(exits_2_with({"dir_logger", "--no-such-flag"}, "--no-such-flag"));
}
TEST(Cli, BadListenExits2) {
    EXPECT_TRUE(exits_2_with({"simple", "--listen", "1.2.3.4:notaport"},
                             "--listen: bad port 'notaport' in '1.2.3.4:notaport'"));
}
TEST(Cli, BadConnectToExits2) {
    EXPECT_TRUE(exits_2_with({"simple", "--connect-to", "nonsense"}, "--connect-to"));
}
TEST(Cli, MissingUpstreamCaExits2) {
    EXPECT_TRUE(
        exits_2_with({"simple", "--upstream-ca", "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"));
}
TEST(Cli, HelpAndVersionExit0) {
    auto help = run_cli_captured({"--help"});
    EXPECT_EQ(help.exit_code, 0) << help.err;
    EXPECT_NE(help.out.find("dir_logger"), std::string::npos) << help.out;
    auto version = run_cli_captured({"version"});
    EXPECT_EQ(version.exit_code, 0) << version.err;
    EXPECT_NE(version.out.find("OpenSSL"), std::string::npos) << version.out;
    EXPECT_NE(version.out.find("Boost 1.81"), std::string::npos) << version.out;
}

TEST(Cli, CacheFlagsAreChecked) {
    EXPECT_TRUE(exits_2_with({"cache", "--cache-engine", "mongodb"}, "--cache-engine"));
    EXPECT_TRUE(exits_2_with({"cache", "--cache-ttl", "5 fortnights"}, "--cache-ttl"));
    EXPECT_TRUE(exits_2_with({"cache", "--cache-ttl", "-5"}, "--cache-ttl"));
    EXPECT_TRUE(exits_2_with({"cache", "--cache-max-bytes", "lots"}, "--cache-max-bytes"));
    EXPECT_TRUE(exits_2_with({"cache", "--cache-max-entries", "-1"}, "--cache-max-entries"));
}

TEST(Cli, CacheHelpExplainsTheCache) {
    auto help = run_cli_captured({"cache", "--help"});
    EXPECT_EQ(help.exit_code, 0) << help.err;
    const auto& out = help.out;
    for (const char* text :
         {"X-Llm_proxy-Cache", "MISS", "HIT", "SKIP", "--cache-engine", "--cache-ttl",
          "--cache-key-headers", "NOT part of the key", "--output", "docs/cache.md"}) {
        EXPECT_NE(out.find(text), std::string::npos) << text;
    }
}

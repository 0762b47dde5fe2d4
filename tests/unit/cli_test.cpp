#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/app.hpp"
#include "cli/options.hpp"

using namespace llm_proxy;

namespace {
int run(std::vector<std::string> args) {
    args.insert(args.begin(), "llm_proxy");
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    return cli::run_cli(static_cast<int>(argv.size()), argv.data());
}
}  // namespace

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
    EXPECT_EQ(run({"frobnicate"}), 2);
}
TEST(Cli, MissingSubcommandExits2) {
    EXPECT_EQ(run({}), 2);
}
TEST(Cli, BadFlagValueExits2) {
    EXPECT_EQ(run({"simple", "--threads", "many"}), 2);
    EXPECT_EQ(run({"simple", "--max-idle-upstream", "-1"}), 2);
    EXPECT_EQ(run({"--max-idle-upstream", "lots", "simple"}), 2);
}
TEST(Cli, UnknownFlagExits2) {
    EXPECT_EQ(run({"dir_logger", "--no-such-flag"}), 2);
}
TEST(Cli, BadListenExits2) {
    EXPECT_EQ(run({"simple", "--listen", "1.2.3.4:notaport"}), 2);
}
TEST(Cli, BadConnectToExits2) {
    EXPECT_EQ(run({"simple", "--connect-to", "nonsense"}), 2);
}
TEST(Cli, MissingUpstreamCaExits2) {
    EXPECT_EQ(run({"simple", "--upstream-ca", "/nonexistent/ca.pem"}), 2);
}
TEST(Cli, HelpAndVersionExit0) {
    testing::internal::CaptureStdout();
    EXPECT_EQ(run({"--help"}), 0);
    EXPECT_EQ(run({"version"}), 0);
    auto out = testing::internal::GetCapturedStdout();
    EXPECT_NE(out.find("dir_logger"), std::string::npos);
    EXPECT_NE(out.find("OpenSSL"), std::string::npos);
    EXPECT_NE(out.find("Boost 1.81"), std::string::npos);
}

TEST(Cli, CacheFlagsAreChecked) {
    EXPECT_EQ(run({"cache", "--cache-engine", "mongodb"}), 2);
    EXPECT_EQ(run({"cache", "--cache-ttl", "5 fortnights"}), 2);
    EXPECT_EQ(run({"cache", "--cache-ttl", "-5"}), 2);
    EXPECT_EQ(run({"cache", "--cache-max-bytes", "lots"}), 2);
    EXPECT_EQ(run({"cache", "--cache-max-entries", "-1"}), 2);
}

TEST(Cli, CacheHelpExplainsTheCache) {
    testing::internal::CaptureStdout();
    EXPECT_EQ(run({"cache", "--help"}), 0);
    auto out = testing::internal::GetCapturedStdout();
    for (const char* text :
         {"X-Llm_proxy-Cache", "MISS", "HIT", "SKIP", "--cache-engine", "--cache-ttl",
          "--cache-key-headers", "NOT part of the key", "--output", "docs/cache.md"}) {
        EXPECT_NE(out.find(text), std::string::npos) << text;
    }
}

// Selective interception: the host filter and the CLI flags that build it.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "cli_run.hpp"
#include "llm_proxy/proxy/host_patterns.hpp"

using namespace llm_proxy;
using cli::test::exits_2_with;
using cli::test::run_cli_captured;

namespace {

std::string filter_error(const cli::global_options& g) {
    try {
        (void)cli::make_host_filter(g);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

}  // namespace

TEST(HostFilter, DefaultInterceptsEverything) {
    host_filter f;
    EXPECT_TRUE(f.intercepts_everything());
    EXPECT_TRUE(f.intercept({"anything.example:443"}));
    // An empty pattern list means the same, whatever the mode.
    EXPECT_TRUE(host_filter(host_filter::mode::allow, {}, "--allow-hosts").intercepts_everything());
}

TEST(HostFilter, IgnoreSearchesHostPortCaseInsensitively) {
    host_filter f(host_filter::mode::ignore, {"example\\.com:443$", "^bank\\."}, "--ignore-hosts");
    EXPECT_FALSE(f.intercept({"www.EXAMPLE.com:443"}));
    EXPECT_TRUE(f.intercept({"www.example.com:8443"}));
    EXPECT_FALSE(f.intercept({"bank.test:443"}));
    EXPECT_TRUE(f.intercept({"mybank.test:443"}));
    // Any of the names (host:port, SNI) matching ignores the connection.
    EXPECT_FALSE(f.intercept({"10.0.0.1:443", "BANK.example"}));
}

TEST(HostFilter, AllowInterceptsOnlyMatches) {
    host_filter f(host_filter::mode::allow, {"openai"}, "--allow-hosts");
    EXPECT_TRUE(f.intercept({"api.openai.com:443"}));
    EXPECT_FALSE(f.intercept({"example.com:443"}));
    EXPECT_TRUE(f.intercept({"10.0.0.1:443", "api.OpenAI.com"}));
    EXPECT_FALSE(f.intercept({"10.0.0.1:443", ""}));
}

TEST(HostFilter, ExactHostsMatchWithOrWithoutPortOnly) {
    auto f = host_filter::allow_hosts_exactly({"api.openai.com", "::1"});
    EXPECT_TRUE(f.intercept({"api.openai.com:443"}));
    EXPECT_TRUE(f.intercept({"API.openai.com"}));
    EXPECT_FALSE(f.intercept({"xapi.openai.com:443"}));
    EXPECT_FALSE(f.intercept({"api.openai.com.evil.test:443"}));
    EXPECT_FALSE(f.intercept({"apixopenai.com:443"}));  // the dots are literal
    EXPECT_TRUE(f.intercept({"[::1]:8443"}));
}

TEST(HostFilter, BadRegexIsAClearError) {
    try {
        host_filter f(host_filter::mode::ignore, {"ok", "(unclosed"}, "--ignore-hosts");
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("--ignore-hosts: bad regular expression '(unclosed'"),
                  std::string::npos)
            << e.what();
    }
}

TEST(HostFilter, HostPortText) {
    EXPECT_EQ(host_port_text("example.com", 443), "example.com:443");
    EXPECT_EQ(host_port_text("::1", 8080), "[::1]:8080");
}

TEST(HostFilter, FlagsBuildTheFilter) {
    cli::global_options g;
    EXPECT_TRUE(cli::make_host_filter(g).intercepts_everything());
    g.ignore_hosts = {"example"};
    EXPECT_EQ(cli::make_host_filter(g).kind(), host_filter::mode::ignore);
    g.allow_hosts = {"openai"};
    EXPECT_EQ(filter_error(g),
              "--allow-hosts and --ignore-hosts cannot be combined (as in mitmproxy): give one");
    g.ignore_hosts.clear();
    EXPECT_EQ(cli::make_host_filter(g).kind(), host_filter::mode::allow);
    g.intercept = "llm";
    EXPECT_NE(filter_error(g).find("--intercept llm cannot be combined"), std::string::npos);
}

TEST(HostFilter, InterceptLlmAllowsKnownAndMappedHosts) {
    cli::global_options g;
    g.intercept = "llm";
    g.llm_hosts = {"gateway.internal:8443=openai", "Claude.Proxy=anthropic"};
    auto f = cli::make_host_filter(g);
    EXPECT_EQ(f.kind(), host_filter::mode::allow);
    for (const char* yes :
         {"api.openai.com:443", "api.anthropic.com:443", "generativelanguage.googleapis.com:443",
          "gateway.internal:8443", "claude.proxy:443"}) {
        EXPECT_TRUE(f.intercept({yes})) << yes;
    }
    for (const char* no : {"example.com:443", "openai.com:443", "api.openai.com.evil:443"}) {
        EXPECT_FALSE(f.intercept({no})) << no;
    }
}

TEST(HostFilter, CliErrorsExit2) {
    EXPECT_TRUE(exits_2_with({"--allow-hosts", "a", "--ignore-hosts", "b", "simple"},
                             "--allow-hosts and --ignore-hosts cannot be combined"));
    EXPECT_TRUE(exits_2_with({"--ignore-hosts", "([", "simple"},
                             "--ignore-hosts: bad regular expression '(['"));
    EXPECT_TRUE(
        exits_2_with({"--intercept", "some", "simple"}, "--intercept: some not in {all,llm}"));
    EXPECT_TRUE(exits_2_with({"--intercept", "llm", "--allow-hosts", "x", "simple"},
                             "--intercept llm cannot be combined with --allow-hosts"));
}

TEST(OpenBind, NonLoopbackNeedsAuthOrExplicitConsent) {
    cli::global_options g;
    g.ca_dir = "/tmp/ca";
    g.listen = "0.0.0.0:0";
    try {
        (void)cli::make_proxy_config(g);
        FAIL() << "an open proxy was configured";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("not a loopback address"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("--allow-open-proxy"), std::string::npos);
    }
    g.allow_open_proxy = true;
    EXPECT_NO_THROW((void)cli::make_proxy_config(g));
    g.allow_open_proxy = false;
    g.proxy_auth = {"user:secret"};
    EXPECT_TRUE(cli::make_proxy_config(g).proxy_auth.enabled());
    g.proxy_auth.clear();
    for (const char* loopback : {"127.0.0.1:0", "127.0.0.2:0", "[::1]:0", "localhost:0", "0"}) {
        g.listen = loopback;
        EXPECT_NO_THROW((void)cli::make_proxy_config(g)) << loopback;
    }
    for (const char* open : {":0", "[::]:0", "192.168.1.10:0"}) {
        g.listen = open;
        EXPECT_THROW((void)cli::make_proxy_config(g), std::invalid_argument) << open;
    }
    EXPECT_TRUE(exits_2_with({"--listen", "0.0.0.0:0", "simple"},
                             "--listen 0.0.0.0:0 is not a loopback address"));
}

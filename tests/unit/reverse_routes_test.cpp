// Reverse (base-URL) mode: parsing `--reverse [PREFIX=]URL` and matching origin-form targets.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/options.hpp"
#include "cli_run.hpp"
#include "llm_proxy/proxy/reverse_routes.hpp"
#include "support/temp_dir.hpp"

using namespace llm_proxy;
using cli::test::exits_2_with;
using cli::test::run_cli_captured;

namespace {

// The message parse_reverse_route throws for `text`, or "" when it accepts it.
std::string route_problem(const std::string& text) {
    try {
        parse_reverse_route(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

std::string target_of(const std::vector<reverse_route>& routes, std::string_view target) {
    auto m = match_reverse_route(routes, target);
    return m ? m->route->host + " " + m->target : "none";
}

}  // namespace

TEST(ReverseRoutes, ParsesAUrlWithoutPrefix) {
    auto r = parse_reverse_route("https://API.OpenAI.com");
    EXPECT_EQ(r.prefix, "");
    EXPECT_EQ(r.scheme, "https");
    EXPECT_EQ(r.host, "api.openai.com");
    EXPECT_EQ(r.port, 443);
    EXPECT_EQ(r.base_path, "");
}

TEST(ReverseRoutes, ParsesPrefixPortAndBasePath) {
    auto r = parse_reverse_route("/anthropic=http://127.0.0.1:9000/base/");
    EXPECT_EQ(r.prefix, "/anthropic");
    EXPECT_EQ(r.scheme, "http");
    EXPECT_EQ(r.host, "127.0.0.1");
    EXPECT_EQ(r.port, 9000);
    EXPECT_EQ(r.base_path, "/base");
    EXPECT_EQ(parse_reverse_route("/a/b/=https://x.test").prefix, "/a/b");
    EXPECT_EQ(parse_reverse_route("/=https://x.test").prefix, "");
    EXPECT_EQ(parse_reverse_route("http://x.test/").port, 80);
    auto v6 = parse_reverse_route("/v6=https://[::1]:8443/v1");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, 8443);
    EXPECT_EQ(v6.base_path, "/v1");
}

TEST(ReverseRoutes, RejectsBadRules) {
    EXPECT_NE(route_problem("api.openai.com").find("with a scheme"), std::string::npos);
    EXPECT_NE(route_problem("/openai=api.openai.com").find("with a scheme"), std::string::npos);
    EXPECT_NE(route_problem("ftp://files.test").find("unsupported scheme 'ftp'"),
              std::string::npos);
    EXPECT_NE(route_problem("openai=https://api.openai.com").find("must start with '/'"),
              std::string::npos);
    EXPECT_NE(route_problem("/a?b=https://x.test").find("may not contain"), std::string::npos);
    EXPECT_NE(route_problem("/a//b=https://x.test").find("empty path segment"), std::string::npos);
    EXPECT_NE(route_problem("https://user@x.test").find("user information"), std::string::npos);
    EXPECT_NE(route_problem("https://x.test/?a=b").find("query"), std::string::npos);
    EXPECT_NE(route_problem("https://x.test/#f").find("fragment"), std::string::npos);
    EXPECT_NE(route_problem("https://x.test:0").find("bad port"), std::string::npos);
    EXPECT_FALSE(route_problem("https:///path").empty());
    EXPECT_NE(route_problem("https://x.test:99999").find("bad port"), std::string::npos);
    EXPECT_NE(route_problem("https://x.test:").find("bad port"), std::string::npos);
    EXPECT_EQ(route_problem("https://x.test"), "");
}

TEST(ReverseRoutes, RejectsDuplicatePrefixes) {
    EXPECT_THROW(parse_reverse_routes({"/a=https://x.test", "/a/=https://y.test"}),
                 std::invalid_argument);
    EXPECT_THROW(parse_reverse_routes({"https://x.test", "https://y.test"}), std::invalid_argument);
    EXPECT_EQ(parse_reverse_routes({"https://x.test", "/a=https://y.test"}).size(), 2u);
}

TEST(ReverseRoutes, LongestPrefixOnASegmentBoundaryWins) {
    auto routes = parse_reverse_routes({"https://default.test", "/openai=https://openai.test",
                                        "/openai/v2=https://v2.test/base",
                                        "/anthropic=https://anthropic.test"});
    EXPECT_EQ(target_of(routes, "/openai/v1/chat/completions"), "openai.test /v1/chat/completions");
    EXPECT_EQ(target_of(routes, "/openai"), "openai.test /");
    EXPECT_EQ(target_of(routes, "/openai/"), "openai.test /");
    EXPECT_EQ(target_of(routes, "/openaix/v1"), "default.test /openaix/v1");
    EXPECT_EQ(target_of(routes, "/openai/v2/models"), "v2.test /base/models");
    EXPECT_EQ(target_of(routes, "/openai/v2"), "v2.test /base");
    EXPECT_EQ(target_of(routes, "/openai/v2x"), "openai.test /v2x");
    EXPECT_EQ(target_of(routes, "/anthropic/v1/messages"), "anthropic.test /v1/messages");
    EXPECT_EQ(target_of(routes, "/"), "default.test /");
}

TEST(ReverseRoutes, NoMatchWithoutACatchAllRule) {
    auto routes = parse_reverse_routes({"/openai=https://openai.test"});
    EXPECT_EQ(target_of(routes, "/v1/chat/completions"), "none");
    EXPECT_EQ(target_of(routes, "/openaix"), "none");
    EXPECT_EQ(target_of(routes, "/"), "none");
    EXPECT_EQ(target_of({}, "/v1"), "none");
}

TEST(ReverseRoutes, QueryStringsAreKept) {
    auto routes = parse_reverse_routes({"/g=https://g.test/v1beta", "https://o.test/base"});
    EXPECT_EQ(target_of(routes, "/g/models?key=abc&x=1"), "g.test /v1beta/models?key=abc&x=1");
    EXPECT_EQ(target_of(routes, "/g?alt=sse"), "g.test /v1beta?alt=sse");
    EXPECT_EQ(target_of(routes, "/v1/models?a=/g"), "o.test /base/v1/models?a=/g");
    EXPECT_EQ(target_of(parse_reverse_routes({"https://o.test"}), "/?q"), "o.test /?q");
}

TEST(ReverseRoutes, ProxyConfigGetsTheRules) {
    cli::global_options g;
    g.listen = "127.0.0.1:0";
    g.reverse = {"/openai=https://api.openai.com/v1"};
    g.reverse_forwarded_for = true;
    auto c = cli::make_proxy_config(g);
    ASSERT_EQ(c.reverse.size(), 1u);
    EXPECT_EQ(c.reverse[0].base_path, "/v1");
    EXPECT_TRUE(c.reverse_forwarded_for);
    EXPECT_FALSE(c.reverse_tls_cert);
}

TEST(ReverseRoutes, BadFlagsExit2) {
    EXPECT_TRUE(
        exits_2_with({"--reverse", "api.openai.com", "simple"}, "--reverse 'api.openai.com': "));
    EXPECT_TRUE(
        exits_2_with({"--reverse", "gopher://x.test", "simple"}, "unsupported scheme 'gopher'"));
    EXPECT_TRUE(exits_2_with({"--reverse", "openai=https://x.test", "simple"},
                             "--reverse 'openai=https://x.test': "));
    EXPECT_TRUE(
        exits_2_with({"--reverse", "/a=https://x.test", "--reverse", "/a=https://y.test", "simple"},
                     "is given twice"));
}

TEST(ReverseRoutes, TlsFilesGoTogetherAndMustBeReadable) {
    test::temp_dir dir{"reverse_tls"};
    auto pem = dir.write_file("cert.pem", "not really a certificate\n");
    EXPECT_TRUE(
        exits_2_with({"--reverse", "https://x.test", "--reverse-tls-cert", pem.string(), "simple"},
                     "--reverse-tls-cert and --reverse-tls-key go together"));
    EXPECT_TRUE(
        exits_2_with({"--reverse", "https://x.test", "--reverse-tls-key", pem.string(), "simple"},
                     "--reverse-tls-cert and --reverse-tls-key go together"));
    EXPECT_TRUE(exits_2_with({"--reverse", "https://x.test", "--reverse-tls-cert", pem.string(),
                              "--reverse-tls-key", (dir.path() / "missing.key").string(), "simple"},
                             "--reverse-tls-key: cannot read"));
}

// Reverse (base-URL) mode: parsing `--reverse [PREFIX=]URL` and matching origin-form targets.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/app.hpp"
#include "cli/options.hpp"
#include "llm_proxy/proxy/reverse_routes.hpp"
#include "support/temp_dir.hpp"

using namespace llm_proxy;

namespace {

// The message parse_reverse_route throws for `text`, or "" when it accepts it.
std::string rejection(const std::string& text) {
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

int run(std::vector<std::string> args) {
    args.insert(args.begin(), "llm_proxy");
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    return cli::run_cli(static_cast<int>(argv.size()), argv.data());
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
    EXPECT_NE(rejection("api.openai.com").find("with a scheme"), std::string::npos);
    EXPECT_NE(rejection("/openai=api.openai.com").find("with a scheme"), std::string::npos);
    EXPECT_NE(rejection("ftp://files.test").find("unsupported scheme 'ftp'"), std::string::npos);
    EXPECT_NE(rejection("openai=https://api.openai.com").find("must start with '/'"),
              std::string::npos);
    EXPECT_NE(rejection("/a?b=https://x.test").find("may not contain"), std::string::npos);
    EXPECT_NE(rejection("/a//b=https://x.test").find("empty path segment"), std::string::npos);
    EXPECT_NE(rejection("https://user@x.test").find("user information"), std::string::npos);
    EXPECT_NE(rejection("https://x.test/?a=b").find("query"), std::string::npos);
    EXPECT_NE(rejection("https://x.test/#f").find("fragment"), std::string::npos);
    EXPECT_NE(rejection("https://x.test:0").find("bad port"), std::string::npos);
    EXPECT_FALSE(rejection("https:///path").empty());
    EXPECT_NE(rejection("https://x.test:99999").find("bad port"), std::string::npos);
    EXPECT_NE(rejection("https://x.test:").find("bad port"), std::string::npos);
    EXPECT_EQ(rejection("https://x.test"), "");
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
    testing::internal::CaptureStderr();
    EXPECT_EQ(run({"--reverse", "api.openai.com", "simple"}), 2);
    EXPECT_EQ(run({"--reverse", "gopher://x.test", "simple"}), 2);
    EXPECT_EQ(run({"--reverse", "openai=https://x.test", "simple"}), 2);
    EXPECT_EQ(run({"--reverse", "/a=https://x.test", "--reverse", "/a=https://y.test", "simple"}),
              2);
    auto err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("unsupported scheme 'gopher'"), std::string::npos) << err;
    EXPECT_NE(err.find("is given twice"), std::string::npos) << err;
}

TEST(ReverseRoutes, TlsFilesGoTogetherAndMustBeReadable) {
    test::temp_dir dir{"reverse_tls"};
    auto pem = dir.write_file("cert.pem", "not really a certificate\n");
    testing::internal::CaptureStderr();
    EXPECT_EQ(run({"--reverse", "https://x.test", "--reverse-tls-cert", pem.string(), "simple"}),
              2);
    EXPECT_EQ(run({"--reverse", "https://x.test", "--reverse-tls-key", pem.string(), "simple"}), 2);
    EXPECT_EQ(run({"--reverse", "https://x.test", "--reverse-tls-cert", pem.string(),
                   "--reverse-tls-key", (dir.path() / "missing.key").string(), "simple"}),
              2);
    auto err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("go together"), std::string::npos) << err;
    EXPECT_NE(err.find("--reverse-tls-key: cannot read"), std::string::npos) << err;
}

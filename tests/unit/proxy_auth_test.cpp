// Proxy credentials: parsing, the Basic header, the credentials file.
#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "llm_proxy/proxy/proxy_auth.hpp"
#include "llm_proxy/util/text.hpp"
#include "support/temp_dir.hpp"

using namespace llm_proxy;

namespace {

std::string basic(std::string_view user_pass) {
    return "Basic " + base64_encode(user_pass);
}

std::string add_error(std::string_view text) {
    proxy_credentials c;
    try {
        c.add(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

std::string file_error(const std::filesystem::path& p) {
    proxy_credentials c;
    try {
        c.add_file(p);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

void write_file(const std::filesystem::path& p, std::string_view text) {
    std::ofstream(p) << text;
}

}  // namespace

TEST(BasicCredentials, Parse) {
    EXPECT_EQ(parse_basic_credentials(basic("alice:secret")), "alice:secret");
    EXPECT_EQ(parse_basic_credentials("basic " + base64_encode("a:b")), "a:b");
    EXPECT_EQ(parse_basic_credentials("BASIC   " + base64_encode("a:b:c") + " "), "a:b:c");
    EXPECT_EQ(parse_basic_credentials("Basic YTpi"), "a:b");  // no padding needed
    EXPECT_FALSE(parse_basic_credentials(""));
    EXPECT_FALSE(parse_basic_credentials("Basic"));
    EXPECT_FALSE(parse_basic_credentials("Bearer " + base64_encode("a:b")));
    EXPECT_FALSE(parse_basic_credentials("Basic " + base64_encode("no-colon")));
    EXPECT_FALSE(parse_basic_credentials("Basic not*base64!"));
    EXPECT_FALSE(parse_basic_credentials("Basicx" + base64_encode("a:b")));
}

TEST(ProxyCredentials, AcceptsOnlyTheGivenPairs) {
    proxy_credentials c;
    EXPECT_FALSE(c.enabled());
    c.add("alice:secret");
    c.add("bob:pa:ss");  // the password may hold ':'
    EXPECT_TRUE(c.enabled());
    EXPECT_EQ(c.size(), 2u);
    EXPECT_TRUE(c.accepts(basic("alice:secret")));
    EXPECT_TRUE(c.accepts(basic("bob:pa:ss")));
    EXPECT_FALSE(c.accepts(basic("alice:Secret")));
    EXPECT_FALSE(c.accepts(basic("alice:secret2")));
    EXPECT_FALSE(c.accepts(basic("alice:secre")));
    EXPECT_FALSE(c.accepts(basic("bob:secret")));
    EXPECT_FALSE(c.accepts(basic("alice:pa:ss")));
    EXPECT_FALSE(c.accepts(""));
    EXPECT_FALSE(c.accepts("Bearer x"));
}

TEST(ProxyCredentials, BadPairsAreClearErrors) {
    EXPECT_EQ(add_error("nocolon"), "--proxy-auth: expected USER:PASSWORD");
    EXPECT_EQ(add_error(":pass"), "--proxy-auth: the user name is empty");
    EXPECT_EQ(add_error("user:"), "--proxy-auth: the password is empty");
    EXPECT_NE(add_error("user:a\nb").find("control characters"), std::string::npos);
    EXPECT_EQ(add_error("user:pass"), "");
}

TEST(ProxyCredentials, FileWithCommentsAndBlankLines) {
    test::temp_dir dir{"proxy_auth"};
    auto p = dir.path() / "users";
    write_file(p, "# proxy users\n\nalice:secret\n  bob:two:parts  \r\n   # indented comment\n");
    proxy_credentials c;
    c.add_file(p);
    EXPECT_EQ(c.size(), 2u);
    EXPECT_TRUE(c.accepts(basic("alice:secret")));
    EXPECT_TRUE(c.accepts(basic("bob:two:parts")));
    EXPECT_FALSE(c.accepts(basic("# proxy users")));
}

TEST(ProxyCredentials, FileErrorsNameTheLine) {
    test::temp_dir dir{"proxy_auth"};
    auto p = dir.path() / "users";
    write_file(p, "alice:secret\n# fine\njustaname\n");
    EXPECT_EQ(file_error(p),
              "--proxy-auth-file: " + p.string() + " line 3: expected USER:PASSWORD");
    write_file(p, "alice:$2y$05$abcdefghijklmnopqrstuuJ0123456789abcdefghijklmnopqrstu\n");
    auto e = file_error(p);
    EXPECT_NE(e.find("line 1: hashed htpasswd passwords (bcrypt, apr1, SHA) are not supported"),
              std::string::npos)
        << e;
    EXPECT_EQ(e.find("abcdefghij"), std::string::npos) << "the hash is not echoed";
    write_file(p, "# only comments\n\n");
    EXPECT_NE(file_error(p).find("holds no user:password line"), std::string::npos);
    EXPECT_EQ(file_error(dir.path() / "missing"),
              "--proxy-auth-file: cannot read '" + (dir.path() / "missing").string() + "'");
}

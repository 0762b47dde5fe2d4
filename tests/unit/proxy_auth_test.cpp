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
    write_file(p, "alice:$apr1$abcdefgh$ijklmnopqrstuvwxyz0123\n");
    auto e = file_error(p);
    EXPECT_NE(e.find("line 1: htpasswd's apr1 and SHA hashes are not supported"), std::string::npos)
        << e;
    EXPECT_EQ(e.find("abcdefgh"), std::string::npos) << "the hash is not echoed";
    write_file(p, "alice:secret\nbob:$2y$05$abcdefghij\n");
    e = file_error(p);
    EXPECT_NE(e.find("line 2: the password hash is malformed"), std::string::npos) << e;
    EXPECT_EQ(e.find("abcdefghij"), std::string::npos) << "the hash is not echoed";
    write_file(p, "# only comments\n\n");
    EXPECT_NE(file_error(p).find("holds no user:password line"), std::string::npos);
    EXPECT_EQ(file_error(dir.path() / "missing"),
              "--proxy-auth-file: cannot read '" + (dir.path() / "missing").string() + "'");
}

// Hashes made with libxcrypt (Python's crypt module): bcrypt as `htpasswd -B` writes it (cost
// 4) and SHA-512-crypt, both of "s3cret w0rd".
TEST(ProxyCredentials, HashedHtpasswdLinesAreChecked) {
    test::temp_dir dir{"proxy_auth"};
    auto p = dir.path() / "users";
    write_file(p,
               "alice:$2b$04$Q3yy5L32q8aLmMd/7Z.QYOGCZx9.Rkm3lV7PQ.xLgbsLo89cdpWkm\n"
               "bob:$6$GEZNsVO535LkiFvr$RiUYSaCWcS6fZjTnGj0CfOl3MMVMtstzLyNhAPLHv8J1rz43LNJ279y."
               "lddwGBgpWhVYuKFcwMLimAu6e4onx.\n"
               "carol:plain\n");
    proxy_credentials c;
    c.add_file(p);
    EXPECT_TRUE(c.enabled());
    EXPECT_EQ(c.size(), 3u);
    // Twice each: the second answer comes from the remembered outcome and must agree.
    for (int round = 0; round < 2; ++round) {
        EXPECT_TRUE(c.accepts(basic("alice:s3cret w0rd"))) << round;
        EXPECT_TRUE(c.accepts(basic("bob:s3cret w0rd"))) << round;
        EXPECT_TRUE(c.accepts(basic("carol:plain"))) << round;
        EXPECT_FALSE(c.accepts(basic("alice:s3cret w0rD"))) << round;
        EXPECT_FALSE(c.accepts(basic("alice:"))) << round;
        EXPECT_FALSE(c.accepts(basic("bob:plain"))) << round;
        EXPECT_FALSE(c.accepts(basic("mallory:s3cret w0rd"))) << round;
        EXPECT_FALSE(c.accepts(basic("carol:s3cret w0rd"))) << round;
    }
    // A copy (the configuration is copied) answers the same.
    proxy_credentials copy = c;
    EXPECT_TRUE(copy.accepts(basic("alice:s3cret w0rd")));
    EXPECT_FALSE(copy.accepts(basic("alice:wrong")));
}

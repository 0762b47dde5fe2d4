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
    // crypt() reads C strings: a password with a NUL after the right one is refused, as it is
    // for a clear-text line (not checked only up to the NUL).
    using namespace std::string_literals;
    EXPECT_FALSE(c.accepts(basic("alice:s3cret w0rd\0anything"s)));
    EXPECT_FALSE(c.accepts(basic("bob:s3cret w0rd\0"s)));
    EXPECT_FALSE(c.accepts(basic("carol:plain\0x"s)));
    EXPECT_TRUE(c.accepts(basic("alice:s3cret w0rd")));
    // A copy (the configuration is copied) answers the same.
    proxy_credentials copy = c;
    EXPECT_TRUE(copy.accepts(basic("alice:s3cret w0rd")));
    EXPECT_FALSE(copy.accepts(basic("alice:wrong")));
}

// The remembered outcomes of crypt() checks are bounded: 1,024 accepted and 1,024 refused
// credentials (one bound, two lists; only the refused one is filled here: filling the accepted
// one takes 1,025 hashed lines, i.e. twice the crypt() calls, about 2 s). Up to the bound each is
// answered without crypt() afterwards (check_fast knows it); the next one is not remembered
// (check_fast says unknown) and accepts() still answers it correctly with crypt() again.
// SHA-512-crypt with its fewest rounds (1,000) keeps this fast.
namespace {
constexpr std::size_t remembered = 1024;
// crypt("pw", "$6$rounds=1000$saltsalt$"). Not SHA-256-crypt: libxcrypt calls "$5$" a legacy
// method, which add_file refuses.
constexpr const char* cheap_hash_of_pw =
    "$6$rounds=1000$saltsalt$nII71HJmawaDYdXrUHYtoWV/pe6ZN/"
    "eQzrZXdKjhrcMU0onLRg6A5m38udZu.lA6f53rIQturF4FMx1X99KF/0";
}  // namespace

TEST(ProxyCredentials, RefusedHashedCredentialsAreRememberedUpToTheBound) {
    test::temp_dir dir{"proxy_auth"};
    auto p = dir.path() / "users";
    write_file(p, std::string("alice:") + cheap_hash_of_pw + "\n");
    proxy_credentials c;
    c.add_file(p);
    auto wrong = [](std::size_t i) { return basic("alice:wrong-" + std::to_string(i)); };
    using verdict = proxy_credentials::verdict;
    for (std::size_t i = 1; i <= remembered + 1; ++i) {
        ASSERT_EQ(c.check_fast(wrong(i)), verdict::unknown) << i;
        ASSERT_FALSE(c.accepts(wrong(i))) << i;
    }
    EXPECT_EQ(c.check_fast(wrong(1)), verdict::refused);
    EXPECT_EQ(c.check_fast(wrong(remembered - 1)), verdict::refused);
    EXPECT_EQ(c.check_fast(wrong(remembered)), verdict::refused);
    EXPECT_EQ(c.check_fast(wrong(remembered + 1)), verdict::unknown);  // not remembered
    EXPECT_FALSE(c.accepts(wrong(remembered + 1)));                    // crypt() again
    EXPECT_EQ(c.check_fast(wrong(remembered + 1)), verdict::unknown);
    // The accepted list is separate: the right password is still checked and remembered.
    EXPECT_EQ(c.check_fast(basic("alice:pw")), verdict::unknown);
    EXPECT_TRUE(c.accepts(basic("alice:pw")));
    EXPECT_EQ(c.check_fast(basic("alice:pw")), verdict::accepted);
}

#include "llm_proxy/tls/certificate_authority.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace llm_proxy::tls {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class scratch_dir {
  public:
    scratch_dir() {
        std::string tmpl = (fs::path(testing::TempDir()) / "llm_proxy_ca_test.XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = tmpl;
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;

    const fs::path& path() const { return path_; }
    fs::path operator/(std::string_view name) const { return path_ / name; }

  private:
    fs::path path_;
};

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void write_file(const fs::path& p, std::string_view content) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
}

std::set<std::string> list_dir(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) {
        names.insert(e.path().filename().string());
    }
    return names;
}

unsigned file_mode(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

std::string der(X509* cert) {
    unsigned char* buf = nullptr;
    int len = i2d_X509(cert, &buf);
    std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(len));
    OPENSSL_free(buf);
    return out;
}

x509_ptr load_cert_pem(const fs::path& p) {
    std::string pem = read_file(p);
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    x509_ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    return cert;
}

std::string pem_of_key(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(len));
    BIO_free(bio);
    return out;
}

std::string pem_of_cert(X509* cert) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(len));
    BIO_free(bio);
    return out;
}

// A self-signed certificate for `key` whose basicConstraints extension appears twice: OpenSSL
// marks it invalid when it first looks at its extensions, and queues an error as it does.
std::string pem_of_cert_with_duplicate_extension(EVP_PKEY* key) {
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("dup"), -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    X509_set_pubkey(cert, key);
    for (int i = 0; i < 2; ++i) {
        X509_EXTENSION* ext =
            X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(cert, key, EVP_sha256());
    std::string out = pem_of_cert(cert);
    X509_free(cert);
    return out;
}

// The certificate's subjectAltName entries as "DNS:name" / "IP:address" strings.
std::vector<std::string> san_entries(X509* cert) {
    std::vector<std::string> out;
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
        GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_DNS) {
            const auto* s = gn->d.dNSName;
            out.push_back("DNS:" +
                          std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<std::size_t>(ASN1_STRING_length(s))));
        } else if (gn->type == GEN_IPADD) {
            const auto* s = gn->d.iPAddress;
            char buf[64] = {};
            int af = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
            inet_ntop(af, ASN1_STRING_get0_data(s), buf, sizeof buf);
            out.push_back(std::string("IP:") + buf);
        }
    }
    GENERAL_NAMES_free(names);
    return out;
}

std::string subject_cn(X509* cert) {
    char buf[256] = {};
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
}

// Verifies `leaf` against a store holding only `ca`, as a TLS client checking `host` would.
int verify_leaf(X509* leaf, X509* ca, const std::string& host) {
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, nullptr);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx);
    unsigned char ip[16];
    if (inet_pton(AF_INET, host.c_str(), ip) == 1 || inet_pton(AF_INET6, host.c_str(), ip) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
        X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -1 : err);
}

std::string error_of(const fs::path& dir) {
    try {
        certificate_authority::load_or_create(dir);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

TEST(certificate_authority, creates_mitmproxy_layout) {
    scratch_dir tmp;
    const fs::path dir = tmp / "ca";  // does not exist yet
    auto ca = certificate_authority::load_or_create(dir);
    ASSERT_NE(ca, nullptr);
    EXPECT_EQ(ca->origin(), ca_origin::created);
    EXPECT_EQ(ca->directory(), dir);
    EXPECT_EQ(ca->cert_pem_path(), dir / "mitmproxy-ca-cert.pem");

    EXPECT_EQ(list_dir(dir),
              (std::set<std::string>{"mitmproxy-ca.pem", "mitmproxy-ca-cert.pem",
                                     "mitmproxy-ca-cert.cer", "mitmproxy-ca-cert.p12"}));
    EXPECT_EQ(file_mode(dir), 0700u);
    EXPECT_EQ(file_mode(dir / "mitmproxy-ca.pem"), 0600u);
    EXPECT_EQ(file_mode(dir / "mitmproxy-ca-cert.pem"), 0644u);
    EXPECT_EQ(file_mode(dir / "mitmproxy-ca-cert.cer"), 0644u);
    EXPECT_EQ(file_mode(dir / "mitmproxy-ca-cert.p12"), 0644u);

    // Key first, then the certificate, as mitmproxy writes it.
    std::string combined = read_file(dir / "mitmproxy-ca.pem");
    EXPECT_EQ(combined.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
    EXPECT_NE(combined.find("-----BEGIN CERTIFICATE-----"), std::string::npos);
    EXPECT_EQ(read_file(dir / "mitmproxy-ca-cert.pem"), read_file(dir / "mitmproxy-ca-cert.cer"));
    EXPECT_EQ(read_file(dir / "mitmproxy-ca-cert.pem"), pem_of_cert(ca->cert()));
}

TEST(certificate_authority, created_ca_has_expected_properties) {
    scratch_dir tmp;
    auto ca = certificate_authority::load_or_create(tmp.path());
    X509* cert = ca->cert();
    EXPECT_EQ(EVP_PKEY_get_base_id(ca->key()), EVP_PKEY_RSA);
    EXPECT_EQ(EVP_PKEY_get_bits(ca->key()), 2048);
    EXPECT_EQ(X509_get_version(cert), X509_VERSION_3);
    EXPECT_EQ(subject_cn(cert), "llm_proxy CA");
    char org[64] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationName, org, sizeof org);
    EXPECT_STREQ(org, "llm_proxy");
    EXPECT_EQ(X509_check_ca(cert), 1);
    EXPECT_EQ(X509_check_private_key(cert, ca->key()), 1);
    EXPECT_NE(X509_get0_subject_key_id(cert), nullptr);
    EXPECT_TRUE(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN);
    EXPECT_TRUE(X509_get_key_usage(cert) & KU_CRL_SIGN);
    EXPECT_EQ(X509_get_signature_nid(cert), NID_sha256WithRSAEncryption);

    int crit = 0;
    auto* bc = static_cast<BASIC_CONSTRAINTS*>(
        X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr));
    ASSERT_NE(bc, nullptr);
    EXPECT_TRUE(bc->ca);
    EXPECT_EQ(crit, 1);
    BASIC_CONSTRAINTS_free(bc);

    // Backdated two days, valid for about ten years.
    int days = 0;
    int secs = 0;
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notBefore(cert)), 1);
    EXPECT_NEAR(days, -2, 1);
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)), 1);
    EXPECT_GE(days, 3650);
    EXPECT_LE(days, 3660);

    // Random serial of at most 20 octets, positive.
    BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
    EXPECT_EQ(BN_num_bits(serial), 159);
    EXPECT_FALSE(BN_is_negative(serial));
    BN_free(serial);
}

TEST(certificate_authority, p12_holds_only_the_certificate) {
    scratch_dir tmp;
    auto ca = certificate_authority::load_or_create(tmp.path());
    std::string data = read_file(tmp / "mitmproxy-ca-cert.p12");
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    PKCS12* p12 = d2i_PKCS12(nullptr, &p, static_cast<long>(data.size()));
    ASSERT_NE(p12, nullptr);
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    STACK_OF(X509)* others = nullptr;
    ASSERT_EQ(PKCS12_parse(p12, "", &key, &cert, &others), 1);
    EXPECT_EQ(key, nullptr);
    // Without a key, PKCS12_parse reports the certificate among the "other" certificates.
    X509* found = cert != nullptr ? cert : sk_X509_value(others, 0);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(sk_X509_num(others) + (cert != nullptr ? 1 : 0), 1);
    EXPECT_EQ(der(found), der(ca->cert()));
    const unsigned char* alias = X509_alias_get0(found, nullptr);
    ASSERT_NE(alias, nullptr);
    EXPECT_STREQ(reinterpret_cast<const char*>(alias), "llm_proxy");
    X509_free(cert);
    EVP_PKEY_free(key);
    sk_X509_pop_free(others, X509_free);
    PKCS12_free(p12);
}

TEST(certificate_authority, reload_gives_the_same_ca) {
    scratch_dir tmp;
    auto first = certificate_authority::load_or_create(tmp.path());
    auto files_before = list_dir(tmp.path());
    std::string combined_before = read_file(tmp / "mitmproxy-ca.pem");

    auto second = certificate_authority::load_or_create(tmp.path());
    EXPECT_EQ(second->origin(), ca_origin::loaded_mitmproxy_layout);
    EXPECT_EQ(der(second->cert()), der(first->cert()));
    EXPECT_EQ(EVP_PKEY_eq(second->key(), first->key()), 1);
    EXPECT_EQ(list_dir(tmp.path()), files_before);
    EXPECT_EQ(read_file(tmp / "mitmproxy-ca.pem"), combined_before);

    // A leaf minted by the reloaded CA verifies against the certificate clients already trust.
    auto leaf = second->leaf_for("example.com");
    x509_ptr trusted = load_cert_pem(tmp / "mitmproxy-ca-cert.pem");
    ASSERT_NE(trusted, nullptr);
    EXPECT_EQ(verify_leaf(leaf->cert.get(), trusted.get(), "example.com"), X509_V_OK);
}

TEST(certificate_authority, loads_mitmproxy_file_with_cert_before_key) {
    scratch_dir tmp;
    scratch_dir src;
    auto original = certificate_authority::load_or_create(src.path());
    write_file(tmp / "mitmproxy-ca.pem",
               pem_of_cert(original->cert()) + pem_of_key(original->key()));
    auto ca = certificate_authority::load_or_create(tmp.path());
    EXPECT_EQ(ca->origin(), ca_origin::loaded_mitmproxy_layout);
    EXPECT_EQ(der(ca->cert()), der(original->cert()));
    // The files clients import are restored when only the key file was copied.
    EXPECT_EQ(read_file(tmp / "mitmproxy-ca-cert.pem"), pem_of_cert(original->cert()));
    EXPECT_TRUE(fs::exists(tmp / "mitmproxy-ca-cert.p12"));
}

// Runs the README's openssl recipe; returns false when the openssl CLI is unavailable.
bool run_openssl_recipe(const fs::path& dir, bool traditional_key) {
    const std::string d = dir.string();
    std::string cmd = "cd '" + d + "' && openssl genrsa " +
                      (traditional_key ? std::string("-traditional ") : std::string()) +
                      "-out mitmproxy-ca-cert.key 2048 >/dev/null 2>&1 && "
                      "openssl req -x509 -new -nodes -key mitmproxy-ca-cert.key -sha256 -days "
                      "3650 -out mitmproxy-ca-cert.pem -subj /CN=x >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

TEST(certificate_authority, loads_openssl_recipe_and_writes_nothing) {
    for (bool traditional : {false, true}) {
        SCOPED_TRACE(traditional ? "traditional RSA key" : "PKCS#8 key");
        scratch_dir tmp;
        if (!run_openssl_recipe(tmp.path(), traditional)) {
            GTEST_SKIP() << "openssl CLI not available";
        }
        auto files_before = list_dir(tmp.path());
        std::string cert_before = read_file(tmp / "mitmproxy-ca-cert.pem");

        auto ca = certificate_authority::load_or_create(tmp.path());
        EXPECT_EQ(ca->origin(), ca_origin::loaded_openssl_recipe);
        EXPECT_EQ(subject_cn(ca->cert()), "x");
        EXPECT_EQ(list_dir(tmp.path()), files_before);
        EXPECT_EQ(read_file(tmp / "mitmproxy-ca-cert.pem"), cert_before);
        EXPECT_EQ(ca->cert_pem_path(), tmp / "mitmproxy-ca-cert.pem");

        auto leaf = ca->leaf_for("api.openai.com");
        EXPECT_EQ(verify_leaf(leaf->cert.get(), ca->cert(), "api.openai.com"), X509_V_OK);
    }
}

TEST(certificate_authority, corrupt_combined_file_names_the_file) {
    scratch_dir tmp;
    write_file(tmp / "mitmproxy-ca.pem", "this is not a PEM file\n");
    std::string msg = error_of(tmp.path());
    EXPECT_NE(msg.find((tmp / "mitmproxy-ca.pem").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("private key"), std::string::npos) << msg;
    // Nothing was overwritten or added.
    EXPECT_EQ(list_dir(tmp.path()), std::set<std::string>{"mitmproxy-ca.pem"});
}

TEST(certificate_authority, combined_file_without_certificate_is_an_error) {
    scratch_dir tmp;
    scratch_dir src;
    auto original = certificate_authority::load_or_create(src.path());
    write_file(tmp / "mitmproxy-ca.pem", pem_of_key(original->key()));
    std::string msg = error_of(tmp.path());
    EXPECT_NE(msg.find("mitmproxy-ca.pem"), std::string::npos) << msg;
    EXPECT_NE(msg.find("certificate"), std::string::npos) << msg;
}

TEST(certificate_authority, corrupt_recipe_certificate_names_the_file) {
    scratch_dir tmp;
    scratch_dir src;
    auto original = certificate_authority::load_or_create(src.path());
    write_file(tmp / "mitmproxy-ca-cert.key", pem_of_key(original->key()));
    write_file(tmp / "mitmproxy-ca-cert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
    std::string msg = error_of(tmp.path());
    EXPECT_NE(msg.find((tmp / "mitmproxy-ca-cert.pem").string()), std::string::npos) << msg;
}

TEST(certificate_authority, mismatched_key_is_an_error) {
    scratch_dir a;
    scratch_dir b;
    scratch_dir mixed;
    auto ca_a = certificate_authority::load_or_create(a.path());
    auto ca_b = certificate_authority::load_or_create(b.path());
    write_file(mixed / "mitmproxy-ca.pem", pem_of_key(ca_b->key()) + pem_of_cert(ca_a->cert()));
    std::string msg = error_of(mixed.path());
    EXPECT_NE(msg.find("mitmproxy-ca.pem"), std::string::npos) << msg;
    EXPECT_NE(msg.find("does not match"), std::string::npos) << msg;

    scratch_dir recipe;
    write_file(recipe / "mitmproxy-ca-cert.key", pem_of_key(ca_b->key()));
    write_file(recipe / "mitmproxy-ca-cert.pem", pem_of_cert(ca_a->cert()));
    msg = error_of(recipe.path());
    EXPECT_NE(msg.find("mitmproxy-ca-cert.key"), std::string::npos) << msg;
    EXPECT_NE(msg.find("does not match"), std::string::npos) << msg;
}

// Loading (whatever its outcome) and minting leave the thread's OpenSSL error queue empty: a
// stale entry would make the next SSL_get_error() on that thread misreport, and each entry
// holds memory until it is popped.
TEST(certificate_authority, leaves_the_openssl_error_queue_empty) {
    ERR_clear_error();
    scratch_dir good;
    auto ca = certificate_authority::load_or_create(good.path());
    EXPECT_EQ(ERR_peek_error(), 0u) << "after creating a CA";
    auto reloaded = certificate_authority::load_or_create(good.path());
    EXPECT_EQ(ERR_peek_error(), 0u) << "after loading a CA";
    reloaded->leaf_for("errors.example");
    EXPECT_EQ(ERR_peek_error(), 0u) << "after minting a leaf";

    scratch_dir other;
    auto ca_b = certificate_authority::load_or_create(other.path());
    const std::string key = pem_of_key(ca->key());
    const std::string cert = pem_of_cert(ca->cert());
    const std::vector<std::pair<std::string, std::string>> broken = {
        {"not PEM", "this is not a PEM file\n"},
        {"truncated key", key.substr(0, key.size() / 2)},
        {"key only", key},
        {"truncated certificate", key + cert.substr(0, cert.size() / 2)},
        {"certificate first, cut key", cert + key.substr(0, 200)},
        {"mismatched pair", pem_of_key(ca_b->key()) + cert},
        {"BEGIN and END that differ", "-----BEGIN RSA PRIVATE KEY-----\n" + key.substr(28, 400) +
                                          "\n-----END PRIVATE KEY-----\n"},
        {"no END line", "-----BEGIN RSA PRIVATE KEY-----\n" + key.substr(28, 400)},
        {"invalid extensions", key + pem_of_cert_with_duplicate_extension(ca->key())},
    };
    for (const auto& [what, content] : broken) {
        for (bool recipe : {false, true}) {
            scratch_dir dir;
            if (recipe) {  // the key file holds the certificate as well: only the key is read
                write_file(dir / "mitmproxy-ca-cert.key", content);
                write_file(dir / "mitmproxy-ca-cert.pem", content);
            } else {
                write_file(dir / "mitmproxy-ca.pem", content);
            }
            EXPECT_THROW(certificate_authority::load_or_create(dir.path()), std::runtime_error)
                << what;
            EXPECT_EQ(ERR_peek_error(), 0u)
                << "after a failed load (" << (recipe ? "recipe" : "combined") << "): " << what;
            ERR_clear_error();
        }
    }
    EXPECT_THROW(reloaded->leaf_for(""), std::runtime_error);
    EXPECT_EQ(ERR_peek_error(), 0u) << "after a refused host name";
}

TEST(certificate_authority, certificate_without_key_is_not_overwritten) {
    scratch_dir tmp;
    scratch_dir src;
    auto original = certificate_authority::load_or_create(src.path());
    write_file(tmp / "mitmproxy-ca-cert.pem", pem_of_cert(original->cert()));
    std::string msg = error_of(tmp.path());
    EXPECT_NE(msg.find("mitmproxy-ca-cert.pem"), std::string::npos) << msg;
    EXPECT_EQ(read_file(tmp / "mitmproxy-ca-cert.pem"), pem_of_cert(original->cert()));
}

TEST(certificate_authority, cannot_create_directory) {
    scratch_dir tmp;
    write_file(tmp / "plain_file", "x");
    const fs::path dir = tmp / "plain_file" / "ca";
    std::string msg = error_of(dir);
    EXPECT_NE(msg.find(dir.string()), std::string::npos) << msg;
}

TEST(certificate_authority, unreadable_file_names_the_file) {
    if (::geteuid() == 0) {
        GTEST_SKIP() << "root reads files regardless of their mode";
    }
    scratch_dir tmp;
    certificate_authority::load_or_create(tmp.path());
    fs::permissions(tmp / "mitmproxy-ca.pem", fs::perms::none);
    std::string msg = error_of(tmp.path());
    EXPECT_NE(msg.find("mitmproxy-ca.pem"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot read"), std::string::npos) << msg;
}

TEST(certificate_authority, combined_path_that_is_a_directory_is_an_error) {
    scratch_dir tmp;
    fs::create_directory(tmp / "mitmproxy-ca.pem");
    std::string msg = error_of(tmp.path());
    EXPECT_NE(msg.find("mitmproxy-ca.pem"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
}

// Minting tests share one CA: RSA key generation is the slow part and is covered above.
std::shared_ptr<certificate_authority> shared_ca() {
    static scratch_dir dir;
    static auto ca = certificate_authority::load_or_create(dir.path());
    return ca;
}

TEST(leaf_certificates, dns_leaf_verifies_against_the_ca) {
    auto ca = shared_ca();
    auto leaf = ca->leaf_for("api.openai.com");
    ASSERT_NE(leaf, nullptr);
    X509* cert = leaf->cert.get();
    EXPECT_EQ(leaf->host, "api.openai.com");
    EXPECT_EQ(leaf->key, ca->cached_leaf("api.openai.com")->key);
    EXPECT_EQ(san_entries(cert), std::vector<std::string>{"DNS:api.openai.com"});
    EXPECT_EQ(subject_cn(cert), "api.openai.com");
    EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca->cert())), 0);
    EXPECT_EQ(X509_check_private_key(cert, leaf->key), 1);
    EXPECT_EQ(EVP_PKEY_get_base_id(leaf->key), EVP_PKEY_EC);
    EXPECT_EQ(EVP_PKEY_get_bits(leaf->key), 256);
    EXPECT_EQ(X509_get_version(cert), X509_VERSION_3);
    EXPECT_EQ(X509_get_signature_nid(cert), NID_sha256WithRSAEncryption);
    EXPECT_EQ(X509_check_ca(cert), 0);
    EXPECT_TRUE(X509_get_extended_key_usage(cert) & XKU_SSL_SERVER);
    EXPECT_TRUE(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE);
    EXPECT_TRUE(X509_get_key_usage(cert) & KU_KEY_ENCIPHERMENT);
    EXPECT_NE(X509_get0_subject_key_id(cert), nullptr);
    ASSERT_NE(X509_get0_authority_key_id(cert), nullptr);
    EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert),
                                    X509_get0_subject_key_id(ca->cert())),
              0);

    EXPECT_EQ(verify_leaf(cert, ca->cert(), "api.openai.com"), X509_V_OK);
    EXPECT_EQ(verify_leaf(cert, ca->cert(), "evil.example"), X509_V_ERR_HOSTNAME_MISMATCH);

    // Validity: backdated two days and within the 398 days strict clients accept.
    int days = 0;
    int secs = 0;
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notBefore(cert)), 1);
    EXPECT_NEAR(days, -2, 1);
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert)), 1);
    EXPECT_NEAR(days, 365, 1);
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)), 1);
    EXPECT_LE(days, 398);
}

TEST(leaf_certificates, leaf_from_another_ca_does_not_verify) {
    scratch_dir other_dir;
    auto other = certificate_authority::load_or_create(other_dir.path());
    auto leaf = other->leaf_for("api.openai.com");
    EXPECT_NE(verify_leaf(leaf->cert.get(), shared_ca()->cert(), "api.openai.com"), X509_V_OK);
}

TEST(leaf_certificates, ip_literals_get_ip_sans) {
    auto ca = shared_ca();
    auto v4 = ca->leaf_for("127.0.0.1");
    EXPECT_EQ(san_entries(v4->cert.get()), std::vector<std::string>{"IP:127.0.0.1"});
    EXPECT_EQ(verify_leaf(v4->cert.get(), ca->cert(), "127.0.0.1"), X509_V_OK);
    EXPECT_EQ(verify_leaf(v4->cert.get(), ca->cert(), "127.0.0.2"), X509_V_ERR_IP_ADDRESS_MISMATCH);

    auto v6 = ca->leaf_for("::1");
    EXPECT_EQ(san_entries(v6->cert.get()), std::vector<std::string>{"IP:::1"});
    EXPECT_EQ(verify_leaf(v6->cert.get(), ca->cert(), "::1"), X509_V_OK);
    // A bracketed IPv6 host is the same host.
    EXPECT_EQ(ca->leaf_for("[::1]"), v6);
}

TEST(leaf_certificates, long_host_has_no_common_name) {
    auto ca = shared_ca();
    const std::string host = std::string(70, 'a') + ".example.com";
    auto leaf = ca->leaf_for(host);
    EXPECT_EQ(subject_cn(leaf->cert.get()), "");
    EXPECT_EQ(san_entries(leaf->cert.get()), std::vector<std::string>{"DNS:" + host});
    EXPECT_EQ(verify_leaf(leaf->cert.get(), ca->cert(), host), X509_V_OK);
}

TEST(leaf_certificates, host_with_separators_cannot_inject_names) {
    auto ca = shared_ca();
    auto leaf = ca->leaf_for("a.example,DNS:evil.example");
    EXPECT_EQ(san_entries(leaf->cert.get()),
              std::vector<std::string>{"DNS:a.example,dns:evil.example"});
    EXPECT_NE(verify_leaf(leaf->cert.get(), ca->cert(), "evil.example"), X509_V_OK);
}

TEST(leaf_certificates, empty_host_is_rejected) {
    EXPECT_THROW(shared_ca()->leaf_for(""), std::runtime_error);
}

TEST(leaf_certificates, serials_are_unique) {
    auto ca = shared_ca();
    auto a = ca->leaf_for("serial-a.example");
    auto b = ca->leaf_for("serial-b.example");
    EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(a->cert.get()),
                               X509_get0_serialNumber(b->cert.get())),
              0);
    // Every leaf shares the authority's one key.
    EXPECT_EQ(a->key, b->key);
}

TEST(leaf_cache, caches_per_lowercased_host) {
    auto ca = shared_ca();
    EXPECT_EQ(ca->cached_leaf("cache.example"), nullptr);
    auto first = ca->leaf_for("cache.example");
    EXPECT_EQ(ca->leaf_for("cache.example"), first);
    EXPECT_EQ(ca->leaf_for("Cache.EXAMPLE"), first);
    EXPECT_EQ(ca->cached_leaf("CACHE.example"), first);
    EXPECT_EQ(first->host, "cache.example");
}

TEST(leaf_cache, cached_leaf_never_mints) {
    scratch_dir tmp;
    auto ca = certificate_authority::load_or_create(tmp.path());
    EXPECT_EQ(ca->cached_leaf("nothing.example"), nullptr);
    EXPECT_EQ(ca->cached_leaf("nothing.example"), nullptr);
    EXPECT_EQ(ca->cache_size(), 0u);
}

TEST(leaf_cache, evicts_least_recently_used) {
    scratch_dir tmp;
    auto ca = certificate_authority::load_or_create(tmp.path());
    ca->set_cache_capacity(2);
    auto a = ca->leaf_for("a.example");
    auto b = ca->leaf_for("b.example");
    EXPECT_EQ(ca->cache_size(), 2u);
    EXPECT_EQ(ca->cached_leaf("a.example"), a);  // a is now the most recent
    auto c = ca->leaf_for("c.example");
    EXPECT_EQ(ca->cache_size(), 2u);
    EXPECT_EQ(ca->cached_leaf("b.example"), nullptr);
    EXPECT_EQ(ca->cached_leaf("a.example"), a);
    EXPECT_EQ(ca->cached_leaf("c.example"), c);
    // An evicted host is minted again, and the holder of the old leaf still has a valid one.
    auto b2 = ca->leaf_for("b.example");
    EXPECT_NE(b2, b);
    EXPECT_EQ(verify_leaf(b->cert.get(), ca->cert(), "b.example"), X509_V_OK);

    // Shrinking evicts immediately, keeping the most recent.
    ca->set_cache_capacity(1);
    EXPECT_EQ(ca->cache_size(), 1u);
    EXPECT_EQ(ca->cached_leaf("b.example"), b2);
}

bool same_serial(const leaf_certificate& a, const leaf_certificate& b) {
    return ASN1_INTEGER_cmp(X509_get0_serialNumber(a.cert.get()),
                            X509_get0_serialNumber(b.cert.get())) == 0;
}

// Capacity 3, filled to capacity - 1, capacity and capacity + 1 distinct hosts: the cache holds
// exactly 3 leaves, and the fourth host drops the least recently used one only.
TEST(leaf_cache, holds_exactly_capacity_leaves) {
    scratch_dir tmp;
    auto ca = certificate_authority::load_or_create(tmp.path());
    ca->set_cache_capacity(3);
    auto h0 = ca->leaf_for("h0.example");
    auto h1 = ca->leaf_for("h1.example");
    EXPECT_EQ(ca->cache_size(), 2u);  // capacity - 1
    auto h2 = ca->leaf_for("h2.example");
    EXPECT_EQ(ca->cache_size(), 3u);  // capacity: nothing dropped yet
    // Touched oldest first, so the recency order stays h2, h1, h0.
    EXPECT_EQ(ca->cached_leaf("h0.example"), h0);
    EXPECT_EQ(ca->cached_leaf("h1.example"), h1);
    EXPECT_EQ(ca->cached_leaf("h2.example"), h2);
    EXPECT_EQ(ca->leaf_for("h2.example"), h2);  // a cached host is not minted again
    EXPECT_EQ(ca->cache_size(), 3u);

    auto h3 = ca->leaf_for("h3.example");  // capacity + 1
    EXPECT_EQ(ca->cache_size(), 3u);
    EXPECT_EQ(ca->cached_leaf("h0.example"), nullptr);  // the least recently used
    EXPECT_EQ(ca->cached_leaf("h1.example"), h1);
    EXPECT_EQ(ca->cached_leaf("h2.example"), h2);
    EXPECT_EQ(ca->cached_leaf("h3.example"), h3);
    EXPECT_EQ(ca->cache_size(), 3u);

    // The dropped host gets a freshly minted leaf (a new certificate, a new serial), which
    // drops the now least recently used h1.
    auto h0_again = ca->leaf_for("h0.example");
    ASSERT_NE(h0_again, nullptr);
    EXPECT_NE(h0_again, h0);
    EXPECT_FALSE(same_serial(*h0_again, *h0));
    EXPECT_EQ(verify_leaf(h0_again->cert.get(), ca->cert(), "h0.example"), X509_V_OK);
    EXPECT_EQ(ca->cache_size(), 3u);
    EXPECT_EQ(ca->cached_leaf("h1.example"), nullptr);
    EXPECT_EQ(ca->cached_leaf("h2.example"), h2);
    EXPECT_EQ(ca->cached_leaf("h3.example"), h3);
    EXPECT_EQ(ca->cached_leaf("h0.example"), h0_again);
    EXPECT_TRUE(same_serial(*ca->leaf_for("h0.example"), *h0_again));
}

// LRU, not FIFO: using the oldest leaf (through leaf_for or cached_leaf) keeps it over a
// younger one that was not used.
TEST(leaf_cache, recently_used_host_is_kept_over_an_older_one) {
    for (bool through_leaf_for : {true, false}) {
        SCOPED_TRACE(through_leaf_for ? "leaf_for" : "cached_leaf");
        scratch_dir tmp;
        auto ca = certificate_authority::load_or_create(tmp.path());
        ca->set_cache_capacity(3);
        auto first = ca->leaf_for("first.example");
        auto second = ca->leaf_for("second.example");
        auto third = ca->leaf_for("third.example");
        auto used =
            through_leaf_for ? ca->leaf_for("first.example") : ca->cached_leaf("first.example");
        EXPECT_EQ(used, first);
        auto fourth = ca->leaf_for("fourth.example");
        EXPECT_EQ(ca->cache_size(), 3u);
        EXPECT_EQ(ca->cached_leaf("second.example"), nullptr);  // oldest use, not oldest mint
        auto fifth = ca->leaf_for("fifth.example");
        EXPECT_EQ(ca->cache_size(), 3u);
        EXPECT_EQ(ca->cached_leaf("third.example"), nullptr);
        EXPECT_EQ(ca->cached_leaf("first.example"), first);
        EXPECT_EQ(ca->cached_leaf("fourth.example"), fourth);
        EXPECT_EQ(ca->cached_leaf("fifth.example"), fifth);
    }
}

// Lowering the capacity evicts down to it at once, least recently used first; raising it
// mints nothing; a capacity of 0 still keeps one leaf.
TEST(leaf_cache, lowering_the_capacity_evicts_down_to_it) {
    scratch_dir tmp;
    auto ca = certificate_authority::load_or_create(tmp.path());
    ca->set_cache_capacity(4);
    auto a = ca->leaf_for("a.example");
    auto b = ca->leaf_for("b.example");
    auto c = ca->leaf_for("c.example");
    auto d = ca->leaf_for("d.example");
    EXPECT_EQ(ca->cached_leaf("a.example"), a);  // recency now: a, d, c, b
    EXPECT_EQ(ca->cache_size(), 4u);

    ca->set_cache_capacity(4);  // equal to the size: nothing dropped
    EXPECT_EQ(ca->cache_size(), 4u);
    ca->set_cache_capacity(3);  // one below the size
    EXPECT_EQ(ca->cache_size(), 3u);
    ca->set_cache_capacity(5);  // above the size: nothing minted, nothing dropped
    EXPECT_EQ(ca->cache_size(), 3u);
    EXPECT_EQ(ca->cached_leaf("b.example"), nullptr);
    // Touched in recency order (oldest first), so it stays c, d, a from the oldest.
    EXPECT_EQ(ca->cached_leaf("c.example"), c);
    EXPECT_EQ(ca->cached_leaf("d.example"), d);
    EXPECT_EQ(ca->cached_leaf("a.example"), a);

    ca->set_cache_capacity(2);
    EXPECT_EQ(ca->cache_size(), 2u);
    EXPECT_EQ(ca->cached_leaf("c.example"), nullptr);
    EXPECT_EQ(ca->cached_leaf("d.example"), d);
    EXPECT_EQ(ca->cached_leaf("a.example"), a);

    ca->set_cache_capacity(0);  // at least one entry stays
    EXPECT_EQ(ca->cache_size(), 1u);
    EXPECT_EQ(ca->cached_leaf("d.example"), nullptr);
    EXPECT_EQ(ca->cached_leaf("a.example"), a);
    auto e = ca->leaf_for("e.example");
    EXPECT_EQ(ca->cache_size(), 1u);
    EXPECT_EQ(ca->cached_leaf("e.example"), e);
    EXPECT_EQ(ca->cached_leaf("a.example"), nullptr);
}

TEST(leaf_cache, concurrent_requests_for_one_host_all_get_a_valid_leaf) {
    scratch_dir tmp;
    auto ca = certificate_authority::load_or_create(tmp.path());
    constexpr int thread_count = 8;
    std::vector<std::shared_ptr<const leaf_certificate>> leaves(thread_count);
    std::vector<std::thread> threads;
    for (int i = 0; i < thread_count; ++i) {
        threads.emplace_back([&, i] {
            // Half the threads race on one host, the others on distinct hosts.
            leaves[i] = ca->leaf_for(i % 2 == 0 ? "race.example" : "host" + std::to_string(i));
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    auto cached = ca->cached_leaf("race.example");
    ASSERT_NE(cached, nullptr);
    for (int i = 0; i < thread_count; ++i) {
        ASSERT_NE(leaves[i], nullptr);
        const std::string host = i % 2 == 0 ? "race.example" : "host" + std::to_string(i);
        EXPECT_EQ(verify_leaf(leaves[i]->cert.get(), ca->cert(), host), X509_V_OK) << host;
        if (i % 2 == 0) {
            // Losers of the race adopt the winner's leaf.
            EXPECT_EQ(leaves[i], cached);
        }
    }
    EXPECT_EQ(ca->cache_size(), 1u + thread_count / 2);
}

}  // namespace
}  // namespace llm_proxy::tls

#include "support/test_ca.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::test {

namespace {

template <class T, void (*Free)(T*)>
struct ossl_free {
    void operator()(T* p) const { Free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, ossl_free<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, ossl_free<X509, X509_free>>;
using bignum_ptr = std::unique_ptr<BIGNUM, ossl_free<BIGNUM, BN_free>>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, ossl_free<X509_EXTENSION, X509_EXTENSION_free>>;
using names_ptr = std::unique_ptr<GENERAL_NAMES, ossl_free<GENERAL_NAMES, GENERAL_NAMES_free>>;
using name_ptr = std::unique_ptr<GENERAL_NAME, ossl_free<GENERAL_NAME, GENERAL_NAME_free>>;
using bio_ptr = std::unique_ptr<BIO, ossl_free<BIO, BIO_free_all>>;

[[noreturn]] void fail(const std::string& what) {
    std::string msg = "make_test_pki: " + what;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        msg += "; ";
        msg += buf;
    }
    throw std::runtime_error(msg);
}

void check(bool ok, const char* what) {
    if (!ok) {
        fail(what);
    }
}

pkey_ptr generate_key(pki_key_type type) {
    EVP_PKEY* key = type == pki_key_type::rsa_2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    check(key != nullptr, "key generation");
    return pkey_ptr(key);
}

void set_serial(X509* cert) {
    unsigned char bytes[16];
    check(RAND_bytes(bytes, sizeof bytes) == 1, "RAND_bytes");
    bytes[0] &= 0x7f;  // positive
    bytes[0] |= 0x01;  // non-zero, full length
    bignum_ptr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
    check(bn != nullptr, "BN_bin2bn");
    check(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr, "serial");
}

void set_subject_cn(X509* cert, const std::string& cn) {
    X509_NAME* name = X509_get_subject_name(cert);
    check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>("llm_proxy tests"), -1,
                                     -1, 0) == 1,
          "subject O");
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                     0) == 1,
          "subject CN");
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    ext_ptr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    check(ext != nullptr, value);
    check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

x509_ptr new_cert(EVP_PKEY* key, long valid_days) {
    x509_ptr cert(X509_new());
    check(cert != nullptr, "X509_new");
    check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
    set_serial(cert.get());
    check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600) != nullptr, "notBefore");
    check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_days * 24L * 3600) != nullptr,
          "notAfter");
    check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
    return cert;
}

void write_key(const std::filesystem::path& file, EVP_PKEY* key) {
    bio_ptr bio(BIO_new_file(file.c_str(), "w"));
    check(bio != nullptr, ("cannot create " + file.string()).c_str());
    std::filesystem::permissions(
        file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
}

void write_cert(const std::filesystem::path& file, X509* cert) {
    bio_ptr bio(BIO_new_file(file.c_str(), "w"));
    check(bio != nullptr, ("cannot create " + file.string()).c_str());
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
}

void add_san(X509* cert, const std::vector<std::string>& dns_names,
             const std::vector<std::string>& ips) {
    names_ptr names(sk_GENERAL_NAME_new_null());
    check(names != nullptr, "sk_GENERAL_NAME_new_null");
    for (const auto& dns : dns_names) {
        name_ptr gn(GENERAL_NAME_new());
        ASN1_IA5STRING* str = ASN1_IA5STRING_new();
        check(gn && str, "GENERAL_NAME_new");
        if (ASN1_STRING_set(str, dns.data(), static_cast<int>(dns.size())) != 1) {
            ASN1_IA5STRING_free(str);
            fail("ASN1_STRING_set");
        }
        GENERAL_NAME_set0_value(gn.get(), GEN_DNS, str);
        check(sk_GENERAL_NAME_push(names.get(), gn.get()) > 0, "push SAN");
        gn.release();
    }
    for (const auto& ip : ips) {
        name_ptr gn(GENERAL_NAME_new());
        check(gn != nullptr, "GENERAL_NAME_new");
        ASN1_OCTET_STRING* addr = a2i_IPADDRESS(ip.c_str());
        check(addr != nullptr, ("bad IP address " + ip).c_str());
        GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, addr);
        check(sk_GENERAL_NAME_push(names.get(), gn.get()) > 0, "push SAN");
        gn.release();
    }
    if (sk_GENERAL_NAME_num(names.get()) > 0) {
        check(
            X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) == 1,
            "subjectAltName");
    }
}

}  // namespace

test_pki make_test_pki(const std::filesystem::path& dir, std::vector<std::string> dns_names,
                       std::vector<std::string> ips, pki_key_type key_type) {
    ERR_clear_error();
    std::filesystem::create_directories(dir);
    test_pki pki{dir / "ca.pem", dir / "ca.key", dir / "server.pem", dir / "server.key"};

    // CA.
    pkey_ptr ca_key = generate_key(key_type);
    x509_ptr ca = new_cert(ca_key.get(), 365);
    unsigned char tag[6];
    check(RAND_bytes(tag, sizeof tag) == 1, "RAND_bytes");
    std::string ca_cn = "llm_proxy test CA ";
    ca_cn += hex_encode(std::string_view(reinterpret_cast<const char*>(tag), sizeof tag));
    set_subject_cn(ca.get(), ca_cn);
    check(X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get())) == 1, "issuer");
    add_ext(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_ext(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    add_ext(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
    add_ext(ca.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
    check(X509_sign(ca.get(), ca_key.get(), EVP_sha256()) > 0, "sign CA");

    // Server.
    pkey_ptr server_key = generate_key(key_type);
    x509_ptr server = new_cert(server_key.get(), 30);
    std::string cn = !dns_names.empty() ? dns_names.front()
                     : !ips.empty()     ? ips.front()
                                        : std::string("llm_proxy test server");
    set_subject_cn(server.get(), cn);
    check(X509_set_issuer_name(server.get(), X509_get_subject_name(ca.get())) == 1, "issuer");
    add_ext(server.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_ext(server.get(), ca.get(), NID_key_usage,
            key_type == pki_key_type::rsa_2048 ? "critical,digitalSignature,keyEncipherment"
                                               : "critical,digitalSignature");
    add_ext(server.get(), ca.get(), NID_ext_key_usage, "serverAuth");
    add_ext(server.get(), ca.get(), NID_subject_key_identifier, "hash");
    add_ext(server.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
    add_san(server.get(), dns_names, ips);
    check(X509_sign(server.get(), ca_key.get(), EVP_sha256()) > 0, "sign server");

    write_cert(pki.ca_cert, ca.get());
    write_key(pki.ca_key, ca_key.get());
    write_cert(pki.server_cert, server.get());
    write_key(pki.server_key, server_key.get());
    return pki;
}

}  // namespace llm_proxy::test

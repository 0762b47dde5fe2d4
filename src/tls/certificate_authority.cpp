#include "llm_proxy/tls/certificate_authority.hpp"

#include "openssl_error.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "llm_proxy/util/files.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::tls {
namespace {

namespace fs = std::filesystem;

constexpr long seconds_per_day = 24 * 60 * 60;
// Clients whose clock is slightly behind must not see a "not yet valid" certificate.
constexpr long backdate_seconds = 2 * seconds_per_day;
constexpr int ca_validity_days = 3653;  // ten years, leap days included
// Apple (and the CA/B forum) reject TLS server certificates valid for more than 398 days.
constexpr int leaf_validity_days = 365;
// RFC 5280's upper bound for a commonName; longer names live in the SAN only.
constexpr std::size_t max_common_name_length = 64;

struct bio_deleter {
    void operator()(BIO* p) const { BIO_free(p); }
};
struct bn_deleter {
    void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ext_deleter {
    void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
struct general_names_deleter {
    void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
struct pkcs12_deleter {
    void operator()(PKCS12* p) const { PKCS12_free(p); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using bn_ptr = std::unique_ptr<BIGNUM, bn_deleter>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, ext_deleter>;
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, general_names_deleter>;
using pkcs12_ptr = std::unique_ptr<PKCS12, pkcs12_deleter>;

std::string display(const fs::path& p) {
    return p.string();
}

// A private key must not linger in freed heap memory longer than needed.
struct secret_string {
    std::string value;
    ~secret_string() {
        if (!value.empty()) {
            OPENSSL_cleanse(value.data(), value.size());
        }
    }
};

std::string read_whole_file(const fs::path& file) {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) {
        throw std::runtime_error(display(file) + ": not a regular file");
    }
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw std::runtime_error("cannot read " + display(file) + ": " + std::strerror(errno));
    }
    std::string data;
    // Sized up front so growing the string leaves no stray copies of a private key behind.
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
        data.reserve(static_cast<std::size_t>(st.st_size) + 1);
    }
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            int err = errno;
            ::close(fd);
            throw std::runtime_error("cannot read " + display(file) + ": " + std::strerror(err));
        }
        if (n == 0) {
            break;
        }
        data.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    OPENSSL_cleanse(buf, sizeof buf);
    return data;
}

// Through a temporary in the same directory, fsynced and renamed into place: a reader (or a
// crash) never sees half a CA, and the private key is never readable by others.
void write_file_atomically(const fs::path& file, std::string_view content, mode_t mode) {
    auto error = files::write_file_atomically(file, content, mode, files::durability::fsync);
    if (!error.empty()) {
        throw std::runtime_error(error);  // "cannot write <file>: <reason>"
    }
}

std::string bio_to_string(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(len));
}

// Refuses to prompt on the terminal for a passphrase: the proxy runs unattended.
int no_password_cb(char*, int, int, void* asked) {
    *static_cast<bool*>(asked) = true;
    return -1;
}

pkey_ptr parse_private_key(const std::string& pem, const fs::path& file) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) {
        throw_openssl("BIO_new_mem_buf");
    }
    bool asked_password = false;
    // PEM_read_bio_PrivateKey skips PEM blocks of other types, so the key may come before or
    // after the certificate, in PKCS#8 or traditional ("RSA PRIVATE KEY") form.
    pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password_cb, &asked_password));
    if (!key) {
        if (asked_password) {
            ERR_clear_error();
            throw std::runtime_error(display(file) +
                                     ": the private key is encrypted; llm_proxy needs an "
                                     "unencrypted key (e.g. openssl genrsa without -aes256)");
        }
        throw std::runtime_error(display(file) + ": no readable PEM private key (" +
                                 openssl_errors() + ")");
    }
    return key;
}

x509_ptr parse_certificate(const std::string& pem, const fs::path& file) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) {
        throw_openssl("BIO_new_mem_buf");
    }
    x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
        throw std::runtime_error(display(file) + ": no readable PEM certificate (" +
                                 openssl_errors() + ")");
    }
    return cert;
}

void check_ca_pair(X509* cert, EVP_PKEY* key, const std::string& where) {
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        throw std::runtime_error(
            where + ": the private key does not match the CA certificate's public key");
    }
    // X509_check_ca accepts CA:TRUE certificates and self-signed v1 ones; anything else would
    // mint leaves that no client can verify.
    if (X509_check_ca(cert) == 0) {
        throw std::runtime_error(where +
                                 ": the certificate is not a CA certificate (basicConstraints "
                                 "CA:TRUE is missing)");
    }
}

void set_random_serial(X509* cert) {
    // 159 random bits with the top bit set: positive, non-zero, and within the 20 octets
    // RFC 5280 allows, and unpredictable as the CA/B forum requires.
    bn_ptr bn(BN_new());
    if (!bn || BN_rand(bn.get(), 159, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1) {
        throw_openssl("cannot generate a certificate serial");
    }
    ASN1_INTEGER* serial = X509_get_serialNumber(cert);
    if (BN_to_ASN1_INTEGER(bn.get(), serial) == nullptr) {
        throw_openssl("cannot set the certificate serial");
    }
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    ext_ptr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
        throw_openssl(std::string("cannot add certificate extension ") + OBJ_nid2sn(nid) + "=" +
                      value);
    }
}

void add_name_entry(X509_NAME* name, const char* field, std::string_view value) {
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
        throw_openssl(std::string("cannot set certificate ") + field);
    }
}

// A v3 certificate with a random serial, valid from a little in the past (clock skew) for
// `validity_days`.
x509_ptr new_v3_certificate(int validity_days) {
    x509_ptr cert(X509_new());
    if (!cert) {
        throw_openssl("X509_new");
    }
    X509* c = cert.get();
    if (X509_set_version(c, X509_VERSION_3) != 1) {
        throw_openssl("X509_set_version");
    }
    set_random_serial(c);
    if (X509_gmtime_adj(X509_getm_notBefore(c), -backdate_seconds) == nullptr ||
        X509_time_adj_ex(X509_getm_notAfter(c), validity_days, 0, nullptr) == nullptr) {
        throw_openssl("cannot set the certificate validity");
    }
    return cert;
}

x509_ptr make_ca_certificate(EVP_PKEY* key) {
    x509_ptr cert = new_v3_certificate(ca_validity_days);
    X509* c = cert.get();
    X509_NAME* name = X509_get_subject_name(c);
    add_name_entry(name, "CN", "llm_proxy CA");
    add_name_entry(name, "O", "llm_proxy");
    if (X509_set_issuer_name(c, name) != 1 || X509_set_pubkey(c, key) != 1) {
        throw_openssl("cannot set the CA name or key");
    }
    add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    add_ext(c, c, NID_subject_key_identifier, "hash");
    if (X509_sign(c, key, EVP_sha256()) <= 0) {
        throw_openssl("cannot sign the CA certificate");
    }
    return cert;
}

std::string cert_to_pem(X509* cert) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
        throw_openssl("cannot encode the CA certificate");
    }
    return bio_to_string(bio.get());
}

std::string key_to_pem(EVP_PKEY* key) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    // PEM_write_bio_PrivateKey writes unencrypted PKCS#8 ("BEGIN PRIVATE KEY"), like mitmproxy.
    if (!bio ||
        PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        throw_openssl("cannot encode the CA private key");
    }
    return bio_to_string(bio.get());
}

std::string cert_to_p12(X509* cert) {
    // Certificate only, no key: this file is for importing the CA into trust stores (Windows,
    // macOS, Android). nid_cert = -1 leaves the certificate bag unencrypted like mitmproxy's,
    // which also keeps older importers that lack AES-based PKCS#12 support happy.
    char friendly_name[] = "llm_proxy";
    pkcs12_ptr p12(PKCS12_create("", friendly_name, nullptr, cert, nullptr, 0, -1, 0, 0, 0));
    if (!p12) {
        throw_openssl("cannot build the PKCS#12 CA file");
    }
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio || i2d_PKCS12_bio(bio.get(), p12.get()) != 1) {
        throw_openssl("cannot encode the PKCS#12 CA file");
    }
    return bio_to_string(bio.get());
}

// Files a trust store import needs; written (or rewritten) from the CA certificate.
void write_public_files(const fs::path& dir, X509* cert, bool only_missing) {
    std::string pem = cert_to_pem(cert);
    auto wanted = [&](std::string_view name) {
        std::error_code ec;
        return !only_missing || !fs::exists(dir / name, ec);
    };
    if (wanted(ca_cert_pem_file)) {
        write_file_atomically(dir / ca_cert_pem_file, pem, 0644);
    }
    // mitmproxy writes the very same PEM text under .cer (Android and Windows pick by suffix).
    if (wanted(ca_cert_cer_file)) {
        write_file_atomically(dir / ca_cert_cer_file, pem, 0644);
    }
    if (wanted(ca_cert_p12_file)) {
        write_file_atomically(dir / ca_cert_p12_file, cert_to_p12(cert), 0644);
    }
}

void ensure_directory(const fs::path& dir) {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) {
        return;  // the mode of an existing directory is left alone
    }
    // Parents as mkdir -p makes them (the umask decides); only the owner may list or add
    // files next to the CA key.
    std::string error;
    if (!dir.parent_path().empty()) {
        error = files::make_directories(dir.parent_path(), 0777);
    }
    if (error.empty()) {
        error = files::make_private_directory(dir, 0700);
    }
    if (!error.empty()) {
        throw std::runtime_error("cannot create CA directory " + display(dir) + ": " + error);
    }
}

// A dangling symlink counts as present, so reading it reports the problem instead of
// silently creating a new CA next to it.
bool present(const fs::path& p) {
    std::error_code ec;
    return fs::exists(p, ec) || fs::is_symlink(p, ec);
}

// The cache key and the name put in the certificate: lowercase, IPv6 brackets removed.
std::string normalize_host(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    return to_lower(host);
}

// Builds the SAN by hand rather than through X509V3_EXT_conf: a host containing ',' or ':'
// must not be able to inject extra names into the config string.
void add_subject_alt_name(X509* cert, const std::string& host) {
    general_names_ptr names(sk_GENERAL_NAME_new_null());
    GENERAL_NAME* gn = GENERAL_NAME_new();
    if (!names || gn == nullptr) {
        GENERAL_NAME_free(gn);
        throw_openssl("cannot build subjectAltName");
    }
    unsigned char addr[16];
    int addr_len = 0;
    if (inet_pton(AF_INET, host.c_str(), addr) == 1) {
        addr_len = 4;
    } else if (inet_pton(AF_INET6, host.c_str(), addr) == 1) {
        addr_len = 16;
    }
    bool ok = false;
    if (addr_len > 0) {
        ASN1_OCTET_STRING* ip = ASN1_OCTET_STRING_new();
        ok = ip != nullptr && ASN1_OCTET_STRING_set(ip, addr, addr_len) == 1;
        if (ok) {
            GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
        } else {
            ASN1_OCTET_STRING_free(ip);
        }
    } else {
        ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
        ok =
            dns != nullptr && ASN1_STRING_set(dns, host.data(), static_cast<int>(host.size())) == 1;
        if (ok) {
            GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
        } else {
            ASN1_IA5STRING_free(dns);
        }
    }
    if (!ok || sk_GENERAL_NAME_push(names.get(), gn) == 0) {
        GENERAL_NAME_free(gn);
        throw_openssl("cannot build subjectAltName for " + host);
    }
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
        throw_openssl("cannot add subjectAltName for " + host);
    }
}

}  // namespace

std::shared_ptr<certificate_authority> certificate_authority::load_or_create(
    const std::filesystem::path& dir) {
    const error_queue_scope clean_errors;
    std::shared_ptr<certificate_authority> ca(new certificate_authority());
    ca->dir_ = dir;
    const fs::path combined = dir / ca_key_and_cert_file;
    const fs::path recipe_key = dir / recipe_key_file;
    const fs::path cert_pem = dir / ca_cert_pem_file;

    if (present(combined)) {
        secret_string pem{read_whole_file(combined)};
        ca->key_ = parse_private_key(pem.value, combined);
        ca->cert_ = parse_certificate(pem.value, combined);
        check_ca_pair(ca->cert_.get(), ca->key_.get(), display(combined));
        ca->origin_ = ca_origin::loaded_mitmproxy_layout;
        // A directory copied with only mitmproxy-ca.pem still gets the files clients import.
        // Best effort: a read-only CA directory is a legitimate setup and must keep working.
        try {
            write_public_files(dir, ca->cert_.get(), /*only_missing=*/true);
        } catch (const std::runtime_error&) {
        }
    } else if (present(recipe_key) || present(cert_pem)) {
        // Creating a new CA here would overwrite a certificate clients may already trust, so
        // a half-present pair is an error rather than a reason to start over.
        if (!present(recipe_key)) {
            throw std::runtime_error(display(cert_pem) +
                                     " exists but its private key does not: expected " +
                                     display(combined) + " or " + display(recipe_key) +
                                     " (remove the certificate to create a new CA)");
        }
        if (!present(cert_pem)) {
            throw std::runtime_error(display(recipe_key) + " exists but " + display(cert_pem) +
                                     " (its certificate) does not");
        }
        secret_string key_pem{read_whole_file(recipe_key)};
        ca->key_ = parse_private_key(key_pem.value, recipe_key);
        ca->cert_ = parse_certificate(read_whole_file(cert_pem), cert_pem);
        check_ca_pair(ca->cert_.get(), ca->key_.get(),
                      display(recipe_key) + " and " + display(cert_pem));
        ca->origin_ = ca_origin::loaded_openssl_recipe;
    } else {
        ensure_directory(dir);
        ca->key_.reset(EVP_RSA_gen(2048));
        if (!ca->key_) {
            throw_openssl("cannot generate the CA's RSA key");
        }
        ca->cert_ = make_ca_certificate(ca->key_.get());
        // The key + cert file goes first: a run interrupted after it leaves a CA whose missing
        // public files the next start restores (a certificate without its key would be refused).
        const std::string cert_text = cert_to_pem(ca->cert_.get());
        secret_string key_pem{key_to_pem(ca->key_.get())};
        secret_string content;
        // Reserved up front so no reallocation leaves an uncleansed copy of the key behind.
        content.value.reserve(key_pem.value.size() + cert_text.size());
        content.value.append(key_pem.value).append(cert_text);
        write_file_atomically(combined, content.value, 0600);
        write_public_files(dir, ca->cert_.get(), /*only_missing=*/false);
        ca->origin_ = ca_origin::created;
    }

    // Computes the CA's cached extension data (SKI, flags) now, so concurrent mint() calls only
    // ever read the certificate.
    X509_check_purpose(ca->cert_.get(), -1, 0);

    // One leaf key for every host: an EC P-256 key costs microseconds to use and every TLS
    // client accepts it, and minting then only needs one CA signature.
    ca->leaf_key_.reset(EVP_EC_gen("P-256"));
    if (!ca->leaf_key_) {
        throw_openssl("cannot generate the leaf key");
    }
    return ca;
}

std::filesystem::path certificate_authority::cert_pem_path() const {
    return dir_ / ca_cert_pem_file;
}

std::shared_ptr<const leaf_certificate> certificate_authority::leaf_for(std::string_view host) {
    std::string key = normalize_host(host);
    if (auto hit = cached_leaf(key)) {
        return hit;
    }
    // Minting happens outside the lock: a signature takes a millisecond or so and other hosts
    // must not wait for it. Two threads may mint the same host; the loser adopts the winner's
    // leaf below, so everyone ends up sharing one certificate per host.
    auto leaf = mint(key);
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
        return it->second.leaf;
    }
    lru_.push_front(key);
    cache_.emplace(std::move(key), entry{leaf, lru_.begin()});
    while (cache_.size() > capacity_) {
        cache_.erase(lru_.back());
        lru_.pop_back();
    }
    return leaf;
}

std::shared_ptr<const leaf_certificate> certificate_authority::cached_leaf(std::string_view host) {
    std::string key = normalize_host(host);
    std::lock_guard lock(mutex_);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
        return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
    return it->second.leaf;
}

std::size_t certificate_authority::cache_size() const {
    std::lock_guard lock(mutex_);
    return cache_.size();
}

void certificate_authority::set_cache_capacity(std::size_t n) {
    std::lock_guard lock(mutex_);
    // At least one entry, so a leaf_for() followed by cached_leaf() for the same host still
    // finds it.
    capacity_ = std::max<std::size_t>(n, 1);
    while (cache_.size() > capacity_) {
        cache_.erase(lru_.back());
        lru_.pop_back();
    }
}

std::shared_ptr<const leaf_certificate> certificate_authority::mint(
    std::string_view host_in) const {
    const error_queue_scope clean_errors;  // minting runs on the proxy's TLS threads
    std::string host = normalize_host(host_in);
    if (host.empty()) {
        throw std::runtime_error("cannot mint a certificate for an empty host name");
    }
    if (host.find('\0') != std::string::npos) {
        throw std::runtime_error("cannot mint a certificate for a host name containing NUL");
    }
    x509_ptr cert = new_v3_certificate(leaf_validity_days);
    X509* c = cert.get();
    // A leaf outliving its CA would only confuse the error a client reports.
    if (ASN1_TIME_compare(X509_get0_notAfter(c), X509_get0_notAfter(cert_.get())) > 0 &&
        X509_set1_notAfter(c, X509_get0_notAfter(cert_.get())) != 1) {
        throw_openssl("cannot set the leaf validity");
    }
    if (X509_set_issuer_name(c, X509_get_subject_name(cert_.get())) != 1) {
        throw_openssl("cannot set the leaf issuer");
    }
    if (host.size() <= max_common_name_length) {
        add_name_entry(X509_get_subject_name(c), "CN", host);
    }
    if (X509_set_pubkey(c, leaf_key_.get()) != 1) {
        throw_openssl("cannot set the leaf key");
    }
    add_subject_alt_name(c, host);
    add_ext(c, cert_.get(), NID_basic_constraints, "CA:FALSE");
    add_ext(c, cert_.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(c, cert_.get(), NID_ext_key_usage, "serverAuth");
    add_ext(c, cert_.get(), NID_subject_key_identifier, "hash");
    // CAs made by the openssl recipe with a custom config may lack an SKI; fall back to
    // issuer name + serial so the AKI still identifies the CA.
    add_ext(c, cert_.get(), NID_authority_key_identifier,
            X509_get0_subject_key_id(cert_.get()) != nullptr ? "keyid:always" : "issuer:always");
    if (X509_sign(c, key_.get(), EVP_sha256()) <= 0) {
        throw_openssl("cannot sign the certificate for " + host);
    }
    auto leaf = std::make_shared<leaf_certificate>();
    leaf->cert = std::move(cert);
    leaf->key = leaf_key_.get();
    leaf->host = std::move(host);
    return leaf;
}

}  // namespace llm_proxy::tls

#pragma once
// The proxy's certificate authority: loads or creates the CA in --ca_dir (mitmproxy's file
// layout, or the openssl recipe's key + cert pair) and mints leaf certificates per host.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstddef>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace llm_proxy::tls {

struct x509_deleter {
    void operator()(X509* p) const { X509_free(p); }
};
struct pkey_deleter {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using x509_ptr = std::unique_ptr<X509, x509_deleter>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

// mitmproxy's file names, so an existing mitmproxy CA directory works as is.
inline constexpr std::string_view ca_key_and_cert_file = "mitmproxy-ca.pem";  // key + cert, 0600
inline constexpr std::string_view ca_cert_pem_file = "mitmproxy-ca-cert.pem";
inline constexpr std::string_view ca_cert_cer_file = "mitmproxy-ca-cert.cer";
inline constexpr std::string_view ca_cert_p12_file = "mitmproxy-ca-cert.p12";
// The original README's openssl recipe writes this key next to mitmproxy-ca-cert.pem.
inline constexpr std::string_view recipe_key_file = "mitmproxy-ca-cert.key";

enum class ca_origin { created, loaded_mitmproxy_layout, loaded_openssl_recipe };

struct leaf_certificate {
    x509_ptr cert;
    EVP_PKEY* key = nullptr;  // the CA's shared leaf key (owned by the authority)
    std::string host;
};

class certificate_authority {
  public:
    // Loads the CA from `dir`, creating the directory and a new CA when none exists.
    // Throws std::runtime_error with a message naming the file and the problem.
    static std::shared_ptr<certificate_authority> load_or_create(const std::filesystem::path& dir);

    X509* cert() const { return cert_.get(); }
    EVP_PKEY* key() const { return key_.get(); }
    ca_origin origin() const { return origin_; }
    const std::filesystem::path& directory() const { return dir_; }
    std::filesystem::path cert_pem_path() const;

    // The leaf for `host` (a DNS name or an IP literal, IPv6 without brackets), minted on
    // first use and cached (bounded LRU). Thread-safe. Minting costs a signature: call it
    // off the event loop when the host is not cached yet.
    std::shared_ptr<const leaf_certificate> leaf_for(std::string_view host);
    // The cached leaf or nullptr; never mints.
    std::shared_ptr<const leaf_certificate> cached_leaf(std::string_view host);

    std::size_t cache_size() const;
    void set_cache_capacity(std::size_t n);

  private:
    certificate_authority() = default;
    std::shared_ptr<const leaf_certificate> mint(std::string_view host) const;

    std::filesystem::path dir_;
    x509_ptr cert_;
    pkey_ptr key_;
    pkey_ptr leaf_key_;
    ca_origin origin_ = ca_origin::created;

    mutable std::mutex mutex_;
    std::size_t capacity_ = 10'000;
    std::list<std::string> lru_;  // most recent first
    struct entry {
        std::shared_ptr<const leaf_certificate> leaf;
        std::list<std::string>::iterator lru_pos;
    };
    std::unordered_map<std::string, entry> cache_;
};

}  // namespace llm_proxy::tls

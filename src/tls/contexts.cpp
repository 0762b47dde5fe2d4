#include "llm_proxy/tls/contexts.hpp"

#include "openssl_error.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::tls {
namespace {

namespace ssl = boost::asio::ssl;

// ALPN wire format: one length byte, then the protocol name.
constexpr unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// The SSL_CTX owns a heap copy of the authority's shared_ptr, freed with the context, so the
// SNI callback's raw pointer stays valid for as long as any connection can call it.
void free_ca_holder(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<std::shared_ptr<certificate_authority>*>(ptr);
}

int ca_holder_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_ca_holder);
    return index;
}

// Per connection: the host whose leaf use_leaf() installed, so the SNI callback can tell
// whether the name the client asked for is already covered.
void free_installed_host(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<std::string*>(ptr);
}

int installed_host_index() {
    static const int index =
        SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_installed_host);
    return index;
}

const std::string* installed_host(SSL* ssl) {
    return static_cast<const std::string*>(SSL_get_ex_data(ssl, installed_host_index()));
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    // The proxy speaks HTTP/1.1 to clients only. A client offering just h2 gets no ALPN
    // answer (NOACK) rather than a fatal alert; RFC 7540 clients then fall back to HTTP/1.1.
    for (unsigned int i = 0; i < inlen;) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen) {
            break;
        }
        if (len == alpn_http11[0] && std::memcmp(in + i + 1, alpn_http11 + 1, len) == 0) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int on_server_name(SSL* ssl, int* alert, void* arg) {
    auto* ca = static_cast<certificate_authority*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const std::string* installed = installed_host(ssl);
    if (name == nullptr || *name == '\0') {
        if (SSL_get_certificate(ssl) != nullptr) {
            return SSL_TLSEXT_ERR_OK;
        }
        // Without a name and without a prepared leaf there is nothing sensible to present.
        *alert = SSL_AD_HANDSHAKE_FAILURE;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (installed != nullptr && iequals(*installed, name)) {
        return SSL_TLSEXT_ERR_OK;
    }
    // The client asked for a name other than the CONNECT target (or nothing was prepared):
    // present a leaf for that name so the client's own host check passes. This may mint on
    // the calling thread; the engine normally prepares the leaf off the event loop.
    try {
        auto leaf = ca->leaf_for(name);
        use_leaf(ssl, *leaf, ca->cert());
        return SSL_TLSEXT_ERR_OK;
    } catch (const std::exception&) {
        ERR_clear_error();
        // Keep the prepared leaf if there is one: the client may still accept it (e.g. the
        // name differs only in a way minting rejected).
        if (SSL_get_certificate(ssl) != nullptr) {
            return SSL_TLSEXT_ERR_OK;
        }
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
}

bool is_ip_literal(const std::string& host) {
    unsigned char buf[16];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// What every server side of ours has: TLS 1.2 or later, HTTP/1.1 by ALPN, buffers released
// while idle (~34 KiB per connection back to the allocator).
std::unique_ptr<ssl::context> make_tls_server_context() {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::single_dh_use);
    SSL_CTX* native = ctx->native_handle();
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
        throw std::runtime_error("cannot set the minimum TLS version: " + openssl_errors());
    }
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
    return ctx;
}

}  // namespace

std::unique_ptr<boost::asio::ssl::context> make_server_context(
    std::shared_ptr<certificate_authority> ca) {
    if (!ca) {
        throw std::invalid_argument("make_server_context: no certificate authority");
    }
    auto ctx = make_tls_server_context();
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
    // Session resumption requires a session id context on the server side.
    static constexpr unsigned char session_id_context[] = "llm_proxy";
    SSL_CTX_set_session_id_context(native, session_id_context, sizeof session_id_context - 1);

    certificate_authority* raw = ca.get();
    auto* holder = new std::shared_ptr<certificate_authority>(std::move(ca));
    if (SSL_CTX_set_ex_data(native, ca_holder_index(), holder) != 1) {
        delete holder;
        throw std::runtime_error("cannot attach the CA to the TLS context: " + openssl_errors());
    }
    SSL_CTX_set_tlsext_servername_callback(native, on_server_name);
    SSL_CTX_set_tlsext_servername_arg(native, raw);
    return ctx;
}

std::unique_ptr<boost::asio::ssl::context> make_listener_context(
    const std::filesystem::path& cert_file, const std::filesystem::path& key_file) {
    auto ctx = make_tls_server_context();
    SSL_CTX* native = ctx->native_handle();
    if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1) {
        throw std::runtime_error("cannot load the certificate " + cert_file.string() + ": " +
                                 openssl_errors());
    }
    if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw std::runtime_error("cannot load the private key " + key_file.string() + ": " +
                                 openssl_errors());
    }
    if (SSL_CTX_check_private_key(native) != 1) {
        throw std::runtime_error("the key " + key_file.string() +
                                 " does not match the certificate " + cert_file.string() + ": " +
                                 openssl_errors());
    }
    return ctx;
}

void use_leaf(SSL* ssl, const leaf_certificate& leaf, X509* ca_cert) {
    if (SSL_use_certificate(ssl, leaf.cert.get()) != 1 || SSL_use_PrivateKey(ssl, leaf.key) != 1) {
        throw std::runtime_error("cannot install the certificate for " + leaf.host + ": " +
                                 openssl_errors());
    }
    // set1 (not add1) replaces the chain, so the SNI callback installing a second leaf on the
    // same connection does not send the CA twice.
    STACK_OF(X509)* chain = sk_X509_new_null();
    if (chain == nullptr || sk_X509_push(chain, ca_cert) == 0 || SSL_set1_chain(ssl, chain) != 1) {
        sk_X509_free(chain);
        throw std::runtime_error("cannot install the CA chain for " + leaf.host + ": " +
                                 openssl_errors());
    }
    sk_X509_free(chain);  // SSL_set1_chain took its own references

    auto* host = new std::string(leaf.host);
    delete static_cast<std::string*>(SSL_get_ex_data(ssl, installed_host_index()));
    if (SSL_set_ex_data(ssl, installed_host_index(), host) != 1) {
        delete host;
        SSL_set_ex_data(ssl, installed_host_index(), nullptr);
        throw std::runtime_error("cannot record the installed certificate: " + openssl_errors());
    }
}

std::unique_ptr<boost::asio::ssl::context> make_upstream_context(
    bool skip_verify, const std::optional<std::filesystem::path>& extra_ca) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3);
    boost::system::error_code ec;
    ctx->set_default_verify_paths(ec);
    if (ec) {
        throw std::runtime_error("cannot load the system's trusted CA certificates: " +
                                 ec.message());
    }
    if (extra_ca) {
        const std::string file = extra_ca->string();
        std::error_code fec;
        if (!std::filesystem::is_regular_file(*extra_ca, fec)) {
            throw std::runtime_error(
                "cannot load --upstream-ca " + file + ": " +
                (std::filesystem::exists(*extra_ca, fec) ? "not a regular file" : "no such file"));
        }
        // Loads every certificate in the file, in addition to the system store.
        ctx->load_verify_file(file, ec);
        if (ec) {
            ERR_clear_error();
            throw std::runtime_error("cannot load --upstream-ca " + file + ": " + ec.message());
        }
    }
    ctx->set_verify_mode(skip_verify ? ssl::verify_none : ssl::verify_peer);
    SSL_CTX* native = ctx->native_handle();
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
        throw std::runtime_error("cannot set the minimum TLS version: " + openssl_errors());
    }
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);  // as on the client side
    // Note the inverted convention: SSL_CTX_set_alpn_protos returns 0 on success.
    if (SSL_CTX_set_alpn_protos(native, alpn_http11, sizeof alpn_http11) != 0) {
        throw std::runtime_error("cannot set ALPN: " + openssl_errors());
    }
    return ctx;
}

void prepare_upstream_ssl(SSL* ssl, const std::string& host_in, bool verify) {
    std::string host = host_in;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    const bool ip = is_ip_literal(host);
    // RFC 6066 forbids IP literals in SNI; some servers reject the handshake if sent one.
    if (!ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
        throw std::runtime_error("cannot set SNI " + host + ": " + openssl_errors());
    }
    if (!verify) {
        // Keeps the connection consistent with the caller's choice even if the context verifies.
        SSL_set_verify(ssl, SSL_VERIFY_NONE, SSL_get_verify_callback(ssl));
        return;
    }
    if (ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
            throw std::runtime_error("cannot verify IP address " + host + ": " + openssl_errors());
        }
    } else {
        // Partial wildcards ("a*.example.com") are not valid for public certificates.
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(ssl, host.c_str()) != 1) {
            throw std::runtime_error("cannot verify host name " + host + ": " + openssl_errors());
        }
    }
}

}  // namespace llm_proxy::tls

#pragma once
// OpenSSL contexts: the server side presented to clients (leaf per host, ALPN http/1.1)
// and the client side used towards upstream servers (verification, SNI, TLS 1.2+).

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <optional>

#include "llm_proxy/tls/certificate_authority.hpp"

namespace llm_proxy::tls {

// Server context for intercepted connections: TLS 1.2+, ALPN selects "http/1.1", and an SNI
// callback that installs the leaf for the requested name (minting inline only when the name
// was not prepared beforehand with use_leaf()).
std::unique_ptr<boost::asio::ssl::context> make_server_context(
    std::shared_ptr<certificate_authority> ca);

// Server context for the listener itself (reverse mode over TLS): a fixed certificate chain
// and key from PEM files, TLS 1.2+, ALPN "http/1.1". Throws std::runtime_error.
std::unique_ptr<boost::asio::ssl::context> make_listener_context(
    const std::filesystem::path& cert_file, const std::filesystem::path& key_file);

// Installs `leaf` (plus the CA as chain) on one connection before its handshake.
void use_leaf(SSL* ssl, const leaf_certificate& leaf, X509* ca_cert);

// Client context for upstream connections: system trust store plus `extra_ca` (PEM bundle),
// peer verification on unless `skip_verify`, TLS 1.2 minimum, ALPN offers "http/1.1".
// Throws std::runtime_error if extra_ca cannot be loaded.
std::unique_ptr<boost::asio::ssl::context> make_upstream_context(
    bool skip_verify, const std::optional<std::filesystem::path>& extra_ca);

// Prepares one upstream connection: SNI (unless `host` is an IP literal) and host-name /
// IP verification against `host`.
void prepare_upstream_ssl(SSL* ssl, const std::string& host, bool verify);

}  // namespace llm_proxy::tls

#include "llm_proxy/tls/contexts.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "llm_proxy/tls/certificate_authority.hpp"

namespace llm_proxy::tls {
namespace {

namespace fs = std::filesystem;

class scratch_dir {
  public:
    scratch_dir() {
        std::string tmpl = (fs::path(testing::TempDir()) / "llm_proxy_tls_test.XXXXXX").string();
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

struct ssl_deleter {
    void operator()(SSL* p) const { SSL_free(p); }
};
using ssl_ptr = std::unique_ptr<SSL, ssl_deleter>;

// Both ends of one in-memory TLS connection: each side reads what the other wrote.
struct connection {
    ssl_ptr client;
    ssl_ptr server;

    connection(SSL_CTX* client_ctx, SSL_CTX* server_ctx)
        : client(SSL_new(client_ctx)), server(SSL_new(server_ctx)) {
        BIO* to_server = BIO_new(BIO_s_mem());
        BIO* to_client = BIO_new(BIO_s_mem());
        // An empty memory BIO means "try again later", not end of file.
        BIO_set_mem_eof_return(to_server, -1);
        BIO_set_mem_eof_return(to_client, -1);
        // Each BIO is owned by both SSL objects, one reference each.
        BIO_up_ref(to_server);
        BIO_up_ref(to_client);
        SSL_set_bio(client.get(), to_client, to_server);
        SSL_set_bio(server.get(), to_server, to_client);
        SSL_set_connect_state(client.get());
        SSL_set_accept_state(server.get());
    }

    // Steps both sides until both finish or one fails. Deterministic: no sockets, no threads.
    bool handshake() {
        bool client_done = false;
        bool server_done = false;
        for (int round = 0; round < 50 && !(client_done && server_done); ++round) {
            if (!client_done && !step(client.get(), client_done)) {
                return false;
            }
            if (!server_done && !step(server.get(), server_done)) {
                return false;
            }
        }
        return client_done && server_done;
    }

    std::string alpn() const {
        const unsigned char* data = nullptr;
        unsigned int len = 0;
        SSL_get0_alpn_selected(client.get(), &data, &len);
        return std::string(reinterpret_cast<const char*>(data), len);
    }

    // The leaf certificate the server presented, as the client saw it.
    std::string peer_san() const {
        X509* peer = SSL_get0_peer_certificate(client.get());
        if (peer == nullptr) {
            return "";
        }
        auto* names = static_cast<GENERAL_NAMES*>(
            X509_get_ext_d2i(peer, NID_subject_alt_name, nullptr, nullptr));
        std::string out;
        if (sk_GENERAL_NAME_num(names) > 0) {
            GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, 0);
            if (gn->type == GEN_DNS) {
                out = reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName));
            }
        }
        GENERAL_NAMES_free(names);
        return out;
    }

  private:
    static bool step(SSL* ssl, bool& done) {
        int rc = SSL_do_handshake(ssl);
        if (rc == 1) {
            done = true;
            return true;
        }
        int err = SSL_get_error(ssl, rc);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            return true;
        }
        ERR_clear_error();
        return false;
    }
};

// One CA for the whole file: generating its RSA key is the slow part.
struct fixture {
    scratch_dir dir;
    std::shared_ptr<certificate_authority> ca = certificate_authority::load_or_create(dir.path());
};

fixture& shared() {
    static fixture f;
    return f;
}

class tls_contexts : public testing::Test {
  protected:
    std::shared_ptr<certificate_authority> ca = shared().ca;
    std::unique_ptr<boost::asio::ssl::context> server = make_server_context(ca);
    // The upstream context with --upstream-ca pointing at our CA is exactly a client that
    // trusts the proxy's CA.
    std::unique_ptr<boost::asio::ssl::context> client =
        make_upstream_context(false, ca->cert_pem_path());
};

TEST_F(tls_contexts, sni_mints_the_leaf_and_alpn_picks_http11) {
    connection conn(client->native_handle(), server->native_handle());
    prepare_upstream_ssl(conn.client.get(), "sni-minted.example", true);
    ASSERT_TRUE(conn.handshake());
    EXPECT_EQ(SSL_get_verify_result(conn.client.get()), X509_V_OK);
    EXPECT_EQ(conn.alpn(), "http/1.1");
    EXPECT_EQ(conn.peer_san(), "sni-minted.example");
    EXPECT_NE(ca->cached_leaf("sni-minted.example"), nullptr);
    EXPECT_GE(SSL_version(conn.client.get()), TLS1_2_VERSION);
}

TEST_F(tls_contexts, prepared_leaf_is_presented_without_minting_again) {
    auto leaf = ca->leaf_for("api.openai.com");
    connection conn(client->native_handle(), server->native_handle());
    use_leaf(conn.server.get(), *leaf, ca->cert());
    prepare_upstream_ssl(conn.client.get(), "API.OpenAI.com", true);
    ASSERT_TRUE(conn.handshake());
    EXPECT_EQ(SSL_get_verify_result(conn.client.get()), X509_V_OK);
    // The very certificate object the cache holds was sent.
    EXPECT_EQ(X509_cmp(SSL_get0_peer_certificate(conn.client.get()), leaf->cert.get()), 0);
    // The CA travelled as the chain.
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(conn.client.get());
    ASSERT_NE(chain, nullptr);
    ASSERT_EQ(sk_X509_num(chain), 2);
    EXPECT_EQ(X509_cmp(sk_X509_value(chain, 1), ca->cert()), 0);
}

TEST_F(tls_contexts, sni_for_another_name_replaces_the_prepared_leaf) {
    auto prepared = ca->leaf_for("connect-target.example");
    connection conn(client->native_handle(), server->native_handle());
    use_leaf(conn.server.get(), *prepared, ca->cert());
    prepare_upstream_ssl(conn.client.get(), "other-sni.example", true);
    ASSERT_TRUE(conn.handshake());
    EXPECT_EQ(SSL_get_verify_result(conn.client.get()), X509_V_OK);
    EXPECT_EQ(conn.peer_san(), "other-sni.example");
    // The chain was replaced, not appended to.
    EXPECT_EQ(sk_X509_num(SSL_get_peer_cert_chain(conn.client.get())), 2);
}

TEST_F(tls_contexts, client_verifying_another_host_fails) {
    auto leaf = ca->leaf_for("api.openai.com");
    connection conn(client->native_handle(), server->native_handle());
    use_leaf(conn.server.get(), *leaf, ca->cert());
    SSL_set_tlsext_host_name(conn.client.get(), "api.openai.com");
    ASSERT_EQ(SSL_set1_host(conn.client.get(), "evil.example"), 1);
    EXPECT_FALSE(conn.handshake());
    EXPECT_EQ(SSL_get_verify_result(conn.client.get()), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(tls_contexts, ip_literal_without_sni_uses_the_prepared_leaf) {
    auto leaf = ca->leaf_for("127.0.0.1");
    connection conn(client->native_handle(), server->native_handle());
    use_leaf(conn.server.get(), *leaf, ca->cert());
    prepare_upstream_ssl(conn.client.get(), "127.0.0.1", true);
    ASSERT_TRUE(conn.handshake());
    EXPECT_EQ(SSL_get_servername(conn.server.get(), TLSEXT_NAMETYPE_host_name), nullptr);
    EXPECT_EQ(SSL_get_verify_result(conn.client.get()), X509_V_OK);
}

TEST_F(tls_contexts, ip_mismatch_fails) {
    auto leaf = ca->leaf_for("127.0.0.2");
    connection conn(client->native_handle(), server->native_handle());
    use_leaf(conn.server.get(), *leaf, ca->cert());
    prepare_upstream_ssl(conn.client.get(), "127.0.0.1", true);
    EXPECT_FALSE(conn.handshake());
    EXPECT_EQ(SSL_get_verify_result(conn.client.get()), X509_V_ERR_IP_ADDRESS_MISMATCH);
}

TEST_F(tls_contexts, no_sni_and_no_leaf_fails_cleanly) {
    connection conn(client->native_handle(), server->native_handle());
    prepare_upstream_ssl(conn.client.get(), "::1", false);  // IP literal: no SNI sent
    EXPECT_FALSE(conn.handshake());
}

TEST_F(tls_contexts, client_offering_only_h2_gets_no_alpn) {
    static constexpr unsigned char h2_only[] = {2, 'h', '2'};
    connection conn(client->native_handle(), server->native_handle());
    ASSERT_EQ(SSL_set_alpn_protos(conn.client.get(), h2_only, sizeof h2_only), 0);
    prepare_upstream_ssl(conn.client.get(), "h2.example", true);
    ASSERT_TRUE(conn.handshake());
    EXPECT_EQ(conn.alpn(), "");
}

TEST_F(tls_contexts, client_offering_h2_and_http11_gets_http11) {
    static constexpr unsigned char both[] = {2,   'h', '2', 8,   'h', 't',
                                             't', 'p', '/', '1', '.', '1'};
    connection conn(client->native_handle(), server->native_handle());
    ASSERT_EQ(SSL_set_alpn_protos(conn.client.get(), both, sizeof both), 0);
    prepare_upstream_ssl(conn.client.get(), "both.example", true);
    ASSERT_TRUE(conn.handshake());
    EXPECT_EQ(conn.alpn(), "http/1.1");
}

TEST_F(tls_contexts, server_refuses_tls11) {
    EXPECT_EQ(SSL_CTX_get_min_proto_version(server->native_handle()), TLS1_2_VERSION);
    EXPECT_EQ(SSL_CTX_get_min_proto_version(client->native_handle()), TLS1_2_VERSION);
    connection conn(client->native_handle(), server->native_handle());
    SSL_set_min_proto_version(conn.client.get(), TLS1_VERSION);
    SSL_set_max_proto_version(conn.client.get(), TLS1_1_VERSION);
    SSL_set_security_level(conn.client.get(), 0);  // otherwise the client refuses on its own
    prepare_upstream_ssl(conn.client.get(), "old.example", true);
    EXPECT_FALSE(conn.handshake());
}

TEST_F(tls_contexts, upstream_without_our_ca_rejects_the_leaf) {
    auto untrusting = make_upstream_context(false, std::nullopt);
    connection conn(untrusting->native_handle(), server->native_handle());
    prepare_upstream_ssl(conn.client.get(), "api.openai.com", true);
    EXPECT_FALSE(conn.handshake());
    EXPECT_NE(SSL_get_verify_result(conn.client.get()), X509_V_OK);
}

TEST_F(tls_contexts, skip_verify_accepts_an_untrusted_leaf) {
    auto lax = make_upstream_context(true, std::nullopt);
    connection conn(lax->native_handle(), server->native_handle());
    prepare_upstream_ssl(conn.client.get(), "api.openai.com", false);
    ASSERT_TRUE(conn.handshake());
    EXPECT_EQ(conn.alpn(), "http/1.1");
}

TEST_F(tls_contexts, server_context_keeps_the_authority_alive) {
    scratch_dir dir;
    auto own_ca = certificate_authority::load_or_create(dir.path());
    std::weak_ptr<certificate_authority> weak = own_ca;
    auto ctx = make_server_context(std::move(own_ca));
    EXPECT_FALSE(weak.expired());
    // The SNI callback still works with the context as the only owner.
    auto trusting = make_upstream_context(false, dir / ca_cert_pem_file);
    {
        connection conn(trusting->native_handle(), ctx->native_handle());
        prepare_upstream_ssl(conn.client.get(), "alive.example", true);
        EXPECT_TRUE(conn.handshake());
    }
    ctx.reset();
    EXPECT_TRUE(weak.expired());
}

TEST(upstream_context, missing_upstream_ca_throws) {
    scratch_dir dir;
    const fs::path missing = dir / "nope.pem";
    try {
        make_upstream_context(false, missing);
        FAIL() << "expected an exception";
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("--upstream-ca"), std::string::npos) << msg;
        EXPECT_NE(msg.find(missing.string()), std::string::npos) << msg;
    }
}

TEST(upstream_context, garbage_upstream_ca_throws) {
    scratch_dir dir;
    const fs::path garbage = dir / "garbage.pem";
    std::ofstream(garbage) << "not a certificate\n";
    try {
        make_upstream_context(false, garbage);
        FAIL() << "expected an exception";
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("cannot load --upstream-ca " + garbage.string()), std::string::npos)
            << msg;
    }
}

TEST(upstream_context, bundle_with_several_certificates_trusts_each) {
    scratch_dir dir_a;
    scratch_dir dir_b;
    auto ca_a = certificate_authority::load_or_create(dir_a.path());
    auto ca_b = certificate_authority::load_or_create(dir_b.path());
    scratch_dir bundle_dir;
    const fs::path bundle = bundle_dir / "bundle.pem";
    {
        std::ofstream out(bundle);
        out << std::ifstream(ca_a->cert_pem_path()).rdbuf();
        out << std::ifstream(ca_b->cert_pem_path()).rdbuf();
    }
    auto client = make_upstream_context(false, bundle);
    for (const auto& ca : {ca_a, ca_b}) {
        auto server = make_server_context(ca);
        connection conn(client->native_handle(), server->native_handle());
        prepare_upstream_ssl(conn.client.get(), "bundle.example", true);
        EXPECT_TRUE(conn.handshake());
        EXPECT_EQ(SSL_get_verify_result(conn.client.get()), X509_V_OK);
    }
}

}  // namespace
}  // namespace llm_proxy::tls

#pragma once
// A throw-away PKI generated at test time with the OpenSSL C API: a CA and a server certificate
// signed by it. For a CA the proxy does NOT trust (e.g. an upstream presenting a certificate from
// an unknown issuer), call make_test_pki() a second time with another directory: each call
// creates a brand-new CA key.

#include <filesystem>
#include <string>
#include <vector>

namespace llm_proxy::test {

enum class pki_key_type { ec_p256, rsa_2048 };

struct test_pki {
    std::filesystem::path ca_cert;      // PEM, self-signed, CA:TRUE (critical), keyCertSign
    std::filesystem::path ca_key;       // PEM (PKCS#8, unencrypted, mode 0600)
    std::filesystem::path server_cert;  // PEM, leaf only, signed by the CA
    std::filesystem::path server_key;   // PEM (PKCS#8, unencrypted, mode 0600)
};

// Writes ca.pem, ca.key, server.pem and server.key into `dir` (created if missing). The server
// certificate carries the given DNS and IP SANs (CN = first DNS name), EKU serverAuth,
// CA:FALSE and is valid from now-1d to now+30d (the CA from now-1d to now+365d).
// Throws std::runtime_error with the OpenSSL error queue on failure.
test_pki make_test_pki(const std::filesystem::path& dir,
                       std::vector<std::string> dns_names = {"api.openai.com", "localhost",
                                                             "upstream.test"},
                       std::vector<std::string> ips = {"127.0.0.1", "::1"},
                       pki_key_type key_type = pki_key_type::ec_p256);

}  // namespace llm_proxy::test

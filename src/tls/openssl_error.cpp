#include "openssl_error.hpp"

#include <openssl/err.h>

#include <stdexcept>

namespace llm_proxy::tls {

std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        if (!out.empty()) {
            out += "; ";
        }
        const char* reason = ERR_reason_error_string(e);
        if (reason != nullptr) {
            out += reason;
        } else {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            out += buf;
        }
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

void throw_openssl(std::string_view what) {
    throw std::runtime_error(std::string(what) + ": " + openssl_errors());
}

error_queue_scope::~error_queue_scope() {
    ERR_clear_error();
}

}  // namespace llm_proxy::tls

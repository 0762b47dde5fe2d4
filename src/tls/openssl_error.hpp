#pragma once
// OpenSSL's thread-local error queue as one readable line.

#include <string>
#include <string_view>

namespace llm_proxy::tls {

// Drains the OpenSSL error queue into one line, so the next failure does not report stale
// errors and the message says what OpenSSL actually objected to.
std::string openssl_errors();

// Throws std::runtime_error("<what>: <openssl_errors()>").
[[noreturn]] void throw_openssl(std::string_view what);

// Empties the calling thread's OpenSSL error queue when the scope ends, however it ends.
// OpenSSL calls may leave errors queued that nobody reads (a PEM reader that skipped blocks
// before it failed or succeeded, X509_check_ca() on a certificate with invalid extensions,
// whose failure is reported in our own words); the next reader of the queue on that thread
// would take them for its own failure, and each entry holds allocations until it is popped.
class error_queue_scope {
  public:
    error_queue_scope() = default;
    ~error_queue_scope();
    error_queue_scope(const error_queue_scope&) = delete;
    error_queue_scope& operator=(const error_queue_scope&) = delete;
};

}  // namespace llm_proxy::tls

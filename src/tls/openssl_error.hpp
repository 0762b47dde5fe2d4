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

}  // namespace llm_proxy::tls

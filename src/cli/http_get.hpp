#pragma once
// A small HTTP(S) GET for `prices update`: verified TLS (the system's CAs plus --upstream-ca),
// redirects followed (at most 5), a size limit and a timeout.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace llm_proxy::cli {

struct http_get_options {
    std::optional<std::filesystem::path> extra_ca;
    std::size_t max_bytes = 64u << 20;
    std::chrono::seconds timeout{60};
};

// The body of a 200 answer. Throws std::runtime_error with a message for the user.
std::string http_get(const std::string& url, const http_get_options& options);

}  // namespace llm_proxy::cli

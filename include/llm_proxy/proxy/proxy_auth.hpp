#pragma once
// Proxy authentication (RFC 9110 section 11.7.1, Basic scheme): the credentials the proxy
// accepts on CONNECT and absolute-form requests. Only SHA-256 digests of "user:password" are
// kept; a check compares fixed-length digests in constant time, so neither the content nor
// the length of a stored password leaks through timing.

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_proxy {

class proxy_credentials {
  public:
    // Adds "user:password" (the user may not be empty nor contain ':'; the password may
    // contain ':'). Throws std::invalid_argument saying what is wrong (never echoing the
    // password).
    void add(std::string_view user_colon_password);
    // Reads a file of "user:password" lines; '#' comments and blank lines are skipped.
    // Hashed htpasswd lines (bcrypt "$2y$", "$apr1$", "{SHA}") are rejected. Throws
    // std::invalid_argument naming the file and line.
    void add_file(const std::filesystem::path& file);

    bool enabled() const { return !digests_.empty(); }
    std::size_t size() const { return digests_.size(); }
    // Whether a Proxy-Authorization value carries accepted credentials.
    bool accepts(std::string_view proxy_authorization) const;

  private:
    using digest = std::array<unsigned char, 32>;
    std::vector<digest> digests_;
};

// The "user:password" of a Basic credentials value ("Basic dXNlcjpwYXNz"; the scheme name is
// case-insensitive), or nullopt when it is not well-formed Basic with a ':'.
std::optional<std::string> parse_basic_credentials(std::string_view value);

}  // namespace llm_proxy

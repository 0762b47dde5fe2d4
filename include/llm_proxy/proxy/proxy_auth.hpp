#pragma once
// Proxy authentication (RFC 9110 section 11.7.1, Basic scheme): the credentials the proxy
// accepts on CONNECT and absolute-form requests. Clear-text passwords are kept only as SHA-256
// digests of "user:password"; a check compares fixed-length digests in constant time, so
// neither the content nor the length of a stored password leaks through timing. Hashed
// htpasswd lines (bcrypt, SHA-crypt: libxcrypt) are checked with crypt(); credentials once
// checked are remembered as digests, so a client pays the slow hash once, not per request.

#include <array>
#include <filesystem>
#include <memory>
#include <mutex>
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
    // Hashed lines "user:$2y$..." (bcrypt, as `htpasswd -B` writes them; also "$2a$", "$2b$",
    // SHA-crypt "$5$"/"$6$" and yescrypt "$y$") are accepted; "$apr1$" and "{SHA}" are
    // rejected. Throws std::invalid_argument naming the file and line.
    void add_file(const std::filesystem::path& file);

    bool enabled() const { return size() > 0; }
    std::size_t size() const { return digests_.size() + hashed_.size(); }
    // Whether a Proxy-Authorization value carries accepted credentials. May run the slow hash
    // of a hashed line (tens of milliseconds for bcrypt): on an event loop, ask check_fast()
    // first and run accepts() elsewhere when it says `unknown`.
    bool accepts(std::string_view proxy_authorization) const;
    enum class verdict { accepted, refused, unknown };
    // The answer without the slow hash: `unknown` only when the credentials match no
    // clear-text entry and were never checked against the hashed lines.
    verdict check_fast(std::string_view proxy_authorization) const;

  private:
    using digest = std::array<unsigned char, 32>;
    struct hashed_entry {
        std::string user;
        std::string hash;  // crypt() format
    };
    // Outcomes of crypt() checks, by digest of "user:password" (bounded).
    struct checked_cache {
        std::mutex mutex;
        std::vector<digest> accepted;
        std::vector<digest> refused;
    };
    bool check_hashed(const std::string& credentials, const digest& given) const;
    // Whether `given` was checked before: its outcome, or nullopt.
    std::optional<bool> checked_before(const digest& given) const;

    std::vector<digest> digests_;
    std::vector<hashed_entry> hashed_;
    std::shared_ptr<checked_cache> checked_ = std::make_shared<checked_cache>();
};

// The "user:password" of a Basic credentials value ("Basic dXNlcjpwYXNz"; the scheme name is
// case-insensitive), or nullopt when it is not well-formed Basic with a ':'.
std::optional<std::string> parse_basic_credentials(std::string_view value);

}  // namespace llm_proxy

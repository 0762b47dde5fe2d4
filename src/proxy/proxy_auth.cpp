#include "llm_proxy/proxy/proxy_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <stdexcept>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy {

namespace {

std::array<unsigned char, 32> sha256(std::string_view s) {
    std::array<unsigned char, 32> out{};
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), out.data());
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

// Empty when `text` is acceptable "user:password", else what is wrong with it.
std::string credential_problem(std::string_view text) {
    auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        return "expected USER:PASSWORD";
    }
    if (colon == 0) {
        return "the user name is empty";
    }
    std::string_view password = text.substr(colon + 1);
    if (password.empty()) {
        return "the password is empty";
    }
    if (password.starts_with("$2a$") || password.starts_with("$2b$") ||
        password.starts_with("$2y$") || password.starts_with("$apr1$") ||
        password.starts_with("{SHA}")) {
        return "hashed htpasswd passwords (bcrypt, apr1, SHA) are not supported; write "
               "user:password in clear text (and keep the file mode 0600)";
    }
    for (char c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return "control characters are not allowed";
        }
    }
    return {};
}

}  // namespace

void proxy_credentials::add(std::string_view text) {
    if (auto problem = credential_problem(text); !problem.empty()) {
        throw std::invalid_argument("--proxy-auth: " + problem);
    }
    digests_.push_back(sha256(text));
}

void proxy_credentials::add_file(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) {
        throw std::invalid_argument("--proxy-auth-file: cannot read '" + file.string() + "'");
    }
    std::string line;
    std::size_t number = 0;
    std::size_t added = 0;
    while (std::getline(in, line)) {
        ++number;
        std::string_view l = trim(line);
        if (l.empty() || l.front() == '#') {
            continue;
        }
        if (auto problem = credential_problem(l); !problem.empty()) {
            throw std::invalid_argument("--proxy-auth-file: " + file.string() + " line " +
                                        std::to_string(number) + ": " + problem);
        }
        digests_.push_back(sha256(l));
        ++added;
    }
    if (added == 0) {
        throw std::invalid_argument("--proxy-auth-file: " + file.string() +
                                    " holds no user:password line");
    }
}

bool proxy_credentials::accepts(std::string_view proxy_authorization) const {
    auto credentials = parse_basic_credentials(proxy_authorization);
    if (!credentials) {
        return false;
    }
    auto given = sha256(*credentials);
    bool ok = false;
    for (const auto& d : digests_) {
        // Every entry is compared, so the time does not tell which one matched.
        ok = (CRYPTO_memcmp(d.data(), given.data(), d.size()) == 0) || ok;
    }
    return ok;
}

std::optional<std::string> parse_basic_credentials(std::string_view value) {
    value = trim(value);
    if (value.size() < 6 || !iequals(value.substr(0, 5), "basic") || value[5] != ' ') {
        return std::nullopt;
    }
    auto decoded = base64_decode(trim(value.substr(6)));
    if (!decoded || decoded->find(':') == std::string::npos) {
        return std::nullopt;
    }
    return decoded;
}

}  // namespace llm_proxy

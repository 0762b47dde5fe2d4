#include "llm_proxy/proxy/proxy_auth.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <memory>
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
    if (password.starts_with("$apr1$") || password.starts_with("{SHA}")) {
        return "htpasswd's apr1 and SHA hashes are not supported; use bcrypt (htpasswd -B) or "
               "write user:password in clear text (and keep the file mode 0600)";
    }
    for (char c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return "control characters are not allowed";
        }
    }
    return {};
}

// Whether `password` is a crypt() hash this system can check (bcrypt, SHA-crypt, yescrypt).
bool is_crypt_hash(std::string_view password) {
    static constexpr std::string_view prefixes[] = {"$2a$", "$2b$", "$2y$", "$5$", "$6$", "$y$"};
    for (auto p : prefixes) {
        if (password.starts_with(p)) {
            return true;
        }
    }
    return false;
}

constexpr std::size_t checked_cache_limit = 1024;

// crypt() of `password` with the settings of `hash` (empty when libcrypt refuses them).
std::string crypt_with(const std::string& password, const std::string& hash) {
    auto data = std::make_unique<crypt_data>();
    const char* out = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
    if (out == nullptr || out[0] == '*') {
        return {};
    }
    return out;
}

// Whether libcrypt supports the method of `hash` and `hash` is whole: hashing any password
// with its settings gives a result of the same length (a cut line does not).
bool crypt_hash_is_usable(const std::string& hash) {
    if (crypt_checksalt(hash.c_str()) != CRYPT_SALT_OK) {
        return false;
    }
    return crypt_with("probe", hash).size() == hash.size();
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
        auto colon = l.find(':');
        std::string_view password = l.substr(colon + 1);
        if (is_crypt_hash(password)) {
            std::string hash(password);
            if (!crypt_hash_is_usable(hash)) {
                throw std::invalid_argument("--proxy-auth-file: " + file.string() + " line " +
                                            std::to_string(number) +
                                            ": the password hash is malformed or of a method "
                                            "this system's libcrypt does not support");
            }
            hashed_.push_back({std::string(l.substr(0, colon)), std::move(hash)});
        } else {
            digests_.push_back(sha256(l));
        }
        ++added;
    }
    if (added == 0) {
        throw std::invalid_argument("--proxy-auth-file: " + file.string() +
                                    " holds no user:password line");
    }
}

proxy_credentials::verdict proxy_credentials::check_fast(
    std::string_view proxy_authorization) const {
    auto credentials = parse_basic_credentials(proxy_authorization);
    if (!credentials) {
        return verdict::refused;
    }
    auto given = sha256(*credentials);
    bool ok = false;
    for (const auto& d : digests_) {
        // Every entry is compared, so the time does not tell which one matched.
        ok = (CRYPTO_memcmp(d.data(), given.data(), d.size()) == 0) || ok;
    }
    if (ok) {
        return verdict::accepted;
    }
    if (hashed_.empty()) {
        return verdict::refused;
    }
    auto before = checked_before(given);
    if (!before) {
        return verdict::unknown;
    }
    return *before ? verdict::accepted : verdict::refused;
}

bool proxy_credentials::accepts(std::string_view proxy_authorization) const {
    auto fast = check_fast(proxy_authorization);
    if (fast != verdict::unknown) {
        return fast == verdict::accepted;
    }
    auto credentials = parse_basic_credentials(proxy_authorization);
    return check_hashed(*credentials, sha256(*credentials));
}

std::optional<bool> proxy_credentials::checked_before(const digest& given) const {
    auto seen = [&given](const std::vector<digest>& list) {
        bool found = false;
        for (const auto& d : list) {
            found = (CRYPTO_memcmp(d.data(), given.data(), d.size()) == 0) || found;
        }
        return found;
    };
    std::lock_guard lock(checked_->mutex);
    if (seen(checked_->accepted)) {
        return true;
    }
    if (seen(checked_->refused)) {
        return false;
    }
    return std::nullopt;
}

bool proxy_credentials::check_hashed(const std::string& credentials, const digest& given) const {
    // The slow hash, once per distinct credentials (a client repeating wrong ones is answered
    // from the cache too).
    auto colon = credentials.find(':');
    std::string_view user = std::string_view(credentials).substr(0, colon);
    std::string password = credentials.substr(colon + 1);
    bool ok = false;
    for (const auto& e : hashed_) {
        // crypt() reads a C string: a password with a NUL would be checked only up to it.
        if (e.user != user || password.find('\0') != std::string::npos) {
            continue;
        }
        auto out = crypt_with(password, e.hash);
        if (out.size() == e.hash.size() &&
            CRYPTO_memcmp(out.data(), e.hash.data(), e.hash.size()) == 0) {
            ok = true;
        }
    }
    std::lock_guard lock(checked_->mutex);
    auto& list = ok ? checked_->accepted : checked_->refused;
    if (list.size() < checked_cache_limit) {
        list.push_back(given);
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

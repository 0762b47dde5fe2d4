// Redis URLs: redis://[[user]:password@]host[:port][/db] and unix:///path[?db=N&user=U&password=P],
// split and percent-decoded by Boost.URL.

#include <algorithm>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/pchars.hpp>
#include <boost/url/rfc/sub_delim_chars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "llm_proxy/cache/redis_store.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::cache {

namespace {

namespace urls = boost::urls;

constexpr int kMaxDb = std::numeric_limits<int>::max();

// What may stand unescaped in the userinfo of a URL (RFC 3986 section 3.2.1), ':' aside.
constexpr auto kUserChars = urls::unreserved_chars + urls::sub_delim_chars;

// Percent-encodes the bytes RFC 3986 does not allow in a component, except '%' (an escape
// must already be well formed): people write passwords with '@', '^' or spaces as they are,
// and the parser before Boost.URL accepted them.
template <class CharSet>
std::string escape_stray(std::string_view s, const CharSet& allowed) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (c == '%' || allowed(static_cast<char>(c))) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

// A decimal number in [min, max]; nullopt otherwise (including signs, spaces, empty).
std::optional<std::uint64_t> parse_number(std::string_view s, std::uint64_t min,
                                          std::uint64_t max) {
    std::uint64_t value = 0;
    if (s.empty() ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || value < min || value > max) {
        return std::nullopt;
    }
    return value;
}

// The URL with the password (if any) replaced by "***", for error messages.
std::string redact_url(const std::string& url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) {
        return url;
    }
    const auto start = scheme_end + 3;
    const auto authority_end = url.find_first_of("/?#", start);
    const auto at = url.rfind('@', authority_end == std::string::npos ? url.size() : authority_end);
    if (at == std::string::npos || at < start) {
        return url;
    }
    const auto colon = url.find(':', start);
    if (colon == std::string::npos || colon > at) {
        return url;
    }
    return url.substr(0, colon + 1) + "***" + url.substr(at);
}

class url_parser {
  public:
    explicit url_parser(const std::string& url) : url_(url) {}

    redis_url parse() {
        if (istarts_with(url_, "unix://")) {
            return parse_unix();
        }
        if (istarts_with(url_, "rediss://")) {
            throw fail("TLS (rediss://) is not supported");
        }
        if (!istarts_with(url_, "redis://")) {
            throw fail(
                "expected redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]");
        }
        return parse_tcp();
    }

  private:
    std::invalid_argument fail(const std::string& why) const {
        return std::invalid_argument("invalid redis URL '" + redact_url(url_) + "': " + why);
    }

    urls::url_view view(const std::string& text, const char* what) const {
        auto parsed = urls::parse_uri(text);
        if (!parsed) {
            throw fail(std::string(what) + " (" + parsed.error().message() + ")");
        }
        return *parsed;
    }

    // unix:///path/to/socket[?db=N&user=U&password=P]
    redis_url parse_unix() {
        redis_url out;
        // Anything that is not an escape is meant literally, '#' included.
        const std::string_view rest = std::string_view(url_).substr(7);
        const auto query_start = rest.find('?');
        std::string text = "unix://" + escape_stray(rest.substr(0, query_start),
                                                    urls::pchars + urls::grammar::lut_chars('/'));
        if (query_start != std::string_view::npos) {
            text += "?" + escape_stray(rest.substr(query_start + 1),
                                       urls::pchars + urls::grammar::lut_chars("/?"));
        }
        const std::string_view path = rest.substr(0, query_start);
        if (path.empty() || path.front() != '/' || path.size() < 2) {
            throw fail("expected unix:///absolute/path/to/socket");
        }
        const urls::url_view u = view(text, "bad %-escape in the socket path or the query");
        out.socket_path = u.path();
        if (u.encoded_query().empty()) {
            return out;
        }
        for (const auto& param : u.params(urls::encoding_opts())) {
            if (!param.has_value) {
                throw fail("query parameter '" + param.key + "' has no value");
            }
            if (param.key == "db") {
                auto db = parse_number(param.value, 0, kMaxDb);
                if (!db) {
                    throw fail("database must be a non-negative number, not '" + param.value + "'");
                }
                out.db = static_cast<int>(*db);
            } else if (param.key == "user") {
                out.user = param.value;
            } else if (param.key == "password") {
                if (param.value.empty()) {
                    throw fail("empty password");
                }
                out.password = param.value;
                out.has_password = true;
            } else {
                throw fail("unknown query parameter '" + param.key +
                           "' (expected db, user or password)");
            }
        }
        if (!out.user.empty() && !out.has_password) {
            throw fail("a user needs a password");
        }
        return out;
    }

    // redis://[[user]:password@]host[:port][/db]
    redis_url parse_tcp() {
        redis_url out;
        const std::string_view rest = std::string_view(url_).substr(8);
        if (rest.find_first_of("?#") != std::string_view::npos) {
            throw fail("query parameters and fragments are not supported in redis:// URLs");
        }
        // The userinfo ends at the last '@' of the authority.
        const std::string_view authority = rest.substr(0, rest.find('/'));
        const auto at = authority.rfind('@');
        std::string text = "redis://";
        std::string_view host_port = authority;
        if (at != std::string_view::npos) {
            const std::string_view userinfo = authority.substr(0, at);
            const auto colon = userinfo.find(':');
            if (colon == std::string_view::npos) {
                throw fail("credentials must be [user]:password@");
            }
            text += escape_stray(userinfo.substr(0, colon), kUserChars) + ":" +
                    escape_stray(userinfo.substr(colon + 1),
                                 kUserChars + urls::grammar::lut_chars(':')) +
                    "@";
            host_port = authority.substr(at + 1);
        }
        if (!host_port.starts_with('[') &&
            std::count(host_port.begin(), host_port.end(), ':') > 1) {
            throw fail("IPv6 addresses must be in brackets, e.g. redis://[::1]:6379");
        }
        text += rest.substr(at == std::string_view::npos ? 0 : at + 1);
        const urls::url_view u = view(text, "bad host, port or %-escape");

        if (u.has_password()) {
            out.user = u.user();
            out.password = u.password();
            if (out.password.empty()) {
                throw fail("empty password");
            }
            out.has_password = true;
        }

        if (u.host_type() == urls::host_type::ipvfuture) {
            throw fail("bad IPv6 address");
        }
        out.host = u.host_address();  // an IPv6 address without its brackets
        if (out.host.empty()) {
            throw fail("missing host");
        }
        // A host name is percent-decoded: one that decodes to anything but letters, digits,
        // '-', '.', '_' and '~' (a delimiter, a space, a control character, a byte outside
        // ASCII...) names no host (an international name is written in its ASCII form), and
        // would not survive display() either.
        if (u.host_type() == urls::host_type::name &&
            std::any_of(out.host.begin(), out.host.end(), [](char c) {
                const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~';
                return !ok;
            })) {
            throw fail(
                "bad host name: it decodes to a character other than letters, digits, '-', '.', "
                "'_' and '~'");
        }
        out.port = 6379;
        if (u.has_port()) {
            const std::string_view port_text = u.port();
            if (port_text.empty()) {
                throw fail("empty port");
            }
            auto port = parse_number(port_text, 1, 65535);
            if (!port) {
                throw fail("port must be a number from 1 to 65535, not '" + std::string(port_text) +
                           "'");
            }
            out.port = static_cast<std::uint16_t>(*port);
        }

        // [/db]
        std::string_view path = u.encoded_path();
        if (path.starts_with('/')) {
            path.remove_prefix(1);
        }
        if (!path.empty()) {
            auto db = parse_number(path, 0, kMaxDb);
            if (!db) {
                throw fail("database must be a non-negative number, not '" + std::string(path) +
                           "'");
            }
            out.db = static_cast<int>(*db);
        }
        return out;
    }

    const std::string& url_;
};

}  // namespace

std::string redis_url::display() const {
    if (is_unix()) {
        return "unix://" + socket_path + (db != 0 ? "?db=" + std::to_string(db) : "");
    }
    std::string out = "redis://";
    if (!user.empty()) {
        out += urls::encode(user, kUserChars) + "@";
    }
    out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
    out += ":" + std::to_string(port) + "/" + std::to_string(db);
    return out;
}

redis_url parse_redis_url(const std::string& url) {
    return url_parser(url).parse();
}

}  // namespace llm_proxy::cache

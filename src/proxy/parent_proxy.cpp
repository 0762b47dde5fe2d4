// --upstream-proxy URL parsing and the --upstream-no-proxy matcher.

#include "llm_proxy/proxy/parent_proxy.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cctype>
#include <charconv>
#include <stdexcept>

#include "llm_proxy/util/authority.hpp"

namespace llm_proxy {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    });
    return out;
}

// Lower case, without a trailing dot (a fully qualified name) or IPv6 brackets.
std::string normal_host(std::string_view host) {
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (!host.empty() && host.back() == '.') {
        host.remove_suffix(1);
    }
    return lower(host);
}

std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()),
                            static_cast<int>(in.size()));
    out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return out;
}

bool valid_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_';
    });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

std::string format_authority(std::string_view host, std::uint16_t port) {
    std::string h(host);
    if (h.find(':') != std::string::npos) {
        h = "[" + h + "]";
    }
    return h + ":" + std::to_string(port);
}

std::string parent_proxy::authority() const {
    return format_authority(host, port);
}

std::string parent_proxy::authorization() const {
    if (!has_credentials) {
        return {};
    }
    return "Basic " + base64(user + ":" + password);
}

parent_proxy parse_parent_proxy(std::string_view text) {
    const std::string quoted = "'" + std::string(text) + "'";
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) {
        throw std::invalid_argument(
            "--upstream-proxy: expected http://[user:pass@]host:port, got " + quoted);
    }
    const auto& u = *parsed;
    if (u.scheme_id() != boost::urls::scheme::http) {
        throw std::invalid_argument(
            "--upstream-proxy: only http:// parent proxies are supported, "
            "got " +
            quoted);
    }
    if (!u.has_authority() || u.encoded_host().empty()) {
        throw std::invalid_argument("--upstream-proxy: no host in " + quoted);
    }
    if (u.host_type() == boost::urls::host_type::ipvfuture) {
        throw std::invalid_argument("--upstream-proxy: unsupported host in " + quoted);
    }
    if (!u.has_port()) {
        throw std::invalid_argument("--upstream-proxy: a port is required (host:port) in " +
                                    quoted);
    }
    auto port = parse_port(u.port());
    if (!port || *port == 0) {
        // "host:notaport" parses as an empty port followed by a relative path: name it all.
        std::string port_text(u.port());
        if (!u.encoded_path().empty() && u.encoded_path().front() != '/') {
            port_text += std::string(u.encoded_path());
        }
        throw std::invalid_argument("--upstream-proxy: bad port '" + port_text + "' in " + quoted);
    }
    if ((!u.encoded_path().empty() && u.encoded_path() != "/") || u.has_query() ||
        u.has_fragment()) {
        throw std::invalid_argument("--upstream-proxy: no path or query allowed in " + quoted);
    }
    parent_proxy p;
    p.host = normal_host(u.host_address());
    if (u.host_type() == boost::urls::host_type::name && !valid_name(p.host)) {
        throw std::invalid_argument("--upstream-proxy: bad host name in " + quoted);
    }
    p.port = *port;
    if (u.has_userinfo()) {
        p.has_credentials = true;
        p.user = u.user();
        p.password = u.password();
        if (p.user.find(':') != std::string::npos) {
            throw std::invalid_argument("--upstream-proxy: the user name cannot hold ':'");
        }
    }
    return p;
}

no_proxy_list no_proxy_list::parse(std::string_view text) {
    no_proxy_list out;
    std::size_t start = 0;
    while (start <= text.size()) {
        auto comma = text.find(',', start);
        auto end = comma == std::string_view::npos ? text.size() : comma;
        auto entry = trim(text.substr(start, end - start));
        start = end + 1;
        if (entry.empty()) {
            continue;
        }
        const auto bad = [&](const std::string& why) {
            return std::invalid_argument("--upstream-no-proxy: '" + std::string(entry) + "' " +
                                         why);
        };
        if (entry == "*") {
            out.all_ = true;
            continue;
        }
        if (entry.starts_with("*.") || entry.starts_with(".")) {
            auto domain = normal_host(entry.substr(entry.find('.') + 1));
            if (!valid_name(domain)) {
                throw bad("is no domain suffix");
            }
            out.suffixes_.push_back("." + domain);
            continue;
        }
        auto slash = entry.find('/');
        auto addr_text = normal_host(entry.substr(0, slash));
        boost::system::error_code ec;
        auto addr = boost::asio::ip::make_address(addr_text, ec);
        if (!ec) {
            cidr block;
            block.v6 = addr.is_v6();
            unsigned max_bits = block.v6 ? 128 : 32;
            block.bits = max_bits;
            if (block.v6) {
                block.bytes = addr.to_v6().to_bytes();
            } else {
                auto b = addr.to_v4().to_bytes();
                std::copy(b.begin(), b.end(), block.bytes.begin());
            }
            if (slash != std::string_view::npos) {
                auto digits = entry.substr(slash + 1);
                unsigned bits = 0;
                auto [ptr, pec] =
                    std::from_chars(digits.data(), digits.data() + digits.size(), bits);
                if (digits.empty() || pec != std::errc() || ptr != digits.data() + digits.size() ||
                    bits > max_bits) {
                    throw bad("has a bad prefix length (0 to " + std::to_string(max_bits) + ")");
                }
                block.bits = bits;
            }
            out.blocks_.push_back(block);
            continue;
        }
        if (slash != std::string_view::npos) {
            throw bad("is no CIDR block (address/bits)");
        }
        if (!valid_name(addr_text)) {
            throw bad("is no host name, .suffix, IP address, CIDR block or *");
        }
        out.names_.push_back(addr_text);
    }
    return out;
}

bool no_proxy_list::empty() const {
    return !all_ && names_.empty() && suffixes_.empty() && blocks_.empty();
}

bool no_proxy_list::matches(std::string_view host_text) const {
    if (all_) {
        return true;
    }
    auto host = normal_host(host_text);
    if (std::find(names_.begin(), names_.end(), host) != names_.end()) {
        return true;
    }
    for (const auto& s : suffixes_) {
        if (host.size() > s.size() && host.ends_with(s)) {
            return true;
        }
    }
    if (blocks_.empty()) {
        return false;
    }
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(host, ec);
    if (ec) {
        return false;
    }
    std::array<unsigned char, 16> bytes{};
    if (addr.is_v6()) {
        bytes = addr.to_v6().to_bytes();
    } else {
        auto b = addr.to_v4().to_bytes();
        std::copy(b.begin(), b.end(), bytes.begin());
    }
    for (const auto& block : blocks_) {
        if (block.v6 != addr.is_v6()) {
            continue;
        }
        unsigned whole = block.bits / 8;
        unsigned rest = block.bits % 8;
        if (!std::equal(bytes.begin(), bytes.begin() + whole, block.bytes.begin())) {
            continue;
        }
        if (rest != 0) {
            auto mask = static_cast<unsigned char>(0xff << (8 - rest));
            if ((bytes[whole] & mask) != (block.bytes[whole] & mask)) {
                continue;
            }
        }
        return true;
    }
    return false;
}

}  // namespace llm_proxy

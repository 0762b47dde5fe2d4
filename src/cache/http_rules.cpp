#include "llm_proxy/cache/http_rules.hpp"

#include <boost/beast/http/rfc7230.hpp>
#include <cstdlib>
#include <string>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::cache {

namespace {

// Calls fn(item) for each comma-separated item of a header value, trimmed, non-empty.
template <class Fn>
void for_each_item(std::string_view value, Fn&& fn) {
    while (!value.empty()) {
        auto comma = value.find(',');
        auto item = trim_space(value.substr(0, comma));
        if (!item.empty()) {
            fn(item);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
}

// The directive name of "no-cache", "max-age=0", "private=\"x\"".
std::string_view directive_name(std::string_view item) {
    return trim_space(item.substr(0, item.find('=')));
}

}  // namespace

request_directives parse_request_directives(const header_list& headers) {
    request_directives d;
    bool has_cache_control = false;
    for (const auto& [name, value] : headers) {
        if (!iequals(name, "Cache-Control")) {
            continue;
        }
        has_cache_control = true;
        for_each_item(value, [&](std::string_view item) {
            auto n = directive_name(item);
            d.no_cache = d.no_cache || iequals(n, "no-cache");
            d.no_store = d.no_store || iequals(n, "no-store");
        });
    }
    if (!has_cache_control) {
        for (const auto& [name, value] : headers) {
            if (iequals(name, "Pragma")) {
                for_each_item(value, [&](std::string_view item) {
                    d.no_cache = d.no_cache || iequals(directive_name(item), "no-cache");
                });
            }
        }
    }
    return d;
}

bool response_forbids_storing(const header_list& headers) {
    bool forbidden = false;
    for (const auto& [name, value] : headers) {
        if (iequals(name, "Cache-Control")) {
            for_each_item(value, [&](std::string_view item) {
                forbidden = forbidden || iequals(directive_name(item), "no-store");
            });
        }
    }
    return forbidden;
}

bool accepts_encoding(const std::string_view* accept_encoding, std::string_view coding) {
    if (coding.empty() || iequals(coding, "identity")) {
        return true;
    }
    if (!accept_encoding) {
        return false;
    }
    int named = -1;  // -1: not listed, 0: q=0, 1: accepted
    int star = -1;
    for (const auto& [name, params] : boost::beast::http::ext_list(*accept_encoding)) {
        int ok = 1;
        for (const auto& [param, value] : params) {
            if (iequals(param, "q")) {
                ok = std::strtod(std::string(value).c_str(), nullptr) > 0 ? 1 : 0;
            }
        }
        if (iequals(name, coding)) {
            named = ok;
        } else if (name == "*") {
            star = ok;
        }
    }
    return named >= 0 ? named == 1 : star == 1;
}

std::vector<std::string> content_codings(std::string_view content_encoding) {
    std::vector<std::string> out;
    for (auto coding : boost::beast::http::token_list(content_encoding)) {
        if (!iequals(coding, "identity")) {
            out.push_back(to_lower(coding));
        }
    }
    return out;
}

std::vector<std::size_t> sse_event_ends(std::string_view body) {
    std::vector<std::size_t> ends;
    for (std::size_t i = 0; i < body.size(); ++i) {
        // An event ends at a blank line: two line ends in a row (LF, CRLF or CR).
        auto line_end = [&](std::size_t at) -> std::size_t {  // length of a line end at `at`
            if (at >= body.size()) {
                return 0;
            }
            if (body[at] == '\n') {
                return 1;
            }
            if (body[at] == '\r') {
                return at + 1 < body.size() && body[at + 1] == '\n' ? 2 : 1;
            }
            return 0;
        };
        std::size_t first = line_end(i);
        if (first == 0) {
            continue;
        }
        std::size_t second = line_end(i + first);
        if (second == 0) {
            i += first - 1;
            continue;
        }
        ends.push_back(i + first + second);
        i += first + second - 1;
    }
    return ends;
}

bool cacheable_method(std::string_view method) {
    return method == "GET" || method == "HEAD" || method == "POST";
}

}  // namespace llm_proxy::cache

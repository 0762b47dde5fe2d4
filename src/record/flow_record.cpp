#include "llm_proxy/record/flow_record.hpp"

#include <chrono>
#include <cstdint>
#include <string_view>

#include "llm_proxy/record/body_decoder.hpp"
#include "llm_proxy/util/ids.hpp"
#include "record_fields.hpp"

namespace llm_proxy::record {

namespace {

using nlohmann::json;

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid (overlong forms,
// surrogates and code points above U+10FFFF included). Sets `incomplete` when the sequence is
// valid so far but runs past the end of `s`.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i, bool& incomplete) {
    incomplete = false;
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) {
        return 1;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) {
            lo = 0xa0;  // no overlong forms
        } else if (c == 0xed) {
            hi = 0x9f;  // no UTF-16 surrogates
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;  // nothing above U+10FFFF
        }
    } else {
        return 0;
    }
    for (std::size_t k = 1; k < len; ++k) {
        if (i + k >= s.size()) {
            incomplete = true;
            return 0;
        }
        unsigned char b = byte(i + k);
        unsigned char min = k == 1 ? lo : 0x80;
        unsigned char max = k == 1 ? hi : 0xbf;
        if (b < min || b > max) {
            return 0;
        }
    }
    return len;
}

// Size of the longest valid UTF-8 prefix; `tail_incomplete` tells whether what stops it is
// merely a multi-byte character cut off by the end of the data.
std::size_t valid_utf8_prefix(std::string_view s, bool& tail_incomplete) {
    tail_incomplete = false;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t n = utf8_sequence_length(s, i, tail_incomplete);
        if (n == 0) {
            return i;
        }
        i += n;
    }
    return i;
}

}  // namespace

// nlohmann::json throws on invalid UTF-8 when dumping; header values and URLs come straight
// off the wire, so replace each bad byte with U+FFFD.
std::string detail::sanitize_utf8(std::string_view s) {
    bool incomplete = false;
    std::size_t valid = valid_utf8_prefix(s, incomplete);
    if (valid == s.size()) {
        return std::string(s);
    }
    std::string out(s.substr(0, valid));
    std::size_t i = valid;
    while (i < s.size()) {
        std::size_t n = utf8_sequence_length(s, i, incomplete);
        if (n == 0) {
            out += "\xef\xbf\xbd";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

namespace {

std::string base64_encode(std::string_view in) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
    for (; i + 3 <= in.size(); i += 3) {
        std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        out.push_back(alphabet[(v >> 18) & 0x3f]);
        out.push_back(alphabet[(v >> 12) & 0x3f]);
        out.push_back(alphabet[(v >> 6) & 0x3f]);
        out.push_back(alphabet[v & 0x3f]);
    }
    std::size_t rest = in.size() - i;
    if (rest > 0) {
        std::uint32_t v = byte(i) << 16;
        if (rest == 2) {
            v |= byte(i + 1) << 8;
        }
        out.push_back(alphabet[(v >> 18) & 0x3f]);
        out.push_back(alphabet[(v >> 12) & 0x3f]);
        out.push_back(rest == 2 ? alphabet[(v >> 6) & 0x3f] : '=');
        out.push_back('=');
    }
    return out;
}

bool is_token_char(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

}  // namespace

bool detail::is_filtered(std::string_view name, const std::vector<std::string>& filter) {
    for (const auto& f : filter) {
        if (iequals(name, f)) {
            return true;
        }
    }
    return false;
}

namespace {

// Fills obj["body"] (and the body_* annotations) from a captured, still content-encoded body.
void add_body(json& obj, const captured_body& body, const header_list& headers, bool log,
              std::size_t max_body_log) {
    if (!log) {
        obj["body"] = "";
        return;
    }
    detail::body_text b = detail::prepare_body(body, headers, max_body_log);
    if (b.decode_error) {
        obj["body_decode_error"] = std::move(*b.decode_error);
    }
    obj["body"] = std::move(b.value);
    if (b.base64) {
        obj["body_encoding"] = "base64";
    }
    if (b.truncated) {
        obj["body_truncated"] = true;
        obj["body_size"] = b.total;
    }
}

void set_if_not_empty(json& obj, const char* key, std::string_view value) {
    if (!value.empty()) {
        obj[key] = detail::sanitize_utf8(value);
    }
}

}  // namespace

detail::body_text detail::prepare_body(const captured_body& body, const header_list& headers,
                                       std::size_t max_body_log) {
    body_text out;
    std::string_view encoding = find_header(headers, "Content-Encoding").value_or("");
    decoded_body decoded = decode_body(encoding, body.data, max_body_log);
    out.truncated = body.truncated || decoded.truncated;
    out.total = body.total;
    std::string bytes = std::move(decoded.data);
    if (!decoded.ok) {
        // decode_body hands back the raw input, which the capture limit does not necessarily
        // bound by max_body_log.
        if (bytes.size() > max_body_log) {
            bytes.resize(max_body_log);
            out.truncated = true;
        }
        out.decode_error = sanitize_utf8(decoded.error);
    }

    bool tail_incomplete = false;
    std::size_t valid = valid_utf8_prefix(bytes, tail_incomplete);
    if (valid != bytes.size() && out.truncated && tail_incomplete) {
        // Cutting a text body may split its last character; drop the fragment rather than
        // turning the whole body into base64.
        bytes.resize(valid);
    }
    if (valid == bytes.size()) {
        out.value = std::move(bytes);
    } else {
        out.value = base64_encode(bytes);
        out.base64 = true;
    }
    return out;
}

const std::vector<std::string>& default_filtered_headers() {
    static const std::vector<std::string> headers = {
        "Authorization",
        "Authorization-Info",
        "Cookie",
        "Openai-Organization",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Set-Cookie",
        "WWW-Authenticate",
        "X-Access-Token",
        "X-Api-Key",
        "X-Auth-Password",
        "X-Auth-Token",
        "X-Auth-User",
        "X-CSRF-Token",
        "X-Forwarded-User",
        "X-Password",
        "X-Refresh-Token",
        "X-User-Email",
        "X-User-Id",
        "X-UserName",
        "X-User-Secret",
        "Api-Key",
        "X-Goog-Api-Key",
        "Openai-Project",
    };
    return headers;
}

std::string canonical_header_name(std::string_view name) {
    for (char c : name) {
        if (!is_token_char(static_cast<unsigned char>(c))) {
            return std::string(name);
        }
    }
    std::string out(name);
    bool upper = true;
    for (char& c : out) {
        if (upper && c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        } else if (!upper && c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        upper = c == '-';
    }
    return out;
}

json headers_to_json(const header_list& headers, const std::vector<std::string>& filter) {
    json out = json::object();
    for (const auto& [name, value] : headers) {
        if (detail::is_filtered(name, filter)) {
            continue;
        }
        json& values = out[detail::sanitize_utf8(canonical_header_name(name))];
        if (values.is_null()) {
            values = json::array();
        }
        values.push_back(detail::sanitize_utf8(value));
    }
    return out;
}

json make_record(const flow& f, const record_options& options, const std::string& proxy_id) {
    json record = json::object();
    record["object_type"] = "llm_proxy_traffic_log";
    record["schema"] = "v2";
    record["timestamp"] = format_timestamp(f.started_at);

    // A flow that failed before its request line was parsed has no host to build a URL from.
    std::string url = f.request.host.empty() ? std::string() : f.request.url();

    if (options.log_connection_stats) {
        json stats = json::object();
        set_if_not_empty(stats, "client_address", f.client_address);
        set_if_not_empty(stats, "url", url);
        stats["duration_ms"] =
            std::chrono::duration_cast<std::chrono::milliseconds>(f.duration).count();
        set_if_not_empty(stats, "proxy_id", proxy_id);
        record["connection_stats"] = std::move(stats);
    }

    json request = json::object();
    set_if_not_empty(request, "method", f.request.method);
    set_if_not_empty(request, "url", url);
    request["proto"] = f.request.version == 10 ? "HTTP/1.0" : "HTTP/1.1";
    request["header"] = options.log_request_headers
                            ? headers_to_json(f.request.headers, options.filter_request_headers)
                            : json(nullptr);
    add_body(request, f.request_body, f.request.headers, options.log_request_body,
             options.max_body_log);
    record["request"] = std::move(request);

    if (f.response) {
        json response = json::object();
        response["status"] = f.response->status;
        response["header"] =
            options.log_response_headers
                ? headers_to_json(f.response->headers, options.filter_response_headers)
                : json(nullptr);
        add_body(response, f.response_body, f.response->headers, options.log_response_body,
                 options.max_body_log);
        record["response"] = std::move(response);
    }

    // Also set when the response started but then broke off (e.g. upstream reset mid-body).
    if (!f.response || f.error_kind != flow_error::none) {
        record["error"] = {{"kind", std::string(to_string(f.error_kind))},
                           {"message", detail::sanitize_utf8(f.error)}};
    }

    if (!f.tags.empty()) {
        json tags = json::object();
        for (const auto& [k, v] : f.tags) {
            tags[detail::sanitize_utf8(k)] = detail::sanitize_utf8(v);
        }
        record["tags"] = std::move(tags);
    }
    return record;
}

}  // namespace llm_proxy::record

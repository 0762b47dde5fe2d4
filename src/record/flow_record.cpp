#include "llm_proxy/record/flow_record.hpp"

#include <string_view>

#include "llm_proxy/record/body_decoder.hpp"
#include "llm_proxy/util/text.hpp"
#include "record_fields.hpp"

namespace llm_proxy::record {

namespace {

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
        out.decode_error = sanitize_utf8(std::move(decoded.error));
    }

    // Cutting a text body may split its last character; drop the fragment rather than
    // turning the whole body into base64.
    if (auto text = take_utf8(bytes, out.truncated)) {
        out.value = std::move(*text);
    } else {
        out.value = sanitize_utf8(base64_encode(bytes));
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

nlohmann::json make_record(const flow& f, const record_options& options,
                           const std::string& proxy_id) {
    return nlohmann::json::parse(render_record(f, options, proxy_id));
}

}  // namespace llm_proxy::record

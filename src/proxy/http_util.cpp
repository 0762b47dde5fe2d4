#include "http_util.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/url/parse.hpp>
#include <nlohmann/json.hpp>
#include <vector>

#include "llm_proxy/util/authority.hpp"

namespace llm_proxy::proxy {

namespace http = boost::beast::http;

namespace {

constexpr std::array<std::string_view, 11> hop_by_hop = {
    "Connection",        "Keep-Alive",        "Proxy-Connection", "Proxy-Authorization", "TE",
    "Trailer",           "Transfer-Encoding", "Upgrade",          "Content-Length",      "Expect",
    "Proxy-Authenticate"};

// True when a Connection header lists `name` (RFC 9110 section 7.6.1). Reads the fields in
// place: no list is built per message.
bool listed_in_connection(const http::fields& fields, std::string_view name) {
    for (auto it = fields.find(http::field::connection);
         it != fields.end() && it->name() == http::field::connection; ++it) {
        for (auto token : http::token_list(it->value())) {
            if (iequals(name, token)) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace

header_list end_to_end_headers(const http::fields& fields) {
    bool has_connection = fields.count(http::field::connection) != 0;
    header_list out;
    for (const auto& f : fields) {
        std::string_view name = f.name_string();
        bool drop = false;
        for (auto h : hop_by_hop) {
            drop = drop || iequals(name, h);
        }
        drop = drop || (has_connection && listed_in_connection(fields, name));
        if (!drop) {
            out.emplace_back(std::string(name), std::string(f.value()));
        }
    }
    return out;
}

void append_headers(http::fields& fields, const header_list& headers) {
    for (const auto& [k, v] : headers) {
        fields.insert(k, v);
    }
}

void erase_header(header_list& headers, std::string_view name) {
    std::erase_if(headers, [&](const auto& kv) { return iequals(kv.first, name); });
}

void append_forwarded_for(header_list& headers, std::string_view client_ip) {
    for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
        if (iequals(it->first, "X-Forwarded-For")) {
            // RFC 7239 section 5.2 style: the list grows by one entry per hop.
            it->second += it->second.empty() ? "" : ", ";
            it->second += client_ip;
            return;
        }
    }
    headers.emplace_back("X-Forwarded-For", std::string(client_ip));
}

std::string error_json(std::string_view code, std::string_view message) {
    nlohmann::json j = {{"error",
                         {{"message", std::string(message)},
                          {"type", "llm_proxy_error"},
                          {"code", std::string(code)}}}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

bool parse_connect_target(std::string_view target, std::string& host, std::uint16_t& port) {
    auto parts = split_host_port(target);
    if (!parts || parts->host.empty() || !parts->has_port) {
        return false;
    }
    auto number = parse_port(parts->port);
    if (!number || *number == 0) {
        return false;
    }
    host = std::move(parts->host);
    port = *number;
    return true;
}

// Fills scheme/host/port/target of an absolute-form request target. Returns an error text.
std::string parse_absolute_target(std::string_view target, request_head& head) {
    auto r = boost::urls::parse_absolute_uri(target);
    if (!r) {
        return "not a proxy request: expected an absolute URL (GET http://host/path) or CONNECT, "
               "got '" +
               std::string(target.substr(0, 200)) + "'";
    }
    head.scheme = to_lower(r->scheme());
    if (head.scheme != "http" && head.scheme != "https") {
        return "unsupported scheme '" + head.scheme + "'";
    }
    if (r->host_type() == boost::urls::host_type::ipv6) {
        head.host = r->host_ipv6_address().to_string();
    } else {
        head.host = to_lower(r->encoded_host());
    }
    if (head.host.empty()) {
        return "missing host in '" + std::string(target.substr(0, 200)) + "'";
    }
    if (r->has_port()) {
        if (r->port_number() == 0) {
            return "bad port in '" + std::string(target.substr(0, 200)) + "'";
        }
        head.port = r->port_number();
    } else {
        head.port = head.scheme == "https" ? 443 : 80;
    }
    head.target = std::string(r->encoded_path());
    if (head.target.empty()) {
        head.target = "/";
    }
    if (r->has_query()) {
        head.target += "?" + std::string(r->encoded_query());
    }
    return {};
}

bool response_has_no_body(std::string_view method, unsigned status) {
    return method == "HEAD" || (status >= 100 && status < 200) || status == 204 || status == 304;
}

bool is_token(std::string_view s) {
    auto tchar = [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    };
    return !s.empty() && std::all_of(s.begin(), s.end(), tchar);
}

bool is_field_value(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u == '\t' || (u >= 0x20 && u != 0x7f);
    });
}

head_scan scan_request_head(std::string_view bytes, std::size_t from) {
    head_scan out;
    std::size_t start = 0;  // the request line, after empty lines
    while (bytes.substr(start, 2) == "\r\n") {
        start += 2;
    }
    for (std::size_t i = std::max(from, start); i < bytes.size(); ++i) {
        if (bytes[i] != '\n') {
            continue;
        }
        if (i == 0 || bytes[i - 1] != '\r') {
            out.state = head_scan::status::bad;
            out.problem = "a line of the request head ends with a bare LF (CRLF required)";
            return out;
        }
        if (i >= start + 3 && bytes.substr(i - 3, 4) == "\r\n\r\n") {
            out.state = head_scan::status::complete;
            out.length = i + 1;
            return out;
        }
    }
    return out;
}

std::string request_head_problem(std::string_view head) {
    bool first = true;
    while (!head.empty()) {
        auto end = head.find("\r\n");
        if (end == std::string_view::npos) {
            return "the request head does not end with an empty line";
        }
        std::string_view line = head.substr(0, end);
        head.remove_prefix(end + 2);
        if (first && line.empty()) {
            continue;  // empty lines before the request line
        }
        if (line.find('\r') != std::string_view::npos) {
            return "a bare CR in the request head";
        }
        if (first) {
            first = false;
            bool ok = std::all_of(line.begin(), line.end(), [](char c) {
                auto u = static_cast<unsigned char>(c);
                return u >= 0x20 && u != 0x7f;
            });
            if (!ok) {
                return "a control character in the request line";
            }
            continue;
        }
        if (line.empty()) {
            return head.empty() ? std::string() : "bytes after the end of the request head";
        }
        if (line.front() == ' ' || line.front() == '\t') {
            return "obsolete line folding (a field line starting with whitespace)";
        }
        auto colon = line.find(':');
        if (colon == std::string_view::npos) {
            return "a field line without a colon";
        }
        std::string_view name = line.substr(0, colon);
        if (!is_token(name)) {
            bool space = !name.empty() && (name.back() == ' ' || name.back() == '\t');
            return space ? "whitespace between a field name and its colon"
                         : "an invalid field name";
        }
        if (!is_field_value(line.substr(colon + 1))) {
            return "a control character (NUL, CR, LF...) in the value of " + std::string(name);
        }
    }
    return "the request head does not end with an empty line";
}

std::vector<std::string> transfer_codings(const http::fields& fields) {
    std::vector<std::string> out;
    for (const auto& field : fields) {
        if (field.name() != http::field::transfer_encoding) {
            continue;  // (the fields are in wire order: same names are not adjacent)
        }
        std::string_view list = field.value();
        while (!list.empty()) {
            auto comma = list.find(',');
            std::string_view element = list.substr(0, comma);
            list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
            element = element.substr(0, element.find(';'));
            while (!element.empty() && (element.front() == ' ' || element.front() == '\t')) {
                element.remove_prefix(1);
            }
            while (!element.empty() && (element.back() == ' ' || element.back() == '\t')) {
                element.remove_suffix(1);
            }
            if (!element.empty()) {
                out.push_back(to_lower(element));
            }
        }
    }
    return out;
}

namespace {

void append_fields(std::string& out, const header_list& headers, head_framing body) {
    for (const auto& [name, value] : headers) {
        if (is_token(name) && is_field_value(value)) {
            out.append(name).append(": ").append(value).append("\r\n");
        }
    }
    if (body.kind == framing::length) {
        out.append("Content-Length: ").append(std::to_string(body.length)).append("\r\n");
    } else if (body.kind == framing::chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
}

}  // namespace

std::string request_head_text(std::string_view method, std::string_view target,
                              const header_list& headers, head_framing body) {
    std::string out;
    out.reserve(256);
    out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    append_fields(out, headers, body);
    out.append("\r\n");
    return out;
}

std::string response_head_text(unsigned version, unsigned status, std::string_view reason,
                               const header_list& headers, head_framing body, bool keep_alive) {
    if (reason.empty() || !is_field_value(reason)) {
        reason = http::obsolete_reason(static_cast<http::status>(status));
    }
    std::string out;
    out.reserve(256);
    out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ")
        .append(std::to_string(status))
        .append(" ")
        .append(reason)
        .append("\r\n");
    append_fields(out, headers, body);
    if (version == 10 && keep_alive) {
        out.append("Connection: keep-alive\r\n");
    } else if (version != 10 && !keep_alive) {
        out.append("Connection: close\r\n");
    }
    out.append("\r\n");
    return out;
}

void shrink_idle_buffer(boost::beast::flat_buffer& buffer) {
    constexpr std::size_t keep = 4 * 1024;
    if (buffer.capacity() > 4 * keep && buffer.size() <= keep) {
        boost::beast::flat_buffer smaller(buffer.max_size());
        smaller.reserve(std::max(keep, buffer.size()));
        smaller.commit(boost::asio::buffer_copy(smaller.prepare(buffer.size()), buffer.data()));
        buffer = std::move(smaller);
    }
}

}  // namespace llm_proxy::proxy

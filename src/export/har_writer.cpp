#include <boost/beast/http/status.hpp>
#include <boost/url/parse.hpp>

#include "json_text.hpp"
#include "llm_proxy/export/har.hpp"
#include "llm_proxy/llm/record_json.hpp"
#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::exporter {

using detail::json_text;

namespace {

bool filtered(std::string_view name) {
    for (const auto& f : record::default_filtered_headers()) {
        if (iequals(f, name)) {
            return true;
        }
    }
    return false;
}

std::string_view header(const std::vector<header_field>& headers, std::string_view name) {
    for (const auto& h : headers) {
        if (iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

void write_headers(json_text& j, const std::vector<header_field>& headers) {
    j.begin_array();
    for (const auto& h : headers) {
        if (!filtered(h.name)) {
            j.begin_object().key("name").string(h.name).key("value").string(h.value).end_object();
        }
    }
    j.end_array();
}

void write_query(json_text& j, std::string_view url) {
    j.begin_array();
    if (auto u = boost::urls::parse_uri_reference(url)) {
        for (auto param : u->params()) {
            j.begin_object().key("name").string(param.key);
            j.key("value").string(param.has_value ? param.value : std::string()).end_object();
        }
    }
    j.end_array();
}

// The body's size in bytes (decoded, as logged).
std::int64_t logged_size(const body_view& b) {
    if (b.base64) {
        auto bytes = body_bytes(b);
        return bytes ? static_cast<std::int64_t>(bytes->size()) : -1;
    }
    return static_cast<std::int64_t>(b.text.size());
}

// Bytes on the wire: known when the body was cut (body_size) or travelled without a
// content coding.
std::int64_t wire_size(const body_view& b, const std::vector<header_field>& headers) {
    if (b.wire_size) {
        return static_cast<std::int64_t>(*b.wire_size);
    }
    auto coding = header(headers, "Content-Encoding");
    if (!coding.empty() && !iequals(trim_space(coding), "identity")) {
        return -1;
    }
    return logged_size(b);
}

void write_request(json_text& j, const flow_view& f) {
    j.begin_object();
    j.key("method").string(f.method.empty() ? std::string_view("GET") : f.method);
    j.key("url").string(f.url);
    j.key("httpVersion").string(f.proto.empty() ? std::string_view("HTTP/1.1") : f.proto);
    j.key("cookies").begin_array().end_array();
    j.key("headers");
    write_headers(j, f.request_headers);
    j.key("queryString");
    write_query(j, f.url);
    const auto& b = f.request_body;
    if (!b.text.empty()) {
        j.key("postData").begin_object();
        j.key("mimeType").string(header(f.request_headers, "Content-Type"));
        j.key("text").string(b.text);
        if (b.base64) {
            j.key("_encoding").string("base64");
        }
        j.end_object();
    }
    j.key("headersSize").number(-1);
    j.key("bodySize").number(wire_size(b, f.request_headers));
    if (b.truncated) {
        j.key("_truncated").boolean(true);
    }
    j.end_object();
}

void write_response(json_text& j, const flow_view& f) {
    j.begin_object();
    if (!f.has_response) {
        // A flow that failed before any response head, as browsers record one.
        j.key("status").number(0).key("statusText").string("").key("httpVersion").string("");
        j.key("cookies").begin_array().end_array().key("headers").begin_array().end_array();
        j.key("content").begin_object().key("size").number(0);
        j.key("mimeType").string("x-unknown").end_object();
        j.key("redirectURL").string("").key("headersSize").number(-1);
        j.key("bodySize").number(-1).end_object();
        return;
    }
    j.key("status").number(f.status);
    auto reason =
        boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(f.status));
    j.key("statusText").string(std::string_view(reason.data(), reason.size()));
    j.key("httpVersion").string("HTTP/1.1");
    j.key("cookies").begin_array().end_array();
    j.key("headers");
    write_headers(j, f.response_headers);
    const auto& b = f.response_body;
    j.key("content").begin_object();
    j.key("size").number(logged_size(b));
    auto type = header(f.response_headers, "Content-Type");
    j.key("mimeType").string(type.empty() ? std::string_view("x-unknown") : type);
    j.key("text").string(b.text);
    if (b.base64) {
        j.key("encoding").string("base64");
    }
    j.end_object();
    j.key("redirectURL").string(header(f.response_headers, "Location"));
    j.key("headersSize").number(-1);
    j.key("bodySize").number(wire_size(b, f.response_headers));
    if (b.truncated) {
        j.key("_truncated").boolean(true);
    }
    j.end_object();
}

}  // namespace

std::string har_header() {
    std::string out;
    json_text j(out);
    j.begin_object().key("log").begin_object().key("version").string("1.2");
    j.key("creator").begin_object().key("name").string("llm_proxy");
    j.key("version").string(LLM_PROXY_VERSION).end_object();
    out += ",\"entries\":[\n";
    return out;
}

std::string har_footer() {
    return "]}}\n";
}

std::string har_entry(const flow_view& f) {
    std::string out;
    json_text j(out);
    double total = f.duration_ms.value_or(0);
    total = total < 0 ? 0 : total;
    double wait = total;
    if (f.llm && f.llm->first_token_ms && *f.llm->first_token_ms >= 0 &&
        *f.llm->first_token_ms <= total) {
        wait = *f.llm->first_token_ms;
    }
    double receive = total - wait;
    j.begin_object();
    j.key("startedDateTime").string(f.timestamp);
    j.key("time").number(0.0 + wait + receive);
    j.key("request");
    write_request(j, f);
    j.key("response");
    write_response(j, f);
    j.key("cache").begin_object().end_object();
    j.key("timings").begin_object();
    j.key("blocked").number(-1).key("dns").number(-1).key("connect").number(-1);
    j.key("ssl").number(-1).key("send").number(0).key("wait").number(wait);
    j.key("receive").number(receive).end_object();
    j.key("_record").string(f.id);
    if (!f.error_kind.empty()) {
        j.key("_error").begin_object().key("kind").string(f.error_kind);
        j.key("message").string(f.error_message).end_object();
    }
    if (f.llm) {
        j.key("_llm");
        if (!f.llm_json.empty()) {
            j.raw(f.llm_json);
        } else {
            j.raw(llm::to_json(*f.llm).dump(-1, ' ', false,
                                            nlohmann::json::error_handler_t::replace));
        }
        if (f.llm_computed) {
            j.key("_llm_computed").boolean(true);
        }
    }
    j.end_object();
    return out;
}

}  // namespace llm_proxy::exporter

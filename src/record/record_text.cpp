// render_record: the traffic log record (docs/log-format.md) written straight to text, members
// in key order.

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "json_writer.hpp"
#include "llm_fields.hpp"
#include "llm_proxy/proxy/host_patterns.hpp"
#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/util/ids.hpp"
#include "record_fields.hpp"

namespace llm_proxy::record {
namespace {

using detail::json_writer;
using detail::sanitize_utf8;
using detail::sanitized;

void headers(json_writer& w, int level, const header_list& list,
             const std::vector<std::string>& filter) {
    std::map<sanitized, std::vector<sanitized>> grouped;
    for (const auto& [name, value] : list) {
        if (!detail::is_filtered(name, filter)) {
            grouped[sanitize_utf8(canonical_header_name(name))].push_back(sanitize_utf8(value));
        }
    }
    json_writer::object o(w, level);
    for (const auto& [name, values] : grouped) {
        o.key(name).string_array(values, o.inner());
    }
}

// The members of one message (request or response) from "body" to "header", which sort
// before the message's other members.
void body_and_header(json_writer::object& o, json_writer& w, const captured_body& body,
                     const header_list& list, bool log_body, bool log_headers,
                     const std::vector<std::string>& filter, std::size_t max_body_log) {
    if (!log_body) {
        o.key("body").string("");
    } else {
        detail::body_text b = detail::prepare_body(body, list, max_body_log);
        o.key("body").string(b.value);
        if (b.decode_error) {
            o.key("body_decode_error").string(*b.decode_error);
        }
        if (b.base64) {
            o.key("body_encoding").string("base64");
        }
        if (b.truncated) {
            o.key("body_size").number(b.total);
            o.key("body_truncated").literal("true");
        }
    }
    o.key("header");
    if (log_headers) {
        headers(w, o.inner(), list, filter);
    } else {
        w.literal("null");
    }
}

// The raw head of a refused request with the values of filtered fields (and always of
// Proxy-Authorization, with their obs-fold continuation lines) replaced by "[filtered]".
std::string redact_raw_head(std::string_view raw, const std::vector<std::string>& filter) {
    std::string out;
    out.reserve(raw.size());
    bool redacting = false;
    while (!raw.empty()) {
        auto end = raw.find('\n');
        std::string_view line = raw.substr(0, end == std::string_view::npos ? raw.size() : end + 1);
        raw.remove_prefix(line.size());
        bool continuation = line.front() == ' ' || line.front() == '\t';
        if (!continuation) {
            auto colon = line.find(':');
            std::string_view name =
                colon == std::string_view::npos ? std::string_view() : line.substr(0, colon);
            while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
                name.remove_suffix(1);
            }
            redacting = !name.empty() &&
                        (iequals(name, "Proxy-Authorization") || detail::is_filtered(name, filter));
            if (redacting) {
                out.append(line.substr(0, colon + 1)).append(" [filtered]");
                if (line.back() == '\n') {
                    out.append(line.ends_with("\r\n") ? "\r\n" : "\n");
                }
                continue;
            }
        } else if (redacting) {
            continue;
        }
        out.append(line);
    }
    return out;
}

}  // namespace

std::string render_record(const flow& f, const record_options& options, const std::string& proxy_id,
                          record_layout layout) {
    std::string out;
    out.reserve(1024 + f.request_body.data.size() + f.response_body.data.size());
    append_record(out, f, options, proxy_id, layout);
    return out;
}

void append_record(std::string& out, const flow& f, const record_options& options,
                   const std::string& proxy_id, record_layout layout) {
    const bool line = layout == record_layout::line;
    json_writer w(out, line);
    // A flow that failed before its request line was parsed has no host to build a URL from.
    // A blind tunnel has no URL: its CONNECT target stands for it.
    sanitized url = f.request.host.empty() ? sanitized()
                    : f.tunnel ? sanitize_utf8(host_port_text(f.request.host, f.request.port))
                               : sanitize_utf8(f.request.url());
    {
        json_writer::object record(w, 0);
        if (options.log_connection_stats) {
            json_writer::object stats(record.key("connection_stats"), record.inner());
            if (!f.client_address.empty()) {
                stats.key("client_address").string(sanitize_utf8(f.client_address));
            }
            stats.key("duration_ms")
                .number(std::chrono::duration_cast<std::chrono::milliseconds>(f.duration).count());
            if (!proxy_id.empty()) {
                stats.key("proxy_id").string(sanitize_utf8(proxy_id));
            }
            if (!url.empty()) {
                stats.key("url").string(url);
            }
        }
        // Also set when the response started but then broke off (e.g. upstream reset mid-body).
        if ((!f.response && !f.tunnel) || f.error_kind != flow_error::none) {
            json_writer::object error(record.key("error"), record.inner());
            error.key("kind").string(sanitize_utf8(to_string(f.error_kind)));
            error.key("message").string(sanitize_utf8(f.error));
        }
        if (line) {
            // A line of a segment has no file name to carry the flow id.
            record.key("id").string(sanitize_utf8(f.id));
        }
        if (f.llm) {
            write_llm(record.key("llm"), *f.llm, record.inner());
        }
        record.key("object_type").string("llm_proxy_traffic_log");
        if (f.rejected) {
            json_writer::object r(record.key("rejected"), record.inner());
            if (!f.rejected->raw_head.empty() && options.log_request_headers) {
                r.key("raw_head")
                    .string(sanitize_utf8(
                        redact_raw_head(f.rejected->raw_head, options.filter_request_headers)));
                if (f.rejected->raw_head_truncated) {
                    r.key("raw_head_truncated").literal("true");
                }
            }
            r.key("status").number(f.rejected->status);
            if (!f.rejected->target.empty()) {
                r.key("target").string(sanitize_utf8(f.rejected->target));
            }
        }
        {
            json_writer::object request(record.key("request"), record.inner());
            body_and_header(request, w, f.request_body, f.request.headers, options.log_request_body,
                            options.log_request_headers, options.filter_request_headers,
                            options.max_body_log);
            if (!f.request.method.empty()) {
                request.key("method").string(sanitize_utf8(f.request.method));
            }
            if (f.request.version == 10) {
                request.key("proto").string("HTTP/1.0");
            } else {
                request.key("proto").string("HTTP/1.1");
            }
            if (!url.empty()) {
                request.key("url").string(url);
            }
        }
        if (f.response) {
            json_writer::object response(record.key("response"), record.inner());
            body_and_header(response, w, f.response_body, f.response->headers,
                            options.log_response_body, options.log_response_headers,
                            options.filter_response_headers, options.max_body_log);
            response.key("status").number(f.response->status);
        }
        record.key("schema").string("v2");
        if (!f.tags.empty()) {
            std::map<sanitized, sanitized> tags;
            for (const auto& [k, v] : f.tags) {
                tags[sanitize_utf8(k)] = sanitize_utf8(v);
            }
            json_writer::object t(record.key("tags"), record.inner());
            for (const auto& [k, v] : tags) {
                t.key(k).string(v);
            }
        }
        record.key("timestamp").string(sanitize_utf8(format_timestamp(f.started_at)));
        if (f.tunnel) {
            json_writer::object t(record.key("tunnel"), record.inner());
            t.key("bytes_from_client").number(f.tunnel->bytes_from_client);
            t.key("bytes_from_upstream").number(f.tunnel->bytes_from_upstream);
            t.key("end").string(sanitize_utf8(f.tunnel->end));
            t.key("host").string(sanitize_utf8(f.request.host));
            t.key("port").number(f.request.port);
            if (!f.tunnel->sni.empty()) {
                t.key("sni").string(sanitize_utf8(f.tunnel->sni));
            }
        }
    }
    out.push_back('\n');
}

}  // namespace llm_proxy::record

#include "record_reference.hpp"

#include <chrono>

#include "llm_proxy/llm/record_json.hpp"
#include "llm_proxy/util/ids.hpp"
#include "record/record_fields.hpp"

namespace llm_proxy::record::test {

namespace {

using nlohmann::json;

std::string text(const detail::sanitized& s) {
    return std::string(s.view());
}

std::string sanitized_text(std::string_view s) {
    return text(detail::sanitize_utf8(s));
}

json headers_to_json(const header_list& headers, const std::vector<std::string>& filter) {
    json out = json::object();
    for (const auto& [name, value] : headers) {
        if (detail::is_filtered(name, filter)) {
            continue;
        }
        json& values = out[sanitized_text(canonical_header_name(name))];
        if (values.is_null()) {
            values = json::array();
        }
        values.push_back(sanitized_text(value));
    }
    return out;
}

void add_body(json& obj, const captured_body& body, const header_list& headers, bool log,
              std::size_t max_body_log) {
    if (!log) {
        obj["body"] = "";
        return;
    }
    detail::body_text b = detail::prepare_body(body, headers, max_body_log);
    if (b.decode_error) {
        obj["body_decode_error"] = text(*b.decode_error);
    }
    obj["body"] = text(b.value);
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
        obj[key] = sanitized_text(value);
    }
}

// The summary with every string sanitized as the record sanitizes strings (per bad byte);
// nlohmann's own replacement of bad UTF-8 works per sequence.
llm::summary sanitized_summary(llm::summary s) {
    auto fix = [](std::string& v) { v = sanitized_text(v); };
    auto fix_opt = [&](std::optional<std::string>& v) {
        if (v) {
            fix(*v);
        }
    };
    auto& c = s.call;
    fix(c.request_model);
    fix(c.response_model);
    fix(c.response_id);
    fix_opt(c.error);
    fix(s.priced_as);
    for (auto& a : c.answers) {
        fix(a.role);
        fix_opt(a.content);
        fix_opt(a.refusal);
        fix_opt(a.reasoning);
        fix_opt(a.finish_reason);
        for (auto& t : a.tool_calls) {
            fix(t.id);
            fix(t.type);
            fix(t.name);
            fix(t.arguments);
        }
    }
    return s;
}

}  // namespace

json reference_record(const flow& f, const record_options& options, const std::string& proxy_id) {
    json record = json::object();
    record["object_type"] = "llm_proxy_traffic_log";
    record["schema"] = "v2";
    if (f.llm) {
        record["llm"] = llm::to_json(sanitized_summary(*f.llm));
    }
    record["timestamp"] = format_timestamp(f.started_at);

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

    if (!f.response || f.error_kind != flow_error::none) {
        record["error"] = {{"kind", std::string(to_string(f.error_kind))},
                           {"message", sanitized_text(f.error)}};
    }

    if (!f.tags.empty()) {
        json tags = json::object();
        for (const auto& [k, v] : f.tags) {
            tags[sanitized_text(k)] = sanitized_text(v);
        }
        record["tags"] = std::move(tags);
    }
    return record;
}

std::string reference_text(const flow& f, const record_options& options,
                           const std::string& proxy_id) {
    return reference_record(f, options, proxy_id).dump(2, ' ', false) + "\n";
}

}  // namespace llm_proxy::record::test

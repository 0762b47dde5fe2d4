// render_record: the traffic log record written straight to text. The layout is that of
// nlohmann::json::dump(2) on make_record's tree: members sorted by key, two-space indent,
// ": " after keys, strings escaped as dump does with ensure_ascii off. A unit test compares
// the two byte for byte.

#include <charconv>
#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/util/ids.hpp"
#include "record_fields.hpp"

namespace llm_proxy::record {
namespace {

class writer {
  public:
    explicit writer(std::string& out) : out_(out) {}

    void string(std::string_view s) {
        out_.push_back('"');
        std::size_t run = 0;  // start of the bytes not yet copied
        for (std::size_t i = 0; i < s.size(); ++i) {
            auto c = static_cast<unsigned char>(s[i]);
            if (c >= 0x20 && c != '"' && c != '\\') {
                continue;
            }
            out_.append(s.data() + run, i - run);
            run = i + 1;
            switch (c) {
                case '"':
                    out_ += "\\\"";
                    break;
                case '\\':
                    out_ += "\\\\";
                    break;
                case '\b':
                    out_ += "\\b";
                    break;
                case '\f':
                    out_ += "\\f";
                    break;
                case '\n':
                    out_ += "\\n";
                    break;
                case '\r':
                    out_ += "\\r";
                    break;
                case '\t':
                    out_ += "\\t";
                    break;
                default: {
                    static constexpr char hex[] = "0123456789abcdef";
                    out_ += "\\u00";
                    out_.push_back(hex[c >> 4]);
                    out_.push_back(hex[c & 0xf]);
                }
            }
        }
        out_.append(s.data() + run, s.size() - run);
        out_.push_back('"');
    }

    template <class Int>
    void number(Int v) {
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, end);
    }

    void literal(std::string_view s) { out_ += s; }

    // Members must be added in key order (as std::map sorts them in nlohmann::json).
    class object {
      public:
        object(writer& w, int level) : w_(w), level_(level) {}
        ~object() {
            if (first_) {
                w_.out_ += "{}";
            } else {
                w_.out_.push_back('\n');
                w_.indent(level_);
                w_.out_.push_back('}');
            }
        }
        object(const object&) = delete;
        object& operator=(const object&) = delete;

        writer& key(std::string_view k) {
            w_.out_ += first_ ? "{\n" : ",\n";
            first_ = false;
            w_.indent(level_ + 1);
            w_.string(k);
            w_.out_ += ": ";
            return w_;
        }
        int inner() const { return level_ + 1; }

      private:
        writer& w_;
        int level_;
        bool first_ = true;
    };

    void string_array(const std::vector<std::string>& values, int level) {
        if (values.empty()) {
            out_ += "[]";
            return;
        }
        out_ += "[\n";
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (i > 0) {
                out_ += ",\n";
            }
            indent(level + 1);
            string(values[i]);
        }
        out_.push_back('\n');
        indent(level);
        out_.push_back(']');
    }

  private:
    void indent(int level) { out_.append(static_cast<std::size_t>(level) * 2, ' '); }

    std::string& out_;
};

void headers(writer& w, int level, const header_list& list,
             const std::vector<std::string>& filter) {
    std::map<std::string, std::vector<std::string>> grouped;
    for (const auto& [name, value] : list) {
        if (!detail::is_filtered(name, filter)) {
            grouped[detail::sanitize_utf8(canonical_header_name(name))].push_back(
                detail::sanitize_utf8(value));
        }
    }
    writer::object o(w, level);
    for (const auto& [name, values] : grouped) {
        o.key(name).string_array(values, o.inner());
    }
}

// The members of one message (request or response) from "body" to "header", which sort
// before the message's other members.
void body_and_header(writer::object& o, writer& w, const captured_body& body,
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

}  // namespace

std::string render_record(const flow& f, const record_options& options,
                          const std::string& proxy_id) {
    std::string out;
    out.reserve(1024 + f.request_body.data.size() + f.response_body.data.size());
    writer w(out);
    std::string url = f.request.host.empty() ? std::string() : f.request.url();
    std::string safe_url = url.empty() ? std::string() : detail::sanitize_utf8(url);
    {
        writer::object record(w, 0);
        if (options.log_connection_stats) {
            writer::object stats(record.key("connection_stats"), record.inner());
            if (!f.client_address.empty()) {
                stats.key("client_address").string(detail::sanitize_utf8(f.client_address));
            }
            stats.key("duration_ms")
                .number(std::chrono::duration_cast<std::chrono::milliseconds>(f.duration).count());
            if (!proxy_id.empty()) {
                stats.key("proxy_id").string(detail::sanitize_utf8(proxy_id));
            }
            if (!safe_url.empty()) {
                stats.key("url").string(safe_url);
            }
        }
        if (!f.response || f.error_kind != flow_error::none) {
            writer::object error(record.key("error"), record.inner());
            error.key("kind").string(std::string(to_string(f.error_kind)));
            error.key("message").string(detail::sanitize_utf8(f.error));
        }
        record.key("object_type").string("llm_proxy_traffic_log");
        {
            writer::object request(record.key("request"), record.inner());
            body_and_header(request, w, f.request_body, f.request.headers, options.log_request_body,
                            options.log_request_headers, options.filter_request_headers,
                            options.max_body_log);
            if (!f.request.method.empty()) {
                request.key("method").string(detail::sanitize_utf8(f.request.method));
            }
            request.key("proto").string(f.request.version == 10 ? "HTTP/1.0" : "HTTP/1.1");
            if (!safe_url.empty()) {
                request.key("url").string(safe_url);
            }
        }
        if (f.response) {
            writer::object response(record.key("response"), record.inner());
            body_and_header(response, w, f.response_body, f.response->headers,
                            options.log_response_body, options.log_response_headers,
                            options.filter_response_headers, options.max_body_log);
            response.key("status").number(f.response->status);
        }
        record.key("schema").string("v2");
        if (!f.tags.empty()) {
            std::map<std::string, std::string> tags;
            for (const auto& [k, v] : f.tags) {
                tags[detail::sanitize_utf8(k)] = detail::sanitize_utf8(v);
            }
            writer::object t(record.key("tags"), record.inner());
            for (const auto& [k, v] : tags) {
                t.key(k).string(v);
            }
        }
        record.key("timestamp").string(format_timestamp(f.started_at));
    }
    out.push_back('\n');
    return out;
}

}  // namespace llm_proxy::record

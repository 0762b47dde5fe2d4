// A finished flow as an OTLP span (JSON or protobuf encoding).
#include "llm_proxy/otlp/span.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "../export/json_text.hpp"  // JSON strings escaped
#include "../record/utf8.hpp"
#include "llm_proxy/export/conversation.hpp"
#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/record/body_decoder.hpp"
#include "llm_proxy/util/text.hpp"
#include "protobuf.hpp"
#include "span_fields.hpp"
#include "text_sink.hpp"

namespace llm_proxy::otlp {

namespace {

using exporter::detail::append_json_string;
using nlohmann::json;

bool is_lower_hex(std::string_view s) {
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool all_zero(std::string_view s) {
    return s.find_first_not_of('0') == std::string_view::npos;
}

// Writes 2 * `bytes` lowercase hex digits of random bytes to `out`, never all zero.
void random_hex(char* out, std::size_t bytes) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char digits[] = "0123456789abcdef";
    const std::string_view text(out, 2 * bytes);
    do {
        for (std::size_t i = 0; i < bytes; i += 8) {
            auto v = rng();
            for (std::size_t b = 0; b < 8 && i + b < bytes; ++b) {
                out[2 * (i + b)] = digits[(v >> 4) & 0xf];
                out[2 * (i + b) + 1] = digits[v & 0xf];
                v >>= 8;
            }
        }
    } while (all_zero(text));
}

// Cuts `s` to at most `limit` bytes without splitting a UTF-8 sequence.
std::string_view cut(std::string_view s, std::size_t limit) {
    if (s.size() <= limit) {
        return s;
    }
    std::size_t n = limit;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
        --n;
    }
    return s.substr(0, n);
}

// The JSON encoding of a span (OTLP/HTTP JSON: lowerCamelCase names, ids as hex, 64-bit
// integers as strings), written piece by piece into a text_sink. The member names, attribute
// keys and value types are this file's ASCII constants, so only values are escaped.
class json_span {
  public:
    json_span(text_sink& out, std::size_t max_length) : out_(out), max_length_(max_length) {}
    // Always the first member.
    void ids(std::string_view trace_hex, std::string_view span_hex, std::string_view parent_hex) {
        out_.literal("{\"traceId\":\"");
        out_.put(trace_hex);  // lowercase hex: checked by parse_traceparent, or made here
        out_.literal("\",\"spanId\":\"");
        out_.put(span_hex);
        out_.put('"');
        if (!parent_hex.empty()) {
            out_.literal(",\"parentSpanId\":\"");
            out_.put(parent_hex);
            out_.put('"');
        }
    }
    void trace_state(std::string_view state) {
        out_.literal(",\"traceState\":");
        string(state);
    }
    void flags(std::uint32_t flags) {
        out_.literal(",\"flags\":");
        decimal(flags);
    }
    void name(std::string_view name) {
        out_.literal(",\"name\":");
        string(name);
    }
    void kind_client() { out_.literal(",\"kind\":3"); }  // SPAN_KIND_CLIENT
    void times(std::uint64_t start, std::uint64_t end) {
        out_.literal(",\"startTimeUnixNano\":\"");
        decimal(start);
        out_.literal("\",\"endTimeUnixNano\":\"");
        decimal(end);
        out_.put('"');
    }
    void begin_attributes() { out_.literal(",\"attributes\":["); }
    void end_attributes() { out_.put(']'); }
    void status(unsigned code, std::string_view message) {
        out_.literal(",\"status\":{");  // empty: STATUS_CODE_UNSET
        if (code != 0) {
            out_.literal("\"code\":");
            decimal(code);
        }
        if (!message.empty()) {
            if (code != 0) {
                out_.put(',');
            }
            out_.literal("\"message\":");
            string(message);
        }
        out_.put('}');
    }
    void finish() { out_.put('}'); }

    void text(std::string_view key, std::string_view value) {
        begin(key, "\",\"value\":{\"stringValue\":");
        string(cut(value, max_length_));
        out_.literal("}}");
    }
    void integer(std::string_view key, std::uint64_t value) {
        begin(key, "\",\"value\":{\"intValue\":\"");
        decimal(value);
        out_.literal("\"}}");
    }
    void number(std::string_view key, double value) {
        begin(key, "\",\"value\":{\"doubleValue\":");
        if (std::isfinite(value)) {
            char* at = out_.room(32);
            out_.commit(static_cast<std::size_t>(std::to_chars(at, at + 32, value).ptr - at));
        } else {
            out_.literal("null");
        }
        out_.literal("}}");
    }
    void boolean(std::string_view key, bool value) {
        begin(key, "\",\"value\":{\"boolValue\":");
        if (value) {
            out_.literal("true}}");
        } else {
            out_.literal("false}}");
        }
    }
    // An array of the strings `each` gives (it calls its argument with each), if any.
    template <class Each>
    void texts(std::string_view key, Each each) {
        bool any = false;
        each([&](std::string_view value) {
            if (!any) {
                begin(key, "\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":");
            } else {
                out_.literal(",{\"stringValue\":");
            }
            any = true;
            string(cut(value, max_length_));
            out_.put('}');
        });
        if (any) {
            out_.literal("]}}}");
        }
    }

  private:
    // The start of an attribute (a KeyValue) up to its value: `rest` closes the key and opens
    // the value.
    template <std::size_t N>
    void begin(std::string_view key, const char (&rest)[N]) {
        if (first_) {
            out_.literal("{\"key\":\"");
            first_ = false;
        } else {
            out_.literal(",{\"key\":\"");
        }
        out_.put(key);
        out_.literal(rest);
    }
    void decimal(std::uint64_t v) {
        char* at = out_.room(20);
        out_.commit(static_cast<std::size_t>(std::to_chars(at, at + 20, v).ptr - at));
    }
    // A JSON string. Most values are ASCII with nothing to escape: copied as they are.
    void string(std::string_view s) {
        if (find_json_special(s, 0, true) == s.size()) {
            char* at = out_.room(s.size() + 2);
            at[0] = '"';
            if (!s.empty()) {  // an empty view's data() may be null
                std::memcpy(at + 1, s.data(), s.size());
            }
            at[s.size() + 1] = '"';
            out_.commit(s.size() + 2);
            return;
        }
        thread_local std::string escaped;
        escaped.clear();
        append_json_string(escaped, s);
        out_.put(escaped);
        if (escaped.capacity() > 64u << 10) {
            std::string().swap(escaped);
        }
    }

    text_sink& out_;
    std::size_t max_length_;
    bool first_ = true;
};

// A protobuf string field: its bytes when they are UTF-8 (as proto3 demands), else U+FFFD for
// each byte that is not, as the JSON encoding does.
void string_field(std::string& out, unsigned field, std::string_view value) {
    // Most values (names, ids, URLs, numbers) are ASCII: checked eight bytes at a time.
    std::size_t i = 0;
    for (; i + 8 <= value.size(); i += 8) {
        std::uint64_t word;
        std::memcpy(&word, value.data() + i, sizeof word);
        if (word & 0x8080808080808080ull) {
            break;
        }
    }
    while (i < value.size() && static_cast<unsigned char>(value[i]) < 0x80) {
        ++i;
    }
    if (i == value.size() || record::detail::is_valid_utf8(value.substr(i))) {
        protobuf::bytes_field(out, field, value);
    } else {
        protobuf::bytes_field(out, field, record::detail::sanitize_utf8(value).view());
    }
}

// The protobuf encoding of a span (opentelemetry/proto/trace/v1/trace.proto), written as one
// `spans` field (2) of a ScopeSpans message, so that a batch is its spans' bytes joined.
class proto_span {
  public:
    proto_span(std::string& out, std::size_t max_length)
        : out_(out), max_length_(max_length), span_(out, 2) {}
    void ids(std::string_view trace_hex, std::string_view span_hex, std::string_view parent_hex) {
        hex_bytes(1, trace_hex);
        hex_bytes(2, span_hex);
        if (!parent_hex.empty()) {
            hex_bytes(4, parent_hex);
        }
    }
    void trace_state(std::string_view state) { string(3, state); }
    void flags(std::uint32_t flags) { protobuf::fixed32_field(out_, 16, flags); }
    void name(std::string_view name) { string(5, name); }
    void kind_client() { protobuf::varint_field(out_, 6, 3); }
    void times(std::uint64_t start, std::uint64_t end) {
        protobuf::fixed64_field(out_, 7, start);
        protobuf::fixed64_field(out_, 8, end);
    }
    void begin_attributes() {}
    void end_attributes() {}
    void status(unsigned code, std::string_view message) {
        if (code == 0 && message.empty()) {
            return;  // STATUS_CODE_UNSET, the default
        }
        protobuf::nested st(out_, 15);
        if (!message.empty()) {
            string(2, message);
        }
        if (code != 0) {
            protobuf::varint_field(out_, 3, code);
        }
    }
    void finish() { span_.close(); }

    // KeyValue (field 9 of Span): key (1) and an AnyValue (2).
    void text(std::string_view key, std::string_view value) {
        protobuf::nested kv(out_, 9);
        protobuf::bytes_field(out_, 1, key);  // this file's ASCII constants
        protobuf::nested any(out_, 2);
        string(1, cut(value, max_length_));
    }
    void integer(std::string_view key, std::uint64_t value) {
        protobuf::nested kv(out_, 9);
        protobuf::bytes_field(out_, 1, key);  // this file's ASCII constants
        protobuf::nested any(out_, 2);
        protobuf::varint_field(out_, 3, value);
    }
    void number(std::string_view key, double value) {
        protobuf::nested kv(out_, 9);
        protobuf::bytes_field(out_, 1, key);  // this file's ASCII constants
        protobuf::nested any(out_, 2);
        protobuf::double_field(out_, 4, value);
    }
    void boolean(std::string_view key, bool value) {
        protobuf::nested kv(out_, 9);
        protobuf::bytes_field(out_, 1, key);  // this file's ASCII constants
        protobuf::nested any(out_, 2);
        protobuf::varint_field(out_, 2, value ? 1 : 0);
    }
    template <class Each>
    void texts(std::string_view key, Each each) {
        bool any = false;
        each([&](std::string_view) { any = true; });
        if (!any) {
            return;
        }
        protobuf::nested kv(out_, 9);
        protobuf::bytes_field(out_, 1, key);  // this file's ASCII constants
        protobuf::nested any_value(out_, 2);
        protobuf::nested array(out_, 5);  // ArrayValue
        each([&](std::string_view value) {
            protobuf::nested element_value(out_, 1);
            string(1, cut(value, max_length_));
        });
    }

  private:
    void string(unsigned field, std::string_view value) { string_field(out_, field, value); }
    void hex_bytes(unsigned field, std::string_view hex) {
        protobuf::tag(out_, field, protobuf::length_type);
        protobuf::varint(out_, hex.size() / 2);
        for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
            out_ += static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1]));
        }
    }
    static int nibble(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }
    std::string& out_;
    std::size_t max_length_;
    protobuf::nested span_;
};

// Query values of parameters that carry credentials (Gemini's ?key=, signed URLs) are
// replaced with REDACTED, as the HTTP conventions ask for url.full.
bool is_secret_parameter(std::string_view name) {
    std::string n = to_lower(name);
    for (const char* word : {"key", "token", "sig", "secret", "password", "auth", "credential"}) {
        if (n.find(word) != std::string::npos) {
            return true;
        }
    }
    return false;
}

// The request's URL into `out` (replacing its text), secret query values redacted.
void redacted_url(std::string& out, const span_fields& r) {
    out.assign(r.scheme);
    out += "://";
    const bool ipv6 = r.host.find(':') != std::string::npos;
    if (ipv6) {
        out += '[';
    }
    out += r.host;
    if (ipv6) {
        out += ']';
    }
    if (!((r.scheme == "https" && r.port == 443) || (r.scheme == "http" && r.port == 80)) &&
        r.port != 0) {
        char port[8];
        out += ':';
        out.append(port, std::to_chars(port, port + sizeof port, r.port).ptr);
    }
    auto q = r.target.find('?');
    if (q == std::string_view::npos) {
        out += r.target;
        return;
    }
    out += r.target.substr(0, q + 1);
    std::string_view query = r.target.substr(q + 1);
    bool first = true;
    while (!query.empty()) {
        auto amp = query.find('&');
        auto param = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (!first) {
            out += '&';
        }
        first = false;
        auto eq = param.find('=');
        if (eq != std::string_view::npos && is_secret_parameter(param.substr(0, eq))) {
            out += param.substr(0, eq);
            out += "=REDACTED";
        } else {
            out += param;
        }
    }
}

// A buffer of this thread, for text a span holds only while it is written: reused, so that
// it costs no allocation per span (let go after a very long value).
class scratch {
  public:
    explicit scratch(std::string& buffer) : buffer_(buffer) { buffer_.clear(); }
    ~scratch() {
        if (buffer_.capacity() > 64u << 10) {
            std::string().swap(buffer_);
        }
    }
    scratch(const scratch&) = delete;
    scratch& operator=(const scratch&) = delete;
    std::string& text() { return buffer_; }

  private:
    std::string& buffer_;
};

json text_part(std::string_view text) {
    return json{{"type", "text"}, {"content", text}};
}

// A message of the conversation in the GenAI conventions' shape: role and parts.
json message_json(const exporter::message& m) {
    json parts = json::array();
    for (const auto& p : m.content) {
        switch (p.k) {
            case exporter::part::kind::text:
                if (m.role == exporter::role::tool) {
                    parts.push_back(json{{"type", "tool_call_response"},
                                         {"id", m.tool_call_id},
                                         {"response", p.text}});
                } else {
                    parts.push_back(text_part(p.text));
                }
                break;
            case exporter::part::kind::image:
                parts.push_back(json{{"type", "uri"}, {"modality", "image"}, {"uri", p.url}});
                break;
            case exporter::part::kind::reasoning:
                parts.push_back(json{{"type", "reasoning"}, {"content", p.text}});
                break;
            case exporter::part::kind::other:
                parts.push_back(json{{"type", p.type}, {"content", p.raw}});
                break;
        }
    }
    for (const auto& c : m.tool_calls) {
        parts.push_back(json{
            {"type", "tool_call"}, {"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
    }
    if (m.refusal) {
        parts.push_back(json{{"type", "refusal"}, {"content", *m.refusal}});
    }
    const char* role = exporter::to_string(m.role);
    return json{{"role", role}, {"parts", std::move(parts)}};
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

template <class Span>
void add_content(Span& a, const flow& f, const llm::summary& s) {
    if (!f.request_body.data.empty() && !f.request_body.truncated) {
        auto encoding = find_header(f.request.headers, "content-encoding");
        auto body = record::decode_body(encoding.value_or(""), f.request_body.data, 64u << 20);
        std::string why;
        if (body.ok && !body.truncated) {
            if (auto c = exporter::read_conversation(s.call.api, body.data, why)) {
                json system = json::array();
                json input = json::array();
                for (const auto& m : c->messages) {
                    if (m.role == exporter::role::system || m.role == exporter::role::developer) {
                        for (const auto& p : m.content) {
                            if (p.k == exporter::part::kind::text) {
                                system.push_back(text_part(p.text));
                            }
                        }
                    } else {
                        input.push_back(message_json(m));
                    }
                }
                if (!system.empty()) {
                    a.text("gen_ai.system_instructions", dump(system));
                }
                a.text("gen_ai.input.messages", dump(input));
            }
        }
    }
    json output = json::array();
    for (const auto& answer : s.call.answers) {
        json parts = json::array();
        if (answer.reasoning) {
            parts.push_back(json{{"type", "reasoning"}, {"content", *answer.reasoning}});
        }
        if (answer.content) {
            parts.push_back(text_part(*answer.content));
        }
        if (answer.refusal) {
            parts.push_back(json{{"type", "refusal"}, {"content", *answer.refusal}});
        }
        for (const auto& c : answer.tool_calls) {
            parts.push_back(json{
                {"type", "tool_call"}, {"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
        }
        json m{{"role", answer.role}, {"parts", std::move(parts)}};
        if (answer.finish_reason) {
            m["finish_reason"] = *answer.finish_reason;
        }
        output.push_back(std::move(m));
    }
    if (!output.empty()) {
        a.text("gen_ai.output.messages", dump(output));
    }
}

template <class Span>
void add_llm(Span& a, const span_fields& s, const flow* content) {
    a.text("gen_ai.operation.name", operation_name(s.api));
    a.text("gen_ai.provider.name", provider_name(s.provider));
    if (!s.request_model.empty()) {
        a.text("gen_ai.request.model", s.request_model);
    }
    if (!s.response_model.empty()) {
        a.text("gen_ai.response.model", s.response_model);
    }
    if (!s.response_id.empty()) {
        a.text("gen_ai.response.id", s.response_id);
    }
    a.texts("gen_ai.response.finish_reasons", [&](auto each) { s.each_finish_reason(each); });
    a.boolean("gen_ai.request.stream", s.stream);
    static constexpr const char* counts[] = {
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
    };
    for (std::size_t i = 0; i < std::size(counts); ++i) {
        if (auto v = s.usage[i]) {
            a.integer(counts[i], *v);
        }
    }
    if (s.cost_usd) {
        a.number("llm_proxy.cost_usd", *s.cost_usd);
    }
    if (s.saved_usd) {
        a.number("llm_proxy.cost_saved_usd", *s.saved_usd);
    }
    if (s.first_token_ms) {
        a.number("llm_proxy.time_to_first_token_s", *s.first_token_ms / 1000.0);
    }
    if (s.incomplete) {
        a.boolean("llm_proxy.llm.incomplete", true);
    }
    if (content != nullptr && content->llm) {
        add_content(a, *content, *content->llm);
    }
}

// The span, in either encoding (json_span, proto_span), from the fields of a finished flow;
// `content` is the flow itself when its messages go in too (--otlp-content).
template <class Span>
void write_span(Span& w, const span_fields& s, const span_options& o, const flow* content) {
    std::optional<trace_context> parent;
    if (!s.traceparent.empty()) {
        parent = parse_traceparent(trim_space(s.traceparent));
    }
    char ids[48];  // a new trace id, then the span's id
    random_hex(ids + 32, 8);
    if (!parent) {
        random_hex(ids, 16);
    }
    w.ids(parent ? std::string_view(parent->trace_id) : std::string_view(ids, 32),
          std::string_view(ids + 32, 16),
          parent ? std::string_view(parent->parent_id) : std::string_view{});
    if (parent) {
        if (!s.tracestate.empty()) {
            w.trace_state(cut(trim_space(s.tracestate), o.max_attribute_length));
        }
        // The W3C trace flags, and SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE (0x100) with
        // SPAN_FLAGS_CONTEXT_IS_REMOTE (0x200): the parent ran in the client's process.
        w.flags(0x300 | parent->flags);
    }
    thread_local std::string text_buffer;
    scratch text(text_buffer);
    std::string& name = text.text();
    if (s.llm) {
        name = operation_name(s.api);
        if (!s.request_model.empty()) {
            name += ' ';
            name += s.request_model;
        }
    } else {
        name = s.method.empty() ? std::string_view("HTTP") : s.method;
    }
    w.name(cut(name, o.max_attribute_length));
    w.kind_client();
    w.times(static_cast<std::uint64_t>(s.start_ns),
            static_cast<std::uint64_t>(s.start_ns + s.duration_ns));

    w.begin_attributes();
    auto& a = w;
    if (s.llm) {
        add_llm(a, s, o.content ? content : nullptr);
    }
    if (!s.method.empty()) {
        a.text("http.request.method", s.method);
    }
    if (!s.host.empty()) {
        a.text("server.address", s.host);
        a.integer("server.port", s.port);
    }
    if (!s.tunnel && !s.host.empty()) {
        redacted_url(text.text(), s);
        a.text("url.full", text.text());
    }
    a.text("network.protocol.version", s.http10 ? "1.0" : "1.1");
    if (s.status != 0) {
        a.integer("http.response.status_code", s.status);
    }
    if (!s.tunnel) {
        a.integer("http.request.body.size", s.request_bytes);
        a.integer("http.response.body.size", s.response_bytes);
    } else {
        a.integer("llm_proxy.tunnel.bytes_from_client", s.tunnel_from_client);
        a.integer("llm_proxy.tunnel.bytes_from_upstream", s.tunnel_from_upstream);
        a.text("llm_proxy.tunnel.end", s.tunnel_end);
    }
    a.text("llm_proxy.flow_id", s.flow_id);
    if (!s.cache.empty()) {
        a.text("llm_proxy.cache", s.cache);
    }
    char digits[12];
    std::string_view error;
    if (s.error_kind != flow_error::none) {
        error = to_string(s.error_kind);
    } else if (s.error_status != 0) {
        error = std::string_view(
            digits,
            static_cast<std::size_t>(
                std::to_chars(digits, digits + sizeof digits, s.error_status).ptr - digits));
    }
    if (!error.empty()) {
        a.text("error.type", error);
    }
    w.end_attributes();
    // STATUS_CODE_ERROR (2) with the proxy's message, or unset.
    w.status(error.empty() ? 0 : 2,
             error.empty() ? std::string_view{} : cut(s.error, o.max_attribute_length));
    w.finish();
}

}  // namespace

std::optional<trace_context> parse_traceparent(std::string_view v) {
    // version "-" trace-id "-" parent-id "-" flags; a later version may append "-" fields.
    if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') {
        return std::nullopt;
    }
    auto version = v.substr(0, 2);
    if (!is_lower_hex(version) || version == "ff" || (version == "00" && v.size() != 55) ||
        (v.size() > 55 && v[55] != '-')) {
        return std::nullopt;
    }
    trace_context t;
    t.trace_id = std::string(v.substr(3, 32));
    t.parent_id = std::string(v.substr(36, 16));
    auto flags = v.substr(53, 2);
    if (!is_lower_hex(t.trace_id) || !is_lower_hex(t.parent_id) || !is_lower_hex(flags) ||
        all_zero(t.trace_id) || all_zero(t.parent_id)) {
        return std::nullopt;
    }
    t.flags = static_cast<std::uint8_t>(std::stoul(std::string(flags), nullptr, 16));
    return t;
}

std::string random_trace_id() {
    char id[32];
    random_hex(id, 16);
    return std::string(id, sizeof id);
}
std::string random_span_id() {
    char id[16];
    random_hex(id, 8);
    return std::string(id, sizeof id);
}

const char* operation_name(llm::api a) {
    switch (a) {
        case llm::api::chat_completions:
        case llm::api::responses:
        case llm::api::messages:
            return "chat";
        case llm::api::completions:
            return "text_completion";
        case llm::api::embeddings:
            return "embeddings";
        case llm::api::generate_content:
            return "generate_content";
    }
    return "chat";
}

const char* provider_name(llm::provider p) {
    switch (p) {
        case llm::provider::openai:
            return "openai";
        case llm::provider::anthropic:
            return "anthropic";
        case llm::provider::google:
            return "gcp.gemini";
    }
    return "openai";
}

std::string span_text(const flow& f, const span_options& o) {
    std::string out;
    out.reserve(2048);
    append_span(out, f, o);
    return out;
}

namespace {

std::string_view render_json(const span_fields& s, const span_options& o, const flow* content) {
    thread_local text_sink sink;
    sink.release_above(256u << 10);  // after a very long span
    sink.clear();
    json_span w(sink, o.max_attribute_length);
    write_span(w, s, o, content);
    return sink.view();
}

std::string_view render_protobuf(const span_fields& s, const span_options& o, const flow* content) {
    thread_local std::string out;
    if (out.capacity() > 256u << 10) {
        std::string().swap(out);  // after a very long span
    }
    out.clear();
    {
        proto_span w(out, o.max_attribute_length);
        write_span(w, s, o, content);
    }
    return out;
}

}  // namespace

std::string_view render_span(const flow& f, const span_options& o) {
    return render_json(span_fields_of(f), o, &f);
}

std::string_view render_span_protobuf(const flow& f, const span_options& o) {
    return render_protobuf(span_fields_of(f), o, &f);
}

void capture_span(std::string& out, const flow& f) {
    pack_span_fields(out, span_fields_of(f));
}

std::string_view render_captured_span(std::string_view capture, const span_options& o,
                                      bool protobuf) {
    const auto s = unpack_span_fields(capture);
    return protobuf ? render_protobuf(s, o, nullptr) : render_json(s, o, nullptr);
}

void append_span(std::string& out, const flow& f, const span_options& o) {
    out += render_span(f, o);
}

void append_span_protobuf(std::string& out, const flow& f, const span_options& o) {
    out += render_span_protobuf(f, o);
}

json make_span(const flow& f, const span_options& o) {
    return json::parse(span_text(f, o));
}

resource make_resource(std::string_view service_name, std::string_view resource_attributes) {
    resource r;
    bool named = false;
    while (!resource_attributes.empty()) {
        auto comma = resource_attributes.find(',');
        auto item = trim_space(resource_attributes.substr(0, comma));
        resource_attributes = comma == std::string_view::npos
                                  ? std::string_view{}
                                  : resource_attributes.substr(comma + 1);
        auto eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            continue;
        }
        auto key = percent_decode(trim_space(item.substr(0, eq)));
        auto value = percent_decode(trim_space(item.substr(eq + 1)));
        if (key == "service.name") {
            if (!service_name.empty()) {
                continue;  // OTEL_SERVICE_NAME wins
            }
            named = true;
        }
        r.attributes.emplace_back(std::move(key), std::move(value));
    }
    if (!service_name.empty()) {
        r.attributes.emplace(r.attributes.begin(), "service.name", std::string(service_name));
    } else if (!named) {
        r.attributes.emplace(r.attributes.begin(), "service.name", "llm_proxy");
    }
    return r;
}

std::string export_request(const resource& r, const std::vector<std::string>& spans) {
    std::string joined;
    for (const auto& span : spans) {
        if (!joined.empty()) {
            joined += ',';
        }
        joined += span;
    }
    return export_request_joined(r, joined);
}

std::string export_request_joined(const resource& r, std::string_view joined_spans) {
    std::string out;
    write_export_request(out, r, joined_spans, false);
    return out;
}

std::string export_request_protobuf(const resource& r, std::string_view span_entries) {
    std::string out;
    write_export_request(out, r, span_entries, true);
    return out;
}

void write_export_request(std::string& out, const resource& r, std::string_view spans,
                          bool protobuf) {
    out.clear();
    if (!protobuf) {
        json attrs = json::array();
        for (const auto& [k, v] : r.attributes) {
            attrs.push_back(json{{"key", k}, {"value", json{{"stringValue", v}}}});
        }
        json res{{"attributes", std::move(attrs)}};
        json scope{{"name", "llm_proxy"}, {"version", LLM_PROXY_VERSION}};
        // The spans are already JSON text: spliced in rather than parsed again.
        const auto head = dump(res);
        const auto scope_text = dump(scope);
        out.reserve(head.size() + scope_text.size() + spans.size() + 96);
        out += R"({"resourceSpans":[{"resource":)";
        out += head;
        out += R"(,"scopeSpans":[{"scope":)";
        out += scope_text;
        out += R"(,"spans":[)";
        out += spans;
        out += "]}]}]}";
        return;
    }
    std::string resource_entry;  // ResourceSpans.resource
    {
        protobuf::nested res(resource_entry, 1);
        for (const auto& [k, v] : r.attributes) {
            protobuf::nested kv(resource_entry, 1);
            string_field(resource_entry, 1, k);
            protobuf::nested any(resource_entry, 2);
            string_field(resource_entry, 1, v);
        }
    }
    std::string scope_entry;  // ScopeSpans.scope
    {
        protobuf::nested scope(scope_entry, 1);
        string_field(scope_entry, 1, "llm_proxy");
        string_field(scope_entry, 2, LLM_PROXY_VERSION);
    }
    // The spans are already encoded `spans` fields: the lengths around them are computed, not
    // found by moving them.
    const auto scope_spans = scope_entry.size() + spans.size();
    const auto resource_spans =
        resource_entry.size() + 1 + protobuf::varint_size(scope_spans) + scope_spans;
    out.reserve(1 + protobuf::varint_size(resource_spans) + resource_spans);
    protobuf::tag(out, 1, protobuf::length_type);  // ExportTraceServiceRequest.resource_spans
    protobuf::varint(out, resource_spans);
    out += resource_entry;
    protobuf::tag(out, 2, protobuf::length_type);  // ResourceSpans.scope_spans
    protobuf::varint(out, scope_spans);
    out += scope_entry;
    out += spans;
}

}  // namespace llm_proxy::otlp

// The fields a span is written from: taken from a flow, packed into a capture, unpacked.
#include "span_fields.hpp"

#include <chrono>
#include <cstring>
#include <type_traits>
#include <utility>

#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::otlp {

namespace {

// The strings of span_fields, in the order a capture holds them.
constexpr std::string_view span_fields::*strings[] = {
    &span_fields::traceparent,   &span_fields::tracestate,
    &span_fields::method,        &span_fields::scheme,
    &span_fields::host,          &span_fields::target,
    &span_fields::flow_id,       &span_fields::cache,
    &span_fields::error,         &span_fields::tunnel_end,
    &span_fields::request_model, &span_fields::response_model,
    &span_fields::response_id,   &span_fields::packed_finish_reasons,
};
constexpr std::size_t string_count = std::size(strings);

// The fixed part of a capture, copied as it is; the strings follow it.
struct packed_head {
    std::int64_t start_ns;
    std::int64_t duration_ns;
    std::uint64_t request_bytes;
    std::uint64_t response_bytes;
    std::uint64_t tunnel_from_client;
    std::uint64_t tunnel_from_upstream;
    std::uint64_t usage[5];
    double cost_usd;
    double saved_usd;
    double first_token_ms;
    std::uint32_t lengths[string_count];
    std::uint32_t status;
    std::uint32_t error_status;
    std::uint16_t port;
    std::uint8_t error_kind;
    std::uint8_t api;
    std::uint8_t provider;
    std::uint8_t usage_present;  // bit i: usage[i]
    std::uint8_t flags;
};
static_assert(std::is_trivially_copyable_v<packed_head>);

enum : std::uint8_t {
    http10 = 1,
    tunnel = 2,
    llm_call = 4,
    stream = 8,
    incomplete = 16,
    has_cost = 32,
    has_saved = 64,
    has_first_token = 128,
};

// The head's numbers and their span_fields counterparts, one list for both directions:
// `copy(head's field, span_fields' field)`.
template <class Head, class Fields, class Copy>
void each_number(Head& h, Fields& s, Copy copy) {
    copy(h.start_ns, s.start_ns);
    copy(h.duration_ns, s.duration_ns);
    copy(h.request_bytes, s.request_bytes);
    copy(h.response_bytes, s.response_bytes);
    copy(h.tunnel_from_client, s.tunnel_from_client);
    copy(h.tunnel_from_upstream, s.tunnel_from_upstream);
    copy(h.status, s.status);
    copy(h.error_status, s.error_status);
    copy(h.port, s.port);
    copy(h.error_kind, s.error_kind);
    copy(h.api, s.api);
    copy(h.provider, s.provider);
}

// The bools, each a bit of the head's flags.
constexpr std::pair<std::uint8_t, bool span_fields::*> flag_bits[] = {
    {http10, &span_fields::http10},         {tunnel, &span_fields::tunnel},
    {llm_call, &span_fields::llm},          {stream, &span_fields::stream},
    {incomplete, &span_fields::incomplete},
};

// The optional numbers: in the head, with a bit of its flags saying whether they are there.
struct optional_number {
    std::uint8_t bit;
    std::optional<double> span_fields::*field;
    double packed_head::*packed;
};
constexpr optional_number optional_numbers[] = {
    {has_cost, &span_fields::cost_usd, &packed_head::cost_usd},
    {has_saved, &span_fields::saved_usd, &packed_head::saved_usd},
    {has_first_token, &span_fields::first_token_ms, &packed_head::first_token_ms},
};

// Copies `v` to `at` (an empty view may have no data: memcpy must not see its null pointer).
void put_bytes(char* at, std::string_view v) {
    if (!v.empty()) {
        std::memcpy(at, v.data(), v.size());
    }
}

void put_u32(char* at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
}

}  // namespace

span_fields span_fields_of(const flow& f) {
    span_fields s;
    if (auto v = find_header(f.request.headers, "traceparent")) {
        s.traceparent = *v;
        if (auto state = find_header(f.request.headers, "tracestate")) {
            s.tracestate = *state;
        }
    }
    s.method = f.request.method;
    s.scheme = f.request.scheme;
    s.host = f.request.host;
    s.target = f.request.target;
    s.flow_id = f.id;
    if (auto it = f.tags.find("cache"); it != f.tags.end()) {
        s.cache = it->second;
    }
    s.error = f.error;
    s.start_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(f.started_at.time_since_epoch())
            .count();
    s.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(f.duration).count();
    s.request_bytes = f.request_bytes;
    s.response_bytes = f.response_bytes;
    if (f.tunnel) {
        s.tunnel = true;
        s.tunnel_from_client = f.tunnel->bytes_from_client;
        s.tunnel_from_upstream = f.tunnel->bytes_from_upstream;
        s.tunnel_end = f.tunnel->end;
    }
    if (f.response) {
        s.status = f.response->status;
    } else if (f.rejected) {
        s.status = f.rejected->status;
    }
    s.error_kind = f.error_kind;
    if (f.rejected) {
        s.error_status = f.rejected->status;
    } else if (f.response && f.response->status >= 400) {
        s.error_status = f.response->status;
    }
    s.port = f.request.port;
    s.http10 = f.request.version == 10;
    if (f.llm) {
        const auto& c = f.llm->call;
        s.llm = true;
        s.api = c.api;
        s.provider = c.provider;
        s.request_model = c.request_model;
        s.response_model = c.response_model;
        s.response_id = c.response_id;
        s.stream = c.stream;
        s.incomplete = c.incomplete;
        s.usage[0] = c.usage.input_tokens;
        s.usage[1] = c.usage.output_tokens;
        s.usage[2] = c.usage.cache_read_tokens;
        s.usage[3] = c.usage.cache_write_tokens;
        s.usage[4] = c.usage.reasoning_tokens;
        if (f.llm->cost_usd) {
            s.cost_usd = f.llm->cost_usd->total.to_double();
        }
        if (f.llm->saved_usd) {
            s.saved_usd = f.llm->saved_usd->to_double();
        }
        s.first_token_ms = f.llm->first_token_ms;
        s.answers = &c.answers;
    }
    return s;
}

void pack_span_fields(std::string& out, const span_fields& s) {
    packed_head h{};
    each_number(h, s, [](auto& to, const auto& from) {
        to = static_cast<std::remove_reference_t<decltype(to)>>(from);
    });
    for (std::size_t i = 0; i < 5; ++i) {
        if (s.usage[i]) {
            h.usage[i] = *s.usage[i];
            h.usage_present |= static_cast<std::uint8_t>(1u << i);
        }
    }
    for (const auto& [bit, field] : flag_bits) {
        if (s.*field) {
            h.flags |= bit;
        }
    }
    for (const auto& o : optional_numbers) {
        if (s.*o.field) {
            h.*o.packed = *(s.*o.field);
            h.flags |= o.bit;
        }
    }
    // The finish reasons are packed after the other strings, from the answers when the fields
    // view a flow.
    std::size_t reasons = 0;
    if (s.answers != nullptr) {
        s.each_finish_reason([&](std::string_view r) { reasons += 4 + r.size(); });
    } else {
        reasons = s.packed_finish_reasons.size();
    }
    std::size_t total = sizeof h;
    for (std::size_t i = 0; i + 1 < string_count; ++i) {
        h.lengths[i] = static_cast<std::uint32_t>((s.*strings[i]).size());
        total += h.lengths[i];
    }
    h.lengths[string_count - 1] = static_cast<std::uint32_t>(reasons);
    total += reasons;
    const auto start = out.size();
    out.resize(start + total);
    char* at = out.data() + start;
    std::memcpy(at, &h, sizeof h);
    at += sizeof h;
    for (std::size_t i = 0; i + 1 < string_count; ++i) {
        const auto& v = s.*strings[i];
        put_bytes(at, v);
        at += v.size();
    }
    if (s.answers != nullptr) {
        s.each_finish_reason([&](std::string_view r) {
            put_u32(at, static_cast<std::uint32_t>(r.size()));
            put_bytes(at + 4, r);
            at += 4 + r.size();
        });
    } else {
        put_bytes(at, s.packed_finish_reasons);
    }
}

span_fields unpack_span_fields(std::string_view packed) {
    span_fields s;
    if (packed.size() < sizeof(packed_head)) {
        return s;
    }
    packed_head h;
    std::memcpy(&h, packed.data(), sizeof h);
    each_number(h, s, [](const auto& from, auto& to) {
        to = static_cast<std::remove_reference_t<decltype(to)>>(from);
    });
    for (std::size_t i = 0; i < 5; ++i) {
        if (h.usage_present & (1u << i)) {
            s.usage[i] = h.usage[i];
        }
    }
    for (const auto& [bit, field] : flag_bits) {
        s.*field = (h.flags & bit) != 0;
    }
    for (const auto& o : optional_numbers) {
        if (h.flags & o.bit) {
            s.*o.field = h.*o.packed;
        }
    }
    std::string_view rest = packed.substr(sizeof h);
    for (std::size_t i = 0; i < string_count; ++i) {
        const auto n = std::min<std::size_t>(h.lengths[i], rest.size());
        s.*strings[i] = rest.substr(0, n);
        rest.remove_prefix(n);
    }
    return s;
}

}  // namespace llm_proxy::otlp

// The record renderer: any flow (fields from the input: arbitrary bytes in the method, host,
// target, headers, bodies with or without a Content-Encoding, tags, errors, tunnels) renders to
// JSON that nlohmann parses back, every string the flow held comes back as its UTF-8-sanitized
// self, and a valid UTF-8 body that is logged whole comes back byte for byte.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "llm_proxy/flow.hpp"
#include "llm_proxy/record/flow_record.hpp"
#include "record/utf8.hpp"

using llm_proxy::fuzz::check;
namespace record = llm_proxy::record;

namespace {

constexpr std::array<std::string_view, 8> header_names = {
    "Content-Type", "content-encoding", "Authorization", "X-Api-Key",
    "cookie",       "X-Custom",         "x-custom",      "Set-Cookie"};
constexpr std::array<std::string_view, 7> encodings = {"gzip",     "br",       "zstd", "deflate",
                                                       "identity", "gzip, br", "bogus"};

std::string text(FuzzedDataProvider& in, std::size_t max) {
    return in.ConsumeRandomLengthString(max);
}

llm_proxy::header_list headers(FuzzedDataProvider& in) {
    llm_proxy::header_list out;
    const auto n = in.ConsumeIntegralInRange(0, 6);
    for (int i = 0; i < n; ++i) {
        std::string name =
            in.ConsumeBool() ? std::string(in.PickValueInArray(header_names)) : text(in, 16);
        std::string value = name == "content-encoding" && in.ConsumeBool()
                                ? std::string(in.PickValueInArray(encodings))
                                : text(in, 64);
        out.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

std::string same_text(std::string_view s) {
    return std::string(record::detail::sanitize_utf8(s).view());
}

bool is_utf8(std::string_view s) {
    return same_text(s) == s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    llm_proxy::flow f;
    f.id = text(in, 40);
    f.client_address = text(in, 24);
    f.started_at = std::chrono::system_clock::time_point(
        std::chrono::milliseconds(in.ConsumeIntegralInRange<std::int64_t>(-1, 1LL << 42)));
    f.request.method = text(in, 12);
    f.request.scheme = in.ConsumeBool() ? "https" : text(in, 8);
    f.request.host = text(in, 32);
    f.request.port = in.ConsumeIntegral<std::uint16_t>();
    f.request.target = text(in, 64);
    f.request.version = in.ConsumeBool() ? 11 : 10;
    f.request.headers = headers(in);
    f.request_body.data = text(in, 512);
    f.request_body.total = f.request_body.data.size() + in.ConsumeIntegralInRange(0, 2);
    f.request_body.truncated = f.request_body.total > f.request_body.data.size();
    if (in.ConsumeBool()) {
        llm_proxy::response_head r;
        r.status = in.ConsumeIntegralInRange<unsigned>(0, 999);
        r.reason = text(in, 16);
        r.headers = headers(in);
        f.response = std::move(r);
        f.response_body.data = text(in, 1024);
        f.response_body.total = f.response_body.data.size();
    }
    const auto tags = in.ConsumeIntegralInRange(0, 3);
    for (int i = 0; i < tags; ++i) {
        std::string k = text(in, 16);
        f.tags[k] = text(in, 32);
    }
    if (in.ConsumeBool()) {
        f.error_kind = static_cast<llm_proxy::flow_error>(in.ConsumeIntegralInRange(0, 3));
        f.error = text(in, 64);
    }
    if (in.ConsumeBool()) {
        llm_proxy::tunnel_stats t;
        t.sni = text(in, 32);
        t.end = text(in, 16);
        t.bytes_from_client = in.ConsumeIntegral<std::uint64_t>();
        t.bytes_from_upstream = in.ConsumeIntegral<std::uint64_t>();
        f.tunnel = std::move(t);
    }

    record::record_options options;
    options.max_body_log = in.ConsumeBool() ? 4096 : in.ConsumeIntegralInRange(0, 64);
    options.log_request_body = in.ConsumeBool();
    options.log_response_headers = in.ConsumeBool();
    const std::string proxy_id = text(in, 16);
    const std::string rendered = record::render_record(f, options, proxy_id);
    const auto j = nlohmann::json::parse(rendered, nullptr, false);
    check(!j.is_discarded(), "the record is not JSON");
    check(rendered.ends_with("\n"), "the record does not end with a newline");

    // The JSONL line (--format jsonl): the same record plus its id, on exactly one line.
    const std::string line =
        record::render_record(f, options, proxy_id, record::record_layout::line);
    check(line.find('\n') == line.size() - 1, "a record line is not one line");
    auto from_line = nlohmann::json::parse(line, nullptr, false);
    check(!from_line.is_discarded() && from_line.is_object(), "a record line is not JSON");
    check(from_line.value("id", std::string("\x01")) == same_text(f.id), "the line's id changed");
    from_line.erase("id");
    check(from_line == j, "the record line differs from the record");

    if (j.contains("request")) {
        const auto& req = j["request"];
        if (!f.request.method.empty()) {
            check(req.at("method").get<std::string>() == same_text(f.request.method),
                  "method changed");
        }
        // Header values come back (sanitized), grouped under their canonical name.
        for (const auto& [name, value] : f.request.headers) {
            const auto& h = req.at("header");
            const std::string key = same_text(record::canonical_header_name(name));
            if (!h.contains(key)) {
                continue;  // filtered (credentials)
            }
            bool found = false;
            for (const auto& v : h.at(key)) {
                found = found || v.get<std::string>() == same_text(value);
            }
            check(found, "a request header value did not come back");
        }
        // A valid UTF-8 body without a coding, logged whole, comes back byte for byte.
        const bool coded =
            llm_proxy::find_header(f.request.headers, "Content-Encoding").has_value();
        if (options.log_request_body && !coded && !f.request_body.truncated &&
            f.request_body.data.size() <= options.max_body_log && is_utf8(f.request_body.data)) {
            check(req.at("body").get<std::string>() == f.request_body.data,
                  "a text request body did not come back unchanged");
        }
    }
    if (f.response && j.contains("response")) {
        check(j["response"].at("status").get<unsigned>() == f.response->status, "status changed");
    }
    if (j.contains("tags")) {
        for (const auto& [k, v] : f.tags) {
            check(j["tags"].contains(same_text(k)), "a tag did not come back");
        }
    }
    return 0;
}

#include "llm_proxy/export/record_source.hpp"

#include <simdjson.h>

#include <boost/url/parse.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "llm_proxy/llm/record_json.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::exporter {

namespace fs = std::filesystem;
using element = simdjson::dom::element;

namespace {

bool is_record_file(const fs::directory_entry& e, std::error_code& ec) {
    const auto& p = e.path();
    return e.is_regular_file(ec) && (p.extension() == ".json" || p.extension() == ".jsonl") &&
           !p.filename().string().starts_with(".");
}

// `inner` is `outer` or lies under it (both canonical).
bool within(const fs::path& inner, const fs::path& outer) {
    auto rel = inner.lexically_relative(outer);
    return !rel.empty() && *rel.begin() != "..";
}

// The inputs without those another input covers: the same path given twice, or a file or
// directory under a directory also given (`report DIR DIR/sub` reads each record once).
std::vector<fs::path> distinct_inputs(const std::vector<fs::path>& inputs) {
    std::vector<fs::path> canonical;
    for (const auto& path : inputs) {
        std::error_code ec;
        auto c = fs::weakly_canonical(path, ec);
        canonical.push_back(ec ? path : c);
    }
    std::vector<fs::path> out;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        bool covered = false;
        for (std::size_t j = 0; j < inputs.size() && !covered; ++j) {
            std::error_code ec;
            if (canonical[i] == canonical[j]) {
                covered = j < i;
            } else {
                covered = within(canonical[i], canonical[j]) && fs::is_directory(inputs[j], ec);
            }
        }
        if (!covered) {
            out.push_back(inputs[i]);
        }
    }
    return out;
}

template <class Fn>
void walk(const std::vector<fs::path>& given, Fn&& fn) {
    for (const auto& path : given) {
        std::error_code ec;
        if (!fs::exists(path, ec)) {
            throw std::invalid_argument(path.string() + ": no such file or directory");
        }
    }
    for (const auto& path : distinct_inputs(given)) {
        std::error_code ec;
        if (fs::is_directory(path, ec)) {
            for (auto it = fs::recursive_directory_iterator(
                     path, fs::directory_options::skip_permission_denied, ec);
                 !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
                if (is_record_file(*it, ec)) {
                    fn(it->path());
                }
            }
        } else if (fs::is_regular_file(path, ec)) {
            fn(path);
        } else {
            throw std::invalid_argument(path.string() + ": no such file or directory");
        }
    }
}

std::optional<element> member(const element& o, std::string_view key) {
    element v;
    if (o.at_key(key).get(v) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return v;
}

std::string_view string_of(const element& o, std::string_view key) {
    std::string_view s;
    if (auto m = member(o, key); m && m->get_string().get(s) == simdjson::SUCCESS) {
        return s;
    }
    return {};
}

bool true_of(const element& o, std::string_view key) {
    auto m = member(o, key);
    return m && m->is_bool() && m->get_bool().value_unsafe();
}

std::optional<double> number_of(const element& o, std::string_view key) {
    auto m = member(o, key);
    double d;
    if (m && m->is_number() && m->get_double().get(d) == simdjson::SUCCESS) {
        return d;
    }
    return std::nullopt;
}

// {"Name": ["v1", "v2"]} as (name, value) pairs in order; false when the headers were not
// logged (null).
bool read_headers(const element& part, std::vector<header_field>& out) {
    out.clear();
    auto h = member(part, "header");
    simdjson::dom::object o;
    if (!h || h->get_object().get(o) != simdjson::SUCCESS) {
        return false;
    }
    for (auto [name, values] : o) {
        simdjson::dom::array list;
        if (values.get_array().get(list) == simdjson::SUCCESS) {
            for (auto v : list) {
                std::string_view text;
                if (v.get_string().get(text) == simdjson::SUCCESS) {
                    out.push_back({name, text});
                }
            }
        } else if (std::string_view text; values.get_string().get(text) == simdjson::SUCCESS) {
            out.push_back({name, text});
        }
    }
    return true;
}

body_view read_body(const element& part) {
    body_view b;
    b.text = string_of(part, "body");
    b.base64 = string_of(part, "body_encoding") == "base64";
    b.truncated = true_of(part, "body_truncated");
    b.decode_error = member(part, "body_decode_error").has_value();
    if (auto m = member(part, "body_size"); m && m->is_uint64()) {
        b.wire_size = m->get_uint64().value_unsafe();
    } else if (m && m->is_int64() && m->get_int64().value_unsafe() >= 0) {
        b.wire_size = static_cast<std::uint64_t>(m->get_int64().value_unsafe());
    }
    return b;
}

// A parsed value as a nlohmann document (the llm object, for summary_from_json).
nlohmann::json to_nlohmann(const element& e) {
    switch (e.type()) {
        case simdjson::dom::element_type::OBJECT: {
            auto j = nlohmann::json::object();
            simdjson::dom::object o = e.get_object().value_unsafe();
            for (auto [k, v] : o) {
                j[std::string(k)] = to_nlohmann(v);
            }
            return j;
        }
        case simdjson::dom::element_type::ARRAY: {
            auto j = nlohmann::json::array();
            simdjson::dom::array a = e.get_array().value_unsafe();
            for (auto v : a) {
                j.push_back(to_nlohmann(v));
            }
            return j;
        }
        case simdjson::dom::element_type::STRING:
            return std::string(e.get_string().value_unsafe());
        case simdjson::dom::element_type::INT64: {
            // simdjson keeps every integer that fits as int64; nlohmann (and the readers of
            // the llm object) want counts unsigned, as its own parser makes them.
            auto v = e.get_int64().value_unsafe();
            return v >= 0 ? nlohmann::json(static_cast<std::uint64_t>(v)) : nlohmann::json(v);
        }
        case simdjson::dom::element_type::UINT64:
            return e.get_uint64().value_unsafe();
        case simdjson::dom::element_type::DOUBLE:
            return e.get_double().value_unsafe();
        case simdjson::dom::element_type::BOOL:
            return e.get_bool().value_unsafe();
        case simdjson::dom::element_type::NULL_VALUE:
            return nullptr;
    }
    return nullptr;
}

}  // namespace

void for_each_record_file(const std::vector<fs::path>& inputs,
                          const std::function<void(const fs::path&)>& fn) {
    walk(inputs, fn);
}

std::uint64_t count_record_files(const std::vector<fs::path>& inputs) {
    std::uint64_t n = 0;
    walk(inputs, [&](const fs::path&) { ++n; });
    return n;
}

std::optional<std::string> body_bytes(const body_view& b) {
    if (b.base64) {
        return base64_decode(b.text);
    }
    return std::string(b.text);
}

struct record_source::impl {
    llm::read_options options;
    std::string buffer;
    simdjson::dom::parser parser;
    flow_view view;
};

record_source::record_source(llm::read_options options) : impl_(std::make_unique<impl>()) {
    impl_->options = options;
}

record_source::~record_source() = default;

const flow_view* record_source::read(const fs::path& file, std::string& why_not) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        why_not = "cannot be read";
        return nullptr;
    }
    auto& buf = impl_->buffer;
    in.seekg(0, std::ios::end);
    auto size = in.tellg();
    in.seekg(0, std::ios::beg);
    if (size < 0) {
        why_not = "cannot be read";
        return nullptr;
    }
    buf.reserve(static_cast<std::size_t>(size) + simdjson::SIMDJSON_PADDING);
    buf.resize(static_cast<std::size_t>(size));
    in.read(buf.data(), size);
    if (!in) {
        why_not = "cannot be read";
        return nullptr;
    }
    auto stem = file.stem().string();
    // The text stays in `buffer`: parse() below copies only when it was given other text.
    return parse(std::string_view(buf), std::move(stem), why_not);
}

void record_source::read_each(const fs::path& file,
                              const std::function<void(const flow_view*, const std::string&)>& fn) {
    std::string why;
    if (file.extension() != ".jsonl") {
        const flow_view* f = read(file, why);
        fn(f, why);
        return;
    }
    const std::string stem = file.stem().string();
    bool opened = llm::for_each_segment_line(file, [&](const std::string& line, std::uint64_t n) {
        why.clear();
        const flow_view* f = parse(line, stem + ":" + std::to_string(n), why);
        fn(f, why);
    });
    if (!opened) {
        fn(nullptr, "cannot be read");
    }
}

const flow_view* record_source::parse(std::string_view text, std::string id, std::string& why_not) {
    auto& m = *impl_;
    if (text.data() != m.buffer.data()) {
        m.buffer.reserve(text.size() + simdjson::SIMDJSON_PADDING);
        m.buffer.assign(text);
    }
    element root;
    if (m.parser.parse(m.buffer.data(), m.buffer.size(), false).get(root) != simdjson::SUCCESS ||
        !root.is_object()) {
        why_not = "not JSON";
        return nullptr;
    }
    auto request = member(root, "request");
    if (!request || !request->is_object()) {
        why_not = "not an llm_proxy record";
        return nullptr;
    }
    flow_view& v = m.view;
    v = flow_view{};
    v.id = std::move(id);
    if (auto own = string_of(root, "id"); !own.empty()) {
        v.id = std::string(own);
    }
    v.timestamp = string_of(root, "timestamp");
    auto t = llm::parse_timestamp(v.timestamp);
    if (!t) {
        why_not = "not an llm_proxy record";
        return nullptr;
    }
    v.time = *t;
    v.method = string_of(*request, "method");
    v.url = string_of(*request, "url");
    v.proto = string_of(*request, "proto");
    if (auto u = boost::urls::parse_uri(v.url)) {
        v.host = std::string(u->encoded_host_and_port());
        v.target = std::string(u->encoded_target());
    } else {
        v.host = std::string(v.url);  // a blind tunnel's host:port
    }
    if (v.target.empty()) {
        v.target.push_back('/');
    }
    v.request_headers_logged = read_headers(*request, v.request_headers);
    v.request_body = read_body(*request);
    if (auto response = member(root, "response"); response && response->is_object()) {
        v.has_response = true;
        if (auto s = member(*response, "status"); s && s->is_int64()) {
            v.status = static_cast<unsigned>(s->get_int64().value_unsafe());
        }
        v.response_headers_logged = read_headers(*response, v.response_headers);
        v.response_body = read_body(*response);
    }
    if (auto err = member(root, "error"); err && err->is_object()) {
        v.error_kind = string_of(*err, "kind");
        v.error_message = string_of(*err, "message");
        if (v.error_kind.empty()) {
            v.error_kind = "error";
        }
    }
    if (auto cs = member(root, "connection_stats"); cs && cs->is_object()) {
        v.duration_ms = number_of(*cs, "duration_ms");
        v.client_address = string_of(*cs, "client_address");
    }
    v.tunnel = member(root, "tunnel").has_value();
    if (auto l = member(root, "llm"); l && l->is_object()) {
        v.llm = llm::summary_from_json(to_nlohmann(*l));
        v.llm_json = simdjson::minify(*l);
    } else if (!v.tunnel && llm::recognise(v.host, v.target, v.method,
                                           m.options.hosts ? *m.options.hosts : llm::host_map{})) {
        std::string request_body, response_body;
        llm::record_bodies b;
        request_body = body_bytes(v.request_body).value_or("");
        b.request_body = request_body;
        if (v.has_response) {
            response_body = body_bytes(v.response_body).value_or("");
            b.has_response = true;
            b.response_body = response_body;
            b.response_complete = !v.response_body.truncated && v.error_kind.empty();
            if (auto tags = member(root, "tags"); tags && tags->is_object()) {
                b.cache_hit = string_of(*tags, "cache") == "HIT";
            }
        }
        v.llm = llm::compute_call(v.host, v.target, v.method, v.time, b, m.options);
        v.llm_computed = v.llm.has_value();
    }
    return &v;
}

}  // namespace llm_proxy::exporter

#include "api.hpp"

#include <boost/beast/http/verb.hpp>

#include "llm_proxy/export/har.hpp"
#include "llm_proxy/export/record_source.hpp"
#include "llm_proxy/web/flow_detail.hpp"

namespace llm_proxy::web::assets {
extern const char index_html[];
extern const std::size_t index_html_size;
extern const char app_js[];
extern const std::size_t app_js_size;
extern const char style_css[];
extern const std::size_t style_css_size;
}  // namespace llm_proxy::web::assets

namespace llm_proxy::web {

namespace http = boost::beast::http;
using json = nlohmann::json;

namespace {

constexpr std::size_t max_har_flows = 1000;

bool valid_id(std::string_view id) {
    return !id.empty() && id.size() <= 200 &&
           std::all_of(id.begin(), id.end(), [](unsigned char c) {
               return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
           });
}

// A flow no longer in the ring, from the records this run wrote.
std::optional<flow_entry> from_records_dir(const api_context& ctx, const std::string& id) {
    if (ctx.store.records_dir().empty()) {
        return std::nullopt;
    }
    auto at = locate_record(ctx.store.records_dir(), id);
    return at ? entry_from_disk(*at, ctx.read) : std::nullopt;
}

// JSON text with every '<' written as \u003c (only strings can hold one): a record's
// "<script>" never appears as markup in any answer, whatever reads it.
std::string json_text(const json& j, int indent = -1) {
    std::string text = j.dump(indent);
    std::string out;
    out.reserve(text.size() + 1);
    for (char c : text) {
        if (c == '<') {
            out += "\\u003c";
        } else {
            out += c;
        }
    }
    out += '\n';
    return out;
}

response with_body(const request& req, const char* content_type, std::string body) {
    response res{http::status::ok, req.version()};
    res.set(http::field::content_type, content_type);
    res.body() = std::move(body);
    res.keep_alive(req.keep_alive());
    finish(res);
    return res;
}

response asset(const request& req, const char* content_type, const char* text, std::size_t size) {
    return with_body(req, content_type, std::string(text, size));
}

response flow_list(const api_context& ctx, const request& req) {
    std::uint64_t version = 0;
    auto entries = ctx.store.changed_since(0, version);
    json flows = json::array();
    for (const auto& e : entries) {
        flows.push_back(summary_json(e));
    }
    json out{{"version", version}, {"live", ctx.live}, {"flows", std::move(flows)}};
    return with_body(req, "application/json", json_text(out));
}

response flow_detail(const api_context& ctx, const request& req, const std::string& id,
                     bool download) {
    auto e = ctx.store.find(id);
    if (!e) {
        e = from_records_dir(ctx, id);
    }
    if (!e) {
        return json_error(req, http::status::not_found, "no flow " + id);
    }
    auto record = flow_record(*e, ctx.read, ctx.store.records_dir(), ctx.shown);
    if (download) {
        if (!record) {
            return json_error(req, http::status::gone, "the record of flow " + id + " is gone");
        }
        auto res = with_body(req, "application/json", json_text(*record, 2));
        res.set(http::field::content_disposition, "attachment; filename=\"" + id + ".json\"");
        return res;
    }
    json out{{"summary", summary_json(*e)},
             {"record", record ? *record : json(nullptr)},
             {"timeline", e->timeline ? timeline_json(*e->timeline) : json(nullptr)}};
    return with_body(req, "application/json", json_text(out));
}

response har(const api_context& ctx, const request& req) {
    auto ids = query_param(std::string_view(req.target().data(), req.target().size()), "ids");
    if (!ids || ids->empty()) {
        return json_error(req, http::status::bad_request, "give the flows as ?ids=ID,ID...");
    }
    exporter::record_source source(ctx.read);
    std::string out = exporter::har_header();
    std::size_t n = 0;
    std::string_view rest = *ids;
    while (!rest.empty() && n < max_har_flows) {
        auto comma = rest.find(',');
        std::string id(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (!valid_id(id)) {
            return json_error(req, http::status::bad_request, "not a flow id: " + id);
        }
        auto e = ctx.store.find(id);
        if (!e) {
            e = from_records_dir(ctx, id);
        }
        auto record =
            e ? flow_record(*e, ctx.read, ctx.store.records_dir(), ctx.shown) : std::nullopt;
        if (!record) {
            continue;
        }
        std::string why;
        if (const auto* f = source.parse(record->dump(), id, why)) {
            out += (n++ == 0 ? "\n" : "\n,") + exporter::har_entry(*f);
        }
    }
    out += exporter::har_footer();
    auto res = with_body(req, "application/json", std::move(out));
    res.set(http::field::content_disposition, "attachment; filename=\"flows.har\"");
    return res;
}

}  // namespace

std::string_view target_path(const request& req) {
    std::string_view t(req.target().data(), req.target().size());
    return t.substr(0, t.find('?'));
}

std::string sse_event(const flow_entry& e) {
    const char* kind = !e.done ? (e.status == 0 ? "started" : "updated") : "finished";
    return std::string("event: ") + kind + "\nid: " + std::to_string(e.version) +
           "\ndata: " + json_text(summary_json(e)) + "\n";
}

response answer(const api_context& ctx, const request& req) {
    if (req.method() != http::verb::get) {
        auto res = json_error(req, http::status::method_not_allowed, "only GET");
        res.set(http::field::allow, "GET");
        return res;
    }
    auto path = target_path(req);
    if (path == "/" || path == "/index.html") {
        return asset(req, "text/html; charset=utf-8", assets::index_html, assets::index_html_size);
    }
    if (path == "/app.js") {
        return asset(req, "text/javascript; charset=utf-8", assets::app_js, assets::app_js_size);
    }
    if (path == "/style.css") {
        return asset(req, "text/css; charset=utf-8", assets::style_css, assets::style_css_size);
    }
    if (path == "/api/flows") {
        return flow_list(ctx, req);
    }
    if (path == "/api/har") {
        return har(ctx, req);
    }
    constexpr std::string_view prefix = "/api/flows/";
    if (path.starts_with(prefix)) {
        auto rest = path.substr(prefix.size());
        bool download = false;
        if (rest.ends_with("/record")) {
            rest.remove_suffix(7);
            download = true;
        }
        if (!valid_id(rest)) {
            return json_error(req, http::status::bad_request, "not a flow id");
        }
        return flow_detail(ctx, req, std::string(rest), download);
    }
    return json_error(req, http::status::not_found, "not found");
}

}  // namespace llm_proxy::web

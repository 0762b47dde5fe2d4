#include "llm_proxy/llm/recognise.hpp"

#include <charconv>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::llm {

namespace {

struct split_host {
    std::string name;  // lower case, no brackets, no trailing dot
    std::optional<std::uint16_t> port;
    bool valid = true;
};

std::optional<std::uint16_t> parse_port(std::string_view s) {
    unsigned value = 0;
    if (s.empty() || s.size() > 5) {
        return std::nullopt;
    }
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size() || value == 0 || value > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

split_host split(std::string_view host) {
    split_host out;
    std::string_view name = host;
    if (!host.empty() && host.front() == '[') {
        auto close = host.find(']');
        if (close == std::string_view::npos) {
            out.valid = false;
            return out;
        }
        name = host.substr(1, close - 1);
        auto rest = host.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':' || !(out.port = parse_port(rest.substr(1)))) {
                out.valid = false;
            }
        }
    } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
        if (host.find(':') != colon) {  // a bare IPv6 address: no port
            name = host;
        } else {
            name = host.substr(0, colon);
            if (!(out.port = parse_port(host.substr(colon + 1)))) {
                out.valid = false;
            }
        }
    }
    if (!name.empty() && name.back() == '.') {
        name.remove_suffix(1);
    }
    out.name = to_lower(name);
    if (out.name.empty()) {
        out.valid = false;
    }
    return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

// The path of a request target: no scheme and authority, no query or fragment,
// percent-decoded (a malformed escape is kept as is).
std::string path_of(std::string_view target) {
    if (istarts_with(target, "http://") || istarts_with(target, "https://")) {
        auto after_scheme = target.find("//") + 2;
        auto slash = target.find('/', after_scheme);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    auto end = target.find_first_of("?#");
    if (end != std::string_view::npos) {
        target = target.substr(0, end);
    }
    std::string path;
    path.reserve(target.size());
    for (std::size_t i = 0; i < target.size(); ++i) {
        if (target[i] == '%' && i + 2 < target.size()) {
            int hi = hex_digit_value(target[i + 1]);
            int lo = hex_digit_value(target[i + 2]);
            if (hi >= 0 && lo >= 0) {
                path.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        path.push_back(target[i]);
    }
    while (path.size() > 1 && path.back() == '/') {
        path.pop_back();
    }
    return path;
}

// OpenAI's APIs by the end of the path; `exact` requires the path to be /v1 + the API's path.
std::optional<endpoint> openai_rules(std::string_view path, bool exact) {
    struct rule {
        std::string_view suffix;
        api which;
    };
    static constexpr rule rules[] = {
        {"/chat/completions", api::chat_completions},
        {"/completions", api::completions},
        {"/responses", api::responses},
        {"/embeddings", api::embeddings},
    };
    for (const auto& r : rules) {
        bool match = exact ? path.size() == 3 + r.suffix.size() && starts_with(path, "/v1") &&
                                 ends_with(path, r.suffix)
                           : ends_with(path, r.suffix);
        if (match) {
            endpoint e;
            e.provider = provider::openai;
            e.api = r.which;
            return e;
        }
    }
    return std::nullopt;
}

std::optional<endpoint> anthropic_rules(std::string_view path, bool exact) {
    if (exact ? path == "/v1/messages" : ends_with(path, "/messages")) {
        endpoint e;
        e.provider = provider::anthropic;
        e.api = api::messages;
        return e;
    }
    return std::nullopt;
}

// .../models/{model}:generateContent or :streamGenerateContent; `exact` requires the path to
// be /v1beta, /v1 or /v1alpha followed by /models/{model}:method.
std::optional<endpoint> google_rules(std::string_view path, bool exact) {
    auto colon = path.rfind(':');
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    auto method = path.substr(colon + 1);
    bool stream = method == "streamGenerateContent";
    if (!stream && method != "generateContent") {
        return std::nullopt;
    }
    auto before = path.substr(0, colon);
    auto models = before.rfind("/models/");
    if (models == std::string_view::npos) {
        return std::nullopt;
    }
    auto model = before.substr(models + 8);
    if (model.empty() || model.find('/') != std::string_view::npos) {
        return std::nullopt;
    }
    if (exact) {
        auto version = before.substr(0, models);
        if (version != "/v1beta" && version != "/v1" && version != "/v1alpha") {
            return std::nullopt;
        }
    }
    endpoint e;
    e.provider = provider::google;
    e.api = api::generate_content;
    e.path_model = std::string(model);
    e.path_stream = stream;
    return e;
}

std::optional<endpoint> rules_for(provider p, std::string_view path, bool exact) {
    switch (p) {
        case provider::openai:
            return openai_rules(path, exact);
        case provider::anthropic:
            return anthropic_rules(path, exact);
        case provider::google:
            return google_rules(path, exact);
    }
    return std::nullopt;
}

}  // namespace

std::optional<provider> host_map::find(std::string_view host) const {
    if (entries.empty()) {
        return std::nullopt;
    }
    auto h = split(host);
    if (!h.valid) {
        return std::nullopt;
    }
    std::optional<provider> any_port;
    for (const auto& e : entries) {
        if (e.host != h.name) {
            continue;
        }
        if (e.port) {
            if (h.port && *e.port == *h.port) {
                return e.provider;
            }
        } else if (!any_port) {
            any_port = e.provider;
        }
    }
    return any_port;
}

std::optional<std::string> parse_host_mapping(std::string_view spec, host_map& into) {
    auto eq = spec.find('=');
    if (eq == std::string_view::npos) {
        return "expected HOST=PROVIDER, got \"" + std::string(spec) + "\"";
    }
    auto host = spec.substr(0, eq);
    auto name = spec.substr(eq + 1);
    auto p = provider_from_string(to_lower(name));
    if (!p) {
        return "unknown provider \"" + std::string(name) +
               "\" (expected openai, anthropic or google)";
    }
    if (host.find_first_of("/ \t?#@") != std::string_view::npos) {
        return "not a host name: \"" + std::string(host) + "\"";
    }
    auto h = split(host);
    if (!h.valid) {
        return "not a host name: \"" + std::string(host) + "\"";
    }
    host_map::entry e;
    e.host = std::move(h.name);
    e.port = h.port;
    e.provider = *p;
    into.entries.push_back(std::move(e));
    return std::nullopt;
}

std::optional<endpoint> recognise(std::string_view host, std::string_view target,
                                  std::string_view method, const host_map& mapped) {
    if (method != "POST") {
        return std::nullopt;
    }
    auto h = split(host);
    if (!h.valid) {
        return std::nullopt;
    }
    auto path = path_of(target);
    if (auto p = mapped.find(host)) {
        return rules_for(*p, path, false);
    }
    if (h.name == "api.openai.com") {
        return openai_rules(path, true);
    }
    if (h.name == "api.anthropic.com") {
        return anthropic_rules(path, true);
    }
    if (h.name == "generativelanguage.googleapis.com") {
        return google_rules(path, true);
    }
    if (ends_with(path, "/v1/chat/completions")) {
        return openai_rules(path, false);
    }
    if (ends_with(path, "/v1/messages")) {
        return anthropic_rules(path, false);
    }
    return std::nullopt;
}

}  // namespace llm_proxy::llm

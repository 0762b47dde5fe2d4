#include "llm_proxy/llm/prices.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <exception>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::llm {

using json = nlohmann::json;
using std::chrono::system_clock;

struct match_clause::regex_holder {
    std::regex re;
};

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
    throw price_data_error(where + ": " + what);
}

std::string json_quote(std::string_view s) {
    return json(std::string(s)).dump();
}

// Throws price_data_error("invalid regex ...").
std::shared_ptr<const match_clause::regex_holder> compile_regex(const std::string& pattern) {
    try {
        return std::make_shared<const match_clause::regex_holder>(
            match_clause::regex_holder{std::regex(pattern, std::regex::ECMAScript)});
    } catch (const std::regex_error& e) {
        throw price_data_error("invalid regex " + json_quote(pattern) + " (" + e.what() + ")");
    }
}

const json& member(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end()) {
        fail(where, std::string("missing \"") + key + "\"");
    }
    return *it;
}

std::string string_member(const json& obj, const char* key, const std::string& where,
                          bool required) {
    auto it = obj.find(key);
    if (it == obj.end()) {
        if (required) {
            fail(where, std::string("missing \"") + key + "\"");
        }
        return {};
    }
    if (!it->is_string()) {
        fail(where + "." + key, "expected a string");
    }
    return it->get<std::string>();
}

// A JSON number as an exact money amount. A float is taken as the shortest decimal that reads
// back as the same double (what Python prints for it), so 0.15 is 0.15.
money number_to_money(const json& v, const std::string& where) {
    std::optional<money> m;
    if (v.is_number_unsigned()) {
        m = money::parse(std::to_string(v.get<std::uint64_t>()));
    } else if (v.is_number_integer()) {
        m = money::parse(std::to_string(v.get<std::int64_t>()));
    } else if (v.is_number_float()) {
        char buf[64];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.get<double>());
        if (ec != std::errc{}) {
            fail(where, "unreadable number");
        }
        m = money::parse(std::string_view(buf, static_cast<std::size_t>(end - buf)));
    } else {
        fail(where, "expected a number");
    }
    if (!m) {
        fail(where, "number " + v.dump() + " out of range");
    }
    if (*m < money{}) {
        fail(where, "negative price " + v.dump());
    }
    // per_mtok() is exact for prices with at most 18 decimals.
    if (m->units() % 1'000'000 != 0) {
        fail(where, "price " + v.dump() + " has more than 18 decimals");
    }
    return *m;
}

unit_price parse_unit_price(const json& v, const std::string& where) {
    unit_price p;
    if (v.is_number()) {
        p.base = number_to_money(v, where);
        return p;
    }
    if (!v.is_object()) {
        fail(where, "expected a number or {\"base\", \"tiers\"}");
    }
    for (auto& [k, _] : v.items()) {
        if (k != "base" && k != "tiers") {
            fail(where, "unknown field \"" + k + "\" in a tiered price");
        }
    }
    p.base = number_to_money(member(v, "base", where), where + ".base");
    const json& tiers = member(v, "tiers", where);
    if (!tiers.is_array()) {
        fail(where + ".tiers", "expected a list");
    }
    for (std::size_t i = 0; i < tiers.size(); ++i) {
        std::string w = where + ".tiers[" + std::to_string(i) + "]";
        const json& t = tiers[i];
        if (!t.is_object()) {
            fail(w, "expected {\"start\", \"price\"}");
        }
        const json& start = member(t, "start", w);
        if (!start.is_number_unsigned()) {
            fail(w + ".start", "expected a non-negative integer");
        }
        tier tr;
        tr.start = start.get<std::uint64_t>();
        tr.price = number_to_money(member(t, "price", w), w + ".price");
        p.tiers.push_back(tr);
    }
    return p;
}

model_prices parse_model_prices(const json& v, const std::string& where) {
    if (!v.is_object()) {
        fail(where, "expected an object of prices");
    }
    model_prices mp;
    for (auto& [k, val] : v.items()) {
        mp.fields.emplace_back(k, parse_unit_price(val, where + "." + k));
    }
    return mp;
}

int digits(std::string_view s, std::size_t pos, std::size_t n) {
    if (pos + n > s.size()) {
        return -1;
    }
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

std::chrono::sys_days parse_date(const json& v, const std::string& where) {
    if (!v.is_string()) {
        fail(where, "expected a date \"YYYY-MM-DD\"");
    }
    std::string s = v.get<std::string>();
    int y = digits(s, 0, 4);
    int m = digits(s, 5, 2);
    int d = digits(s, 8, 2);
    std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{unsigned(m)},
                                    std::chrono::day{unsigned(d)}};
    if (s.size() != 10 || s[4] != '-' || s[7] != '-' || y < 0 || m < 0 || d < 0 || !ymd.ok()) {
        fail(where, "expected a date \"YYYY-MM-DD\", got " + json_quote(s));
    }
    return std::chrono::sys_days{ymd};
}

// "HH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM]" → seconds since 00:00 UTC.
std::chrono::seconds parse_time_of_day(const json& v, const std::string& where) {
    auto bad = [&](const std::string& s) {
        fail(where,
             "expected a time \"HH:MM:SS\" with an optional Z or UTC offset, got " + json_quote(s));
    };
    if (!v.is_string()) {
        bad(v.dump());
    }
    std::string s = v.get<std::string>();
    int h = digits(s, 0, 2);
    int m = digits(s, 3, 2);
    if (h < 0 || m < 0 || s[2] != ':' || h > 23 || m > 59) {
        bad(s);
    }
    std::size_t pos = 5;
    int sec = 0;
    if (pos < s.size() && s[pos] == ':') {
        sec = digits(s, pos + 1, 2);
        if (sec < 0 || sec > 59) {
            bad(s);
        }
        pos += 3;
        if (pos < s.size() && s[pos] == '.') {
            ++pos;
            while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
                ++pos;
            }
        }
    }
    long offset = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh = digits(s, pos + 1, 2);
        int om = digits(s, pos + 4, 2);
        if (oh < 0 || om < 0 || s[pos + 3] != ':') {
            bad(s);
        }
        offset = (oh * 3600L + om * 60L) * (s[pos] == '-' ? -1 : 1);
        pos += 6;
    }
    if (pos != s.size()) {
        bad(s);
    }
    long t = h * 3600L + m * 60L + sec - offset;
    t = ((t % 86400) + 86400) % 86400;
    return std::chrono::seconds{t};
}

price_constraint parse_constraint(const json& v, const std::string& where) {
    if (!v.is_object()) {
        fail(where, "expected an object");
    }
    price_constraint c;
    for (auto& [k, val] : v.items()) {
        if (k == "start_date") {
            c.start_date = parse_date(val, where + ".start_date");
        } else if (k == "start_time") {
            c.start_time = parse_time_of_day(val, where + ".start_time");
        } else if (k == "end_time") {
            c.end_time = parse_time_of_day(val, where + ".end_time");
        } else {
            fail(where, "unknown constraint \"" + k + "\"");
        }
    }
    if (c.start_time.has_value() != c.end_time.has_value()) {
        fail(where, "start_time and end_time go together");
    }
    if (!c.start_date && !c.start_time) {
        fail(where, "empty constraint");
    }
    return c;
}

std::vector<conditional_prices> parse_prices(const json& v, const std::string& where) {
    std::vector<conditional_prices> out;
    if (v.is_object()) {
        conditional_prices cp;
        cp.prices = parse_model_prices(v, where);
        out.push_back(std::move(cp));
        return out;
    }
    if (!v.is_array() || v.empty()) {
        fail(where, "expected an object of prices or a non-empty list of conditional prices");
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
        std::string w = where + "[" + std::to_string(i) + "]";
        const json& c = v[i];
        if (!c.is_object()) {
            fail(w, "expected {\"constraint\", \"prices\"}");
        }
        for (auto& [k, _] : c.items()) {
            if (k != "constraint" && k != "prices") {
                fail(w, "unknown field \"" + k + "\"");
            }
        }
        conditional_prices cp;
        if (auto it = c.find("constraint"); it != c.end() && !it->is_null()) {
            cp.constraint = parse_constraint(*it, w + ".constraint");
        }
        cp.prices = parse_model_prices(member(c, "prices", w), w + ".prices");
        out.push_back(std::move(cp));
    }
    return out;
}

std::string label(const std::string& base, std::size_t i, const json& obj) {
    std::string s = base + "[" + std::to_string(i) + "]";
    if (obj.is_object()) {
        auto it = obj.find("id");
        if (it != obj.end() && it->is_string()) {
            s += " (" + it->get<std::string>() + ")";
        }
    }
    return s;
}

std::string normalize_provider_id(std::string_view id) {
    auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    while (!id.empty() && is_space(id.front())) {
        id.remove_prefix(1);
    }
    while (!id.empty() && is_space(id.back())) {
        id.remove_suffix(1);
    }
    return to_lower(id);
}

}  // namespace

// --- match clauses ---

namespace {

match_clause parse_clause_json(const json& v, const std::string& where);

}  // namespace

match_clause match_clause::leaf(kind k, std::string value) {
    if (k == kind::any_of || k == kind::all_of) {
        throw std::invalid_argument("match_clause::leaf: not a leaf kind");
    }
    match_clause c;
    c.kind_ = k;
    if (k == kind::regex) {
        c.regex_ = compile_regex(value);
    }
    c.lower_value_ = to_lower(value);
    c.value_ = std::move(value);
    return c;
}

match_clause match_clause::group(kind k, std::vector<match_clause> children) {
    if (k != kind::any_of && k != kind::all_of) {
        throw std::invalid_argument("match_clause::group: not an or / and");
    }
    match_clause c;
    c.kind_ = k;
    c.children_ = std::move(children);
    return c;
}

bool match_clause::matches(std::string_view text) const {
    std::string rule;
    return matches(text, rule);
}

namespace {
constexpr std::size_t max_regex_subject = 512;
}  // namespace

bool match_clause::matches(std::string_view text, std::string& rule) const {
    bool ok = false;
    switch (kind_) {
        case kind::equals:
            ok = iequals(text, lower_value_);
            break;
        case kind::starts_with:
            ok = istarts_with(text, lower_value_);
            break;
        case kind::ends_with:
            ok = iends_with(text, lower_value_);
            break;
        case kind::contains:
            ok = icontains(text, lower_value_);
            break;
        case kind::regex:
            // libstdc++'s regex matcher recurses once per character: a model name (which the
            // client chooses) longer than any real one is not matched by a pattern at all.
            ok = regex_ && text.size() <= max_regex_subject &&
                 std::regex_search(text.begin(), text.end(), regex_->re);
            break;
        case kind::any_of:
            for (const auto& c : children_) {
                if (c.matches(text, rule)) {
                    return true;
                }
            }
            return false;
        case kind::all_of:
            for (const auto& c : children_) {
                if (!c.matches(text)) {
                    return false;
                }
            }
            ok = true;
            break;
    }
    if (ok) {
        rule = to_string();
    }
    return ok;
}

std::string match_clause::to_string() const {
    auto list = [this](const char* name) {
        std::string s = std::string(name) + " [";
        for (std::size_t i = 0; i < children_.size(); ++i) {
            s += (i ? ", " : "") + children_[i].to_string();
        }
        return s + "]";
    };
    switch (kind_) {
        case kind::equals:
            return "equals " + json_quote(value_);
        case kind::starts_with:
            return "starts_with " + json_quote(value_);
        case kind::ends_with:
            return "ends_with " + json_quote(value_);
        case kind::contains:
            return "contains " + json_quote(value_);
        case kind::regex:
            return "regex " + json_quote(value_);
        case kind::any_of:
            return list("or");
        case kind::all_of:
            return list("and");
    }
    return {};
}

match_clause match_clause::from_json_text(std::string_view json_text, std::string_view where) {
    json v;
    try {
        v = json::parse(json_text);
    } catch (const json::exception& e) {
        fail(std::string(where), std::string("not JSON (") + e.what() + ")");
    }
    return parse_clause_json(v, std::string(where));
}

namespace {

match_clause parse_clause_json(const json& v, const std::string& where) {
    if (!v.is_object() || v.size() != 1) {
        fail(where,
             "expected one of {\"equals\"|\"starts_with\"|\"ends_with\"|\"contains\"|\"regex\": "
             "string} or {\"or\"|\"and\": [clauses]}");
    }
    const auto& key = v.begin().key();
    const json& val = v.begin().value();
    std::string w = where + "." + key;
    using kind = match_clause::kind;
    static const std::pair<const char*, kind> leaves[] = {{"equals", kind::equals},
                                                          {"starts_with", kind::starts_with},
                                                          {"ends_with", kind::ends_with},
                                                          {"contains", kind::contains},
                                                          {"regex", kind::regex}};
    for (const auto& [name, k] : leaves) {
        if (key == name) {
            if (!val.is_string()) {
                fail(w, "expected a string");
            }
            try {
                return match_clause::leaf(k, val.get<std::string>());
            } catch (const price_data_error& e) {
                fail(w, e.what());
            }
        }
    }
    if (key == "or" || key == "and") {
        if (!val.is_array() || val.empty()) {
            fail(w, "expected a non-empty list of clauses");
        }
        std::vector<match_clause> children;
        for (std::size_t i = 0; i < val.size(); ++i) {
            children.push_back(parse_clause_json(val[i], w + "[" + std::to_string(i) + "]"));
        }
        return match_clause::group(key == "or" ? kind::any_of : kind::all_of, std::move(children));
    }
    fail(where, "unknown match clause \"" + key + "\"");
}

}  // namespace

}  // namespace llm_proxy::llm

namespace llm_proxy::llm {

namespace detail {
// Generated at build time from src/llm/default_prices.json (cmake/EmbedText.cmake).
extern const char default_prices_json[];
extern const std::size_t default_prices_json_size;
}  // namespace detail

// --- prices ---

money unit_price::at(std::uint64_t total_input_tokens) const {
    const tier* best = nullptr;
    for (const auto& t : tiers) {
        if (total_input_tokens > t.start && (!best || t.start >= best->start)) {
            best = &t;
        }
    }
    return best ? best->price : base;
}

const unit_price* model_prices::find(std::string_view field) const {
    for (const auto& [name, p] : fields) {
        if (name == field) {
            return &p;
        }
    }
    return nullptr;
}

bool price_constraint::active_at(system_clock::time_point t) const {
    auto day = std::chrono::floor<std::chrono::days>(t);
    if (start_date && day < *start_date) {
        return false;
    }
    if (start_time && end_time) {
        auto tod = std::chrono::floor<std::chrono::seconds>(t - day);
        return *start_time <= tod && tod < *end_time;
    }
    return true;
}

const model_prices& model_info::prices_at(system_clock::time_point t) const {
    for (auto it = prices.rbegin(); it != prices.rend(); ++it) {
        if (!it->constraint || it->constraint->active_at(t)) {
            return it->prices;
        }
    }
    return prices.front().prices;
}

// --- loading ---

namespace {

model_info parse_model(const json& v, const std::string& where) {
    if (!v.is_object()) {
        fail(where, "expected a model object");
    }
    model_info m;
    m.id = string_member(v, "id", where, true);
    if (m.id.empty()) {
        fail(where + ".id", "empty");
    }
    m.name = string_member(v, "name", where, false);
    m.match = parse_clause_json(member(v, "match", where), where + ".match");
    m.prices = parse_prices(member(v, "prices", where), where + ".prices");
    if (auto it = v.find("deprecated"); it != v.end()) {
        if (!it->is_boolean()) {
            fail(where + ".deprecated", "expected true or false");
        }
        m.deprecated = it->get<bool>();
    }
    m.price_comments = string_member(v, "price_comments", where, false);
    if (auto it = v.find("prices_checked"); it != v.end()) {
        parse_date(*it, where + ".prices_checked");
        m.prices_checked = it->get<std::string>();
    }
    return m;
}

}  // namespace

price_table price_table::parse(std::string_view json_text) {
    json doc;
    try {
        doc = json::parse(json_text);
    } catch (const json::exception& e) {
        throw price_data_error(std::string("not JSON: ") + e.what());
    }
    if (!doc.is_array()) {
        throw price_data_error("expected a list of providers (genai-prices v2 data.json)");
    }
    if (doc.empty()) {
        throw price_data_error("no providers");
    }
    price_table table;
    std::set<std::string> ids;
    for (std::size_t i = 0; i < doc.size(); ++i) {
        const json& pv = doc[i];
        std::string where = label("providers", i, pv);
        if (!pv.is_object()) {
            fail(where, "expected a provider object");
        }
        provider_info p;
        p.id = string_member(pv, "id", where, true);
        if (p.id.empty()) {
            fail(where + ".id", "empty");
        }
        if (!ids.insert(p.id).second) {
            fail(where + ".id", "duplicate provider id " + json_quote(p.id));
        }
        p.name = string_member(pv, "name", where, true);
        p.api_pattern = string_member(pv, "api_pattern", where, true);
        try {
            p.api_regex_ = compile_regex(p.api_pattern);
        } catch (const price_data_error& e) {
            fail(where + ".api_pattern", e.what());
        }
        if (auto it = pv.find("model_match"); it != pv.end() && !it->is_null()) {
            p.model_match = parse_clause_json(*it, where + ".model_match");
        }
        if (auto it = pv.find("provider_match"); it != pv.end() && !it->is_null()) {
            p.provider_match = parse_clause_json(*it, where + ".provider_match");
        }
        if (auto it = pv.find("fallback_model_providers"); it != pv.end()) {
            if (!it->is_array()) {
                fail(where + ".fallback_model_providers", "expected a list of provider ids");
            }
            for (const auto& f : *it) {
                if (!f.is_string()) {
                    fail(where + ".fallback_model_providers", "expected a list of provider ids");
                }
                p.fallback_model_providers.push_back(f.get<std::string>());
            }
        }
        const json& models = member(pv, "models", where);
        if (!models.is_array()) {
            fail(where + ".models", "expected a list of models");
        }
        for (std::size_t j = 0; j < models.size(); ++j) {
            p.models.push_back(parse_model(models[j], where + "." + label("models", j, models[j])));
        }
        table.providers_.push_back(std::move(p));
    }
    for (const auto& p : table.providers_) {
        for (const auto& f : p.fallback_model_providers) {
            if (!ids.count(f)) {
                throw price_data_error("providers (" + p.id +
                                       ").fallback_model_providers: unknown provider " +
                                       json_quote(f));
            }
        }
    }
    return table;
}

std::string_view price_table::builtin_json() {
    return {detail::default_prices_json, detail::default_prices_json_size};
}

const price_table& price_table::builtin() {
    static const price_table table = parse(builtin_json());
    return table;
}

// --- lookup ---

const provider_info* price_table::find_provider(provider p) const {
    return find_provider(std::string_view(to_string(p)));  // our names are genai-prices' ids
}

const provider_info* price_table::find_provider(std::string_view provider_id) const {
    std::string id = normalize_provider_id(provider_id);
    for (const auto& p : providers_) {
        if (p.id == id) {
            return &p;
        }
    }
    for (const auto& p : providers_) {
        if (p.provider_match && p.provider_match->matches(id)) {
            return &p;
        }
    }
    return nullptr;
}

const provider_info* price_table::find_provider_by_url(std::string_view base_url) const {
    for (const auto& p : providers_) {
        if (p.api_regex_ && base_url.size() <= max_regex_subject &&
            std::regex_search(base_url.begin(), base_url.end(), p.api_regex_->re,
                              std::regex_constants::match_continuous)) {
            return &p;
        }
    }
    return nullptr;
}

const provider_info* price_table::find_provider_by_model(std::string_view model_ref) const {
    for (const auto& p : providers_) {
        if (p.model_match && p.model_match->matches(model_ref)) {
            return &p;
        }
    }
    return nullptr;
}

namespace {

// `model_ref` already lower-cased.
std::optional<found_model> find_in(const provider_info& p, std::string_view model_ref) {
    for (const auto& m : p.models) {
        std::string rule;
        if (m.match.matches(model_ref, rule)) {
            return found_model{&p, &m, std::move(rule)};
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<found_model> price_table::find_model(const provider_info& p,
                                                   std::string_view model_ref) const {
    std::string key = p.id;
    key += '\n';
    key += to_lower(model_ref);
    if (auto hit = lookups_.find(key)) {
        return *hit;
    }
    auto found = find_uncached(p, std::string_view(key).substr(p.id.size() + 1));
    lookups_.put(std::move(key), found);
    return found;
}

std::optional<std::optional<found_model>> price_table::lookup_cache::find(
    const std::string& key) const {
    std::shared_lock lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) {
        return std::nullopt;
    }
    return it->second;
}

void price_table::lookup_cache::put(std::string key, std::optional<found_model> value) {
    std::unique_lock lock(mutex_);
    if (map_.size() >= max_entries) {
        map_.clear();  // model names are a small set; this bounds a stream of made-up ones
    }
    map_.emplace(std::move(key), std::move(value));
}

std::optional<found_model> price_table::find_uncached(const provider_info& p,
                                                      std::string_view ref) const {
    if (auto m = find_in(p, ref)) {
        return m;
    }
    for (const auto& id : p.fallback_model_providers) {
        auto fb = std::find_if(providers_.begin(), providers_.end(),
                               [&id](const provider_info& q) { return q.id == id; });
        if (fb != providers_.end() && &*fb != &p) {
            if (auto m = find_in(*fb, ref)) {
                return m;
            }
        }
    }
    return std::nullopt;
}

// --- pricing ---

std::optional<price_result> price_table::price(const model_prices& mp, const usage& u) {
    const std::uint64_t in = u.input_tokens.value_or(0);
    const std::uint64_t cache_read = u.cache_read_tokens.value_or(0);
    const std::uint64_t cache_write = u.cache_write_tokens.value_or(0);
    const std::uint64_t cache_write_1h = u.cache_write_1h_tokens.value_or(0);
    const std::uint64_t input_audio = u.input_audio_tokens.value_or(0);
    const std::uint64_t out = u.output_tokens.value_or(0);
    const std::uint64_t reasoning = u.reasoning_tokens.value_or(0);
    const std::uint64_t output_audio = u.output_audio_tokens.value_or(0);

    if (cache_write_1h > cache_write || cache_read > in || cache_write > in - cache_read) {
        return std::nullopt;  // the parts exceed the whole
    }
    // The first of `names` the model has a price for: a kind of token without its own price
    // costs what its parent kind costs (cache reads and writes, audio: input; reasoning: output).
    auto first_of = [&mp](std::initializer_list<const char*> names) -> const unit_price* {
        for (const char* n : names) {
            if (const unit_price* p = mp.find(n)) {
                return p;
            }
        }
        return nullptr;
    };
    // Tiers are chosen by the call's total input tokens, for every kind of token.
    auto cost = [in](const unit_price* p, std::uint64_t tokens) {
        return p && tokens ? p->at(in).per_mtok(tokens) : money{};
    };
    try {
        price_result r;
        std::uint64_t uncached = in - cache_read - cache_write;
        if (const unit_price* audio = mp.find("input_audio_mtok"); audio && input_audio) {
            if (input_audio > uncached) {
                return std::nullopt;
            }
            uncached -= input_audio;
            r.input += cost(audio, input_audio);
        }
        r.input += cost(mp.find("input_mtok"), uncached);
        r.input += cost(first_of({"cache_read_mtok", "input_mtok"}), cache_read);
        std::uint64_t other_writes = cache_write;
        if (const unit_price* w1h = mp.find("cache_write_1h_mtok")) {
            r.input += cost(w1h, cache_write_1h);
            other_writes -= cache_write_1h;
        }
        r.input += cost(first_of({"cache_write_mtok", "input_mtok"}), other_writes);

        std::uint64_t text_out = out;
        if (const unit_price* audio = mp.find("output_audio_mtok"); audio && output_audio) {
            if (output_audio > text_out) {
                return std::nullopt;
            }
            text_out -= output_audio;
            r.output += cost(audio, output_audio);
        }
        if (const unit_price* rp = mp.find("output_reasoning_mtok"); rp && reasoning) {
            if (reasoning > text_out) {
                return std::nullopt;
            }
            text_out -= reasoning;
            r.output += cost(rp, reasoning);
        }
        r.output += cost(mp.find("output_mtok"), text_out);

        if (const unit_price* req = mp.find("requests_kcount")) {
            r.requests = req->at(in).times_ratio(1, 1000);
        }
        r.total = r.input + r.output + r.requests;
        return r;
    } catch (const std::exception&) {
        return std::nullopt;  // out of range
    }
}

std::optional<price_result> price_table::price(const found_model& m, const usage& u,
                                               system_clock::time_point at) {
    if (!m.model || !m.provider) {
        return std::nullopt;
    }
    auto r = price(m.model->prices_at(at), u);
    if (r) {
        r->provider_id = m.provider->id;
        r->model_id = m.model->id;
        r->model_name = m.model->name;
        r->match_rule = m.rule;
    }
    return r;
}

std::optional<price_result> price_table::price(const provider_info& p, std::string_view model_ref,
                                               const usage& u, system_clock::time_point at) const {
    auto m = find_model(p, model_ref);
    if (!m) {
        return std::nullopt;
    }
    return price(*m, u, at);
}

std::optional<price_result> price_table::price(provider p, std::string_view model_ref,
                                               const usage& u, system_clock::time_point at) const {
    const provider_info* info = find_provider(p);
    if (!info) {
        return std::nullopt;
    }
    return price(*info, model_ref, u, at);
}

std::optional<price_result> price_table::price(const call& c, system_clock::time_point at) const {
    const provider_info* info = find_provider(c.provider);
    if (!info) {
        return std::nullopt;
    }
    for (const std::string* model : {&c.response_model, &c.request_model}) {
        if (!model->empty()) {
            if (auto m = find_model(*info, *model)) {
                return price(*m, c.usage, at);
            }
        }
    }
    return std::nullopt;
}

}  // namespace llm_proxy::llm

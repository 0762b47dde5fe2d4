// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): required fields present and of
// their type, `time` equal to the sum of the timings, valid UTF-8. A problem inside an entry
// is reported at the line where the entry starts.

#include "check_har.hpp"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>

#include "check_util.hpp"
#include "json_text.hpp"
#include "llm_proxy/util/json_cursor.hpp"

namespace llm_proxy::exporter::detail {

using json = nlohmann::json;

namespace {

std::uint64_t line_at(std::string_view text, std::size_t offset) {
    offset = std::min(offset, text.size());
    return 1 + static_cast<std::uint64_t>(std::count(
                   text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

// Where each element of log.entries starts, without a parse tree: just enough JSON to skip
// values.
std::vector<std::size_t> entry_offsets(std::string_view text) {
    std::vector<std::size_t> out;
    json_cursor c(text);
    // Moves into the value of member `key` of the object under the cursor.
    auto enter_member = [&c](std::string_view key) {
        if (!c.next('{')) {
            return false;
        }
        std::string_view k;
        while (c.key(k)) {
            if (k == key) {
                return true;
            }
            c.space();
            if (!c.value() || !c.next(',')) {
                return false;
            }
        }
        return false;
    };
    if (!enter_member("log") || !enter_member("entries") || !c.next('[') || c.next(']')) {
        return out;
    }
    while (!c.at_end()) {
        c.space();
        out.push_back(c.pos());
        if (!c.value() || !c.next(',')) {
            return out;
        }
    }
    return out;
}

class entry_checker {
  public:
    entry_checker(check_result& r, std::uint64_t line, std::size_t index)
        : r_(r), line_(line), prefix_("entries[" + std::to_string(index) + "]") {}

    void check(const json& e) {
        if (!e.is_object()) {
            problem("", "not an object");
            return;
        }
        static const std::regex date(
            R"(^(\d{4})(-)?(\d\d)(-)?(\d\d)(T)?(\d\d)(:)?(\d\d)(:)?(\d\d)(\.\d+)?(Z|([+-])(\d\d)(:)?(\d\d)))");
        if (auto d = required(e, "", "startedDateTime", &json::is_string)) {
            if (!std::regex_search(d->get_ref<const std::string&>(), date)) {
                problem("startedDateTime", "is not an ISO 8601 date and time");
            }
        }
        const json* time = required(e, "", "time", &json::is_number);
        if (time && time->get<double>() < 0) {
            problem("time", "is negative");
        }
        if (auto req = required(e, "", "request", &json::is_object)) {
            request(*req);
        }
        if (auto resp = required(e, "", "response", &json::is_object)) {
            response(*resp);
        }
        required(e, "", "cache", &json::is_object);
        if (auto t = required(e, "", "timings", &json::is_object)) {
            timings(*t, time);
        }
        if (auto ip = e.find("serverIPAddress"); ip != e.end() && !ip->is_string()) {
            problem("serverIPAddress", "must be a string");
        }
    }

  private:
    void problem(const std::string& path, const std::string& what) {
        r_.add(line_, prefix_ + (path.empty() ? "" : "." + path) + ": " + what);
    }

    // The member `key` of `o` when present and of its type; a problem otherwise.
    const json* required(const json& o, const std::string& in, const char* key,
                         bool (json::*type)() const noexcept) {
        std::string path = in.empty() ? key : in + "." + key;
        auto it = o.find(key);
        if (it == o.end()) {
            problem(path, "missing");
            return nullptr;
        }
        if (!((*it).*type)()) {
            problem(path, "has the wrong type");
            return nullptr;
        }
        return &*it;
    }

    void name_values(const json& o, const std::string& in, const char* key, bool value_needed) {
        auto list = required(o, in, key, &json::is_array);
        if (list == nullptr) {
            return;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            const auto& nv = (*list)[i];
            std::string path = in + "." + key + "[" + std::to_string(i) + "]";
            if (!nv.is_object()) {
                problem(path, "not an object");
                continue;
            }
            required(nv, path, "name", &json::is_string);
            if (value_needed || nv.contains("value")) {
                required(nv, path, "value", &json::is_string);
            }
        }
    }

    void request(const json& q) {
        required(q, "request", "method", &json::is_string);
        if (auto url = required(q, "request", "url", &json::is_string)) {
            if (!boost::urls::parse_uri(url->get_ref<const std::string&>())) {
                problem("request.url", "is not an absolute URI");
            }
        }
        required(q, "request", "httpVersion", &json::is_string);
        name_values(q, "request", "cookies", false);
        name_values(q, "request", "headers", true);
        name_values(q, "request", "queryString", true);
        required(q, "request", "headersSize", &json::is_number_integer);
        required(q, "request", "bodySize", &json::is_number_integer);
        if (auto p = q.find("postData"); p != q.end()) {
            if (!p->is_object()) {
                problem("request.postData", "not an object");
            } else {
                required(*p, "request.postData", "mimeType", &json::is_string);
                if (auto t = p->find("text"); t != p->end() && !t->is_string()) {
                    problem("request.postData.text", "must be a string");
                }
            }
        }
    }

    void response(const json& s) {
        required(s, "response", "status", &json::is_number_integer);
        required(s, "response", "statusText", &json::is_string);
        required(s, "response", "httpVersion", &json::is_string);
        name_values(s, "response", "cookies", false);
        name_values(s, "response", "headers", true);
        if (auto c = required(s, "response", "content", &json::is_object)) {
            required(*c, "response.content", "size", &json::is_number_integer);
            required(*c, "response.content", "mimeType", &json::is_string);
            for (const char* key : {"text", "encoding"}) {
                if (auto t = c->find(key); t != c->end() && !t->is_string()) {
                    problem(std::string("response.content.") + key, "must be a string");
                }
            }
        }
        required(s, "response", "redirectURL", &json::is_string);
        required(s, "response", "headersSize", &json::is_number_integer);
        required(s, "response", "bodySize", &json::is_number_integer);
    }

    void timings(const json& t, const json* time) {
        double sum = 0;
        for (const char* key : {"send", "wait", "receive"}) {
            if (auto v = required(t, "timings", key, &json::is_number)) {
                if (v->get<double>() < 0) {
                    problem(std::string("timings.") + key, "must not be negative");
                } else {
                    sum += v->get<double>();
                }
            }
        }
        // ssl is part of connect (HAR 1.2): it is not added again.
        for (const char* key : {"blocked", "dns", "connect", "ssl"}) {
            if (auto v = t.find(key); v != t.end()) {
                if (!v->is_number() || v->get<double>() < -1) {
                    problem(std::string("timings.") + key, "must be a number, -1 when unknown");
                } else if (v->get<double>() >= 0 && std::string_view(key) != "ssl") {
                    sum += v->get<double>();
                }
            }
        }
        if (time != nullptr && std::fabs(time->get<double>() - sum) > 1e-3) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "time %g is not the sum of the timings (%g)",
                          time->get<double>(), sum);
            r_.add(line_, prefix_ + ": " + buf);
        }
    }

    check_result& r_;
    std::uint64_t line_;
    std::string prefix_;
};

}  // namespace

void check_har(std::string_view text, check_result& r) {
    if (auto bad = first_invalid_utf8(text); bad != std::string_view::npos) {
        r.add(line_at(text, bad), "not valid UTF-8");
        return;
    }
    json har;
    try {
        har = json::parse(text);
    } catch (const json::parse_error& e) {
        r.add(line_at(text, e.byte == 0 ? 0 : e.byte - 1),
              "not valid JSON (" +
                  std::string(e.what()).substr(std::string(e.what()).find(']') + 2) + ")");
        return;
    }
    auto log = har.is_object() ? har.find("log") : har.end();
    if (log == har.end() || !log->is_object()) {
        r.add(1, "no \"log\" object");
        return;
    }
    if (!log->contains("version") || !(*log)["version"].is_string()) {
        r.add(1, "log.version: missing");
    } else if ((*log)["version"] != "1.2") {
        r.add(1, "log.version: " + (*log)["version"].get<std::string>() + ", not 1.2");
    }
    const auto creator = log->find("creator");
    if (creator == log->end() || !creator->is_object() || !creator->contains("name") ||
        !(*creator)["name"].is_string() || !creator->contains("version") ||
        !(*creator)["version"].is_string()) {
        r.add(1, "log.creator: needs \"name\" and \"version\" strings");
    }
    auto entries = log->find("entries");
    if (entries == log->end() || !entries->is_array()) {
        r.add(1, "log.entries: missing");
        return;
    }
    auto offsets = entry_offsets(text);
    std::uint64_t line = 1;  // counted on from one entry to the next
    std::size_t counted_to = 0;
    for (std::size_t i = 0; i < entries->size(); ++i) {
        ++r.items;
        if (i < offsets.size() && offsets[i] >= counted_to) {
            line += static_cast<std::uint64_t>(
                std::count(text.begin() + static_cast<std::ptrdiff_t>(counted_to),
                           text.begin() + static_cast<std::ptrdiff_t>(offsets[i]), '\n'));
            counted_to = offsets[i];
        }
        entry_checker(r, line, i).check((*entries)[i]);
    }
}

}  // namespace llm_proxy::exporter::detail

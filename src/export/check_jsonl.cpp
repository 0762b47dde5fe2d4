// The provider-neutral line's schema (docs/export.md): every key present, each of its type.

#include "check_util.hpp"
#include "llm_proxy/export/check.hpp"
#include "llm_proxy/llm/record_reader.hpp"

namespace llm_proxy::exporter {

using json = nlohmann::json;
using detail::at;
using detail::in_quotes;

namespace {

enum kind : unsigned {
    string = 1,
    null = 2,
    boolean = 4,
    integer = 8,
    number = 16,
    array = 32,
    object = 64,
};

bool is(const json& v, unsigned kinds) {
    return ((kinds & string) && v.is_string()) || ((kinds & null) && v.is_null()) ||
           ((kinds & boolean) && v.is_boolean()) || ((kinds & integer) && v.is_number_integer()) ||
           ((kinds & number) && v.is_number()) || ((kinds & array) && v.is_array()) ||
           ((kinds & object) && v.is_object());
}

std::string kinds_text(unsigned kinds) {
    std::string out;
    const std::pair<unsigned, const char*> names[] = {
        {string, "a string"}, {integer, "an integer"}, {number, "a number"}, {boolean, "a boolean"},
        {array, "a list"},    {object, "an object"},   {null, "null"}};
    for (const auto& [k, name] : names) {
        if (kinds & k) {
            out += out.empty() ? "" : " or ";
            out += name;
        }
    }
    return out;
}

struct field {
    const char* name;
    unsigned kinds;
    bool required = true;
};

// Each field of `fields` present in `o` with its type; no other key.
void fields_of(const json& o, std::initializer_list<field> fields, const std::string& where,
               std::vector<std::string>& out) {
    for (const auto& f : fields) {
        auto it = o.find(f.name);
        if (it == o.end()) {
            if (f.required) {
                out.push_back(where + "missing " + in_quotes(f.name));
            }
        } else if (!is(*it, f.kinds)) {
            out.push_back(where + in_quotes(f.name) + " must be " + kinds_text(f.kinds));
        }
    }
    for (const auto& [key, value] : o.items()) {
        bool known = false;
        for (const auto& f : fields) {
            known = known || key == f.name;
        }
        if (!known) {
            out.push_back(where + "unexpected key " + in_quotes(key));
        }
    }
}

}  // namespace

void check_jsonl_line(std::string_view line, std::vector<std::string>& out) {
    auto parsed = detail::parse_line(line, out);
    if (!parsed) {
        return;
    }
    const json& j = *parsed;
    if (!j.is_object()) {
        out.push_back("not a JSON object");
        return;
    }
    fields_of(j,
              {{"time", string},
               {"record", string},
               {"host", string},
               {"provider", string | null},
               {"api", string | null},
               {"model", string | null},
               {"request_model", string | null},
               {"stream", boolean | null},
               {"status", integer},
               {"error", string | null},
               {"incomplete", boolean | null},
               {"messages", array | null},
               {"tools", array | null},
               {"parallel_tool_calls", boolean | null},
               {"output", object | null},
               {"choices", integer},
               {"finish_reason", string | null},
               {"usage", object},
               {"cost_usd", number | null},
               {"latency_ms", number | null},
               {"first_token_ms", number | null}},
              "", out);
    if (j.contains("time") && j["time"].is_string() &&
        !llm::parse_timestamp(j["time"].get<std::string>())) {
        out.push_back("\"time\" is not an RFC 3339 time");
    }
    if (auto m = j.find("messages"); m != j.end() && m->is_array()) {
        for (std::size_t i = 0; i < m->size(); ++i) {
            const auto& msg = (*m)[i];
            std::string where = at("messages", i);
            if (!msg.is_object()) {
                out.push_back(where + "not an object");
                continue;
            }
            fields_of(msg,
                      {{"role", string},
                       {"content", array},
                       {"tool_calls", array},
                       {"tool_call_id", string | null},
                       {"name", string | null},
                       {"refusal", string | null},
                       {"weight", integer | null},
                       {"is_error", boolean, false}},  // only on failed tool results
                      where, out);
            if (auto c = msg.find("content"); c != msg.end() && c->is_array()) {
                for (std::size_t k = 0; k < c->size(); ++k) {
                    const auto& p = (*c)[k];
                    if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) {
                        out.push_back(where + at("content", k) + "a part needs a \"type\"");
                    }
                }
            }
        }
    }
    if (auto o = j.find("output"); o != j.end() && o->is_object()) {
        fields_of(*o,
                  {{"content", string | null},
                   {"refusal", string | null},
                   {"reasoning", string | null},
                   {"tool_calls", array},
                   {"truncated", boolean}},
                  "output: ", out);
    }
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
        fields_of(*u,
                  {{"input_tokens", integer | null},
                   {"output_tokens", integer | null},
                   {"cache_read_tokens", integer | null},
                   {"cache_write_tokens", integer | null},
                   {"reasoning_tokens", integer | null}},
                  "usage: ", out);
    }
}

}  // namespace llm_proxy::exporter

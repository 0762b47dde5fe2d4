// The rules of an OpenAI chat fine-tuning line (as OpenAI's format checks state them).

#include <set>

#include "check_util.hpp"
#include "llm_proxy/export/check.hpp"

namespace llm_proxy::exporter {

using json = nlohmann::json;
using detail::at;
using detail::in_quotes;

namespace {

const std::set<std::string, std::less<>> top_keys = {"messages", "tools", "parallel_tool_calls",
                                                     "functions"};
const std::set<std::string, std::less<>> message_keys = {
    "role", "content", "name", "tool_calls", "tool_call_id", "weight", "refusal", "function_call"};
const std::set<std::string, std::less<>> roles = {"system", "developer", "user", "assistant",
                                                  "tool"};

// The content is there: a non-empty string or a non-empty list of parts.
bool has_content(const json& m) {
    auto c = m.find("content");
    if (c == m.end() || c->is_null()) {
        return false;
    }
    if (c->is_string()) {
        return !c->get_ref<const std::string&>().empty();
    }
    return c->is_array() && !c->empty();
}

void check_content(const json& m, const std::string& where, std::vector<std::string>& out) {
    auto c = m.find("content");
    if (c == m.end() || c->is_null() || c->is_string()) {
        return;
    }
    if (!c->is_array()) {
        out.push_back(where + "content is neither a string nor a list of parts");
        return;
    }
    for (std::size_t k = 0; k < c->size(); ++k) {
        const auto& p = (*c)[k];
        std::string here = where + at("content", k);
        if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) {
            out.push_back(here + "a part needs a \"type\"");
            continue;
        }
        const auto& type = p["type"].get_ref<const std::string&>();
        if (type == "text") {
            if (!p.contains("text") || !p["text"].is_string()) {
                out.push_back(here + "a text part needs a \"text\" string");
            }
        } else if (type == "image_url") {
            if (m.value("role", "") != "user") {
                out.push_back(here + "images are allowed in user messages only");
            }
            const auto* url = p.contains("image_url") && p["image_url"].is_object() &&
                                      p["image_url"].contains("url")
                                  ? &p["image_url"]["url"]
                                  : nullptr;
            if (url == nullptr || !url->is_string()) {
                out.push_back(here + "an image_url part needs \"image_url\": {\"url\": ...}");
            }
        } else {
            out.push_back(here + "unknown part type " + in_quotes(type));
        }
    }
}

void check_tools(const json& j, std::vector<std::string>& out) {
    if (auto t = j.find("tools"); t != j.end()) {
        if (!t->is_array()) {
            out.push_back("\"tools\" must be a list");
        } else {
            for (std::size_t i = 0; i < t->size(); ++i) {
                const auto& tool = (*t)[i];
                bool ok = tool.is_object() && tool.value("type", "") == "function" &&
                          tool.contains("function") && tool["function"].is_object() &&
                          tool["function"].contains("name") && tool["function"]["name"].is_string();
                if (!ok) {
                    out.push_back(
                        at("tools", i) +
                        "must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
                }
            }
        }
    }
    if (auto p = j.find("parallel_tool_calls"); p != j.end() && !p->is_boolean()) {
        out.push_back("\"parallel_tool_calls\" must be true or false");
    }
}

}  // namespace

void check_openai_chat_line(std::string_view line, std::vector<std::string>& out) {
    auto parsed = detail::parse_line(line, out);
    if (!parsed) {
        return;
    }
    const json& j = *parsed;
    if (!j.is_object()) {
        out.push_back("not a JSON object");
        return;
    }
    for (const auto& [key, value] : j.items()) {
        if (!top_keys.contains(key)) {
            out.push_back("unexpected key " + in_quotes(key));
        }
    }
    auto messages = j.find("messages");
    if (messages == j.end() || !messages->is_array()) {
        out.push_back("no \"messages\" list");
        return;
    }
    std::set<std::string> call_ids;
    bool assistant = false;
    for (std::size_t i = 0; i < messages->size(); ++i) {
        const auto& m = (*messages)[i];
        std::string where = at("messages", i);
        if (!m.is_object()) {
            out.push_back(where + "not an object");
            continue;
        }
        for (const auto& [key, value] : m.items()) {
            if (!message_keys.contains(key)) {
                out.push_back(where + "unexpected key " + in_quotes(key));
            }
        }
        std::string role = m.contains("role") && m["role"].is_string()
                               ? m["role"].get<std::string>()
                               : std::string();
        if (role.empty()) {
            out.push_back(where + "no role");
        } else if (!roles.contains(role)) {
            out.push_back(where + "role " + in_quotes(role) +
                          " is not one of system, developer, user, assistant, tool");
        }
        assistant = assistant || role == "assistant";
        check_content(m, where, out);
        auto calls = m.find("tool_calls");
        bool has_calls = calls != m.end() && calls->is_array() && !calls->empty();
        bool has_function_call = m.contains("function_call") && !m["function_call"].is_null();
        if (!has_content(m) && !has_calls && !has_function_call) {
            out.push_back(where + "no content and no tool calls");
        }
        if (calls != m.end() && !calls->is_null()) {
            if (role != "assistant") {
                out.push_back(where + "tool calls in a " + (role.empty() ? "role-less" : role) +
                              " message");
            }
            if (!calls->is_array()) {
                out.push_back(where + "\"tool_calls\" must be a list");
            } else {
                for (std::size_t k = 0; k < calls->size(); ++k) {
                    const auto& c = (*calls)[k];
                    bool ok = c.is_object() && c.contains("id") && c["id"].is_string() &&
                              c.value("type", "") == "function" && c.contains("function") &&
                              c["function"].is_object() && c["function"].contains("name") &&
                              c["function"]["name"].is_string() &&
                              c["function"].contains("arguments") &&
                              c["function"]["arguments"].is_string();
                    if (!ok) {
                        out.push_back(where + at("tool_calls", k) +
                                      "must be {\"id\", \"type\": \"function\", \"function\": "
                                      "{\"name\", \"arguments\": string}}");
                        continue;
                    }
                    if (!json::accept(c["function"]["arguments"].get_ref<const std::string&>())) {
                        out.push_back(where + at("tool_calls", k) + "arguments are not JSON");
                    }
                    call_ids.insert(c["id"].get<std::string>());
                }
            }
        }
        if (role == "tool") {
            auto id = m.find("tool_call_id");
            if (id == m.end() || !id->is_string()) {
                out.push_back(where + "a tool message needs a \"tool_call_id\"");
            } else if (!call_ids.contains(id->get<std::string>())) {
                out.push_back(where + "tool message answers call id " +
                              in_quotes(id->get<std::string>()) +
                              ", which no earlier assistant message made");
            }
        }
        if (auto w = m.find("weight"); w != m.end()) {
            if (!w->is_number_integer() ||
                (w->get<std::int64_t>() != 0 && w->get<std::int64_t>() != 1)) {
                out.push_back(where + "weight must be 0 or 1");
            } else if (role != "assistant") {
                out.push_back(where + "weight is allowed on assistant messages only");
            }
        }
    }
    if (!assistant) {
        out.push_back("no assistant message");
    }
    check_tools(j, out);
}

}  // namespace llm_proxy::exporter

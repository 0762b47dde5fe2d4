// The rules of a Bedrock Claude fine-tuning line: {"system": "...", "messages": [...]}, at
// least two messages, first a user's, last an assistant's, alternating, no other keys.

#include "check_util.hpp"
#include "llm_proxy/export/check.hpp"

namespace llm_proxy::exporter {

using json = nlohmann::json;
using detail::at;
using detail::in_quotes;

void check_anthropic_line(std::string_view line, std::vector<std::string>& out) {
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
        if (key != "system" && key != "messages") {
            out.push_back("unexpected key " + in_quotes(key) +
                          " (only \"system\" and \"messages\")");
        }
    }
    if (auto s = j.find("system"); s != j.end() && !s->is_string()) {
        out.push_back("\"system\" must be a string");
    }
    auto messages = j.find("messages");
    if (messages == j.end() || !messages->is_array()) {
        out.push_back("no \"messages\" list");
        return;
    }
    if (messages->size() < 2) {
        out.push_back("at least two messages are needed");
    }
    std::string previous;
    for (std::size_t i = 0; i < messages->size(); ++i) {
        const auto& m = (*messages)[i];
        std::string where = at("messages", i);
        if (!m.is_object()) {
            out.push_back(where + "not an object");
            previous.clear();
            continue;
        }
        for (const auto& [key, value] : m.items()) {
            if (key != "role" && key != "content") {
                out.push_back(where + "unexpected key " + in_quotes(key) +
                              " (only \"role\" and \"content\")");
            }
        }
        std::string role = m.contains("role") && m["role"].is_string()
                               ? m["role"].get<std::string>()
                               : std::string();
        if (role != "user" && role != "assistant") {
            out.push_back(where + "role must be \"user\" or \"assistant\"" +
                          (role.empty() ? std::string() : ", not " + in_quotes(role)));
        }
        auto content = m.find("content");
        if (content == m.end() || !content->is_string() ||
            content->get_ref<const std::string&>().empty()) {
            out.push_back(where + "content must be a non-empty string");
        }
        if (i == 0 && role != "user") {
            out.push_back("the first message must be a user's");
        }
        if (i + 1 == messages->size() && messages->size() >= 1 && role != "assistant") {
            out.push_back("the last message must be an assistant's");
        }
        if (i > 0 && !role.empty() && role == previous) {
            out.push_back(where + "follows another " + role +
                          " message: user and assistant must alternate");
        }
        previous = role;
    }
}

}  // namespace llm_proxy::exporter

// The names of the export formats, as --format spells them.

#include "llm_proxy/export/formats.hpp"

namespace llm_proxy::exporter {

namespace {
constexpr std::pair<format, const char*> names[] = {
    {format::openai_chat, "openai-chat"},
    {format::anthropic, "anthropic"},
    {format::jsonl, "jsonl"},
    {format::har, "har"},
};
}  // namespace

std::optional<format> format_from_string(std::string_view s) {
    for (const auto& [f, name] : names) {
        if (s == name) {
            return f;
        }
    }
    return std::nullopt;
}

const char* to_string(format f) {
    for (const auto& [value, name] : names) {
        if (value == f) {
            return name;
        }
    }
    return "jsonl";
}

}  // namespace llm_proxy::exporter

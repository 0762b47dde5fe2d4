#pragma once
// Helpers of the per-format checkers. Internal to src/export.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_proxy::exporter::detail {

// The line as JSON, or nullopt with the parser's complaint added to `problems`.
inline std::optional<nlohmann::json> parse_line(std::string_view line,
                                                std::vector<std::string>& problems) {
    try {
        return nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
        std::string what = e.what();
        // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> from "column"
        auto at = what.find("column");
        problems.push_back("not valid JSON (" + (at == std::string::npos ? what : what.substr(at)) +
                           ")");
        return std::nullopt;
    }
}

inline std::string in_quotes(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

// "messages[3]: " and the like.
inline std::string at(std::string_view list, std::size_t i) {
    return std::string(list) + "[" + std::to_string(i) + "]: ";
}

}  // namespace llm_proxy::exporter::detail

#include "cli/prices_source.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "cli/options.hpp"

namespace llm_proxy::cli {

std::filesystem::path updated_prices_path() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/') {
        return std::filesystem::path(x) / "llm_proxy" / "prices.json";
    }
    return expand_home("~/.cache/llm_proxy/prices.json");
}

std::string read_text_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::invalid_argument("cannot read " + path.string());
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

loaded_prices load_prices(const std::string& prices_file) {
    if (!prices_file.empty()) {
        auto path = expand_home(prices_file);
        try {
            auto table = llm::price_table::parse(read_text_file(path));
            return {std::make_shared<const llm::price_table>(std::move(table)), path.string()};
        } catch (const llm::price_data_error& e) {
            throw std::invalid_argument("--prices " + path.string() +
                                        ": not a genai-prices v2 table: " + e.what());
        }
    }
    auto updated = updated_prices_path();
    std::error_code ec;
    if (std::filesystem::exists(updated, ec)) {
        try {
            auto table = llm::price_table::parse(read_text_file(updated));
            return {std::make_shared<const llm::price_table>(std::move(table)), updated.string()};
        } catch (const std::exception& e) {
            spdlog::warn("ignoring {} ({}); using the built-in prices", updated.string(), e.what());
        }
    }
    // The built-in table lives as long as the program.
    return {std::shared_ptr<const llm::price_table>(&llm::price_table::builtin(),
                                                    [](const llm::price_table*) {}),
            "built in"};
}

}  // namespace llm_proxy::cli

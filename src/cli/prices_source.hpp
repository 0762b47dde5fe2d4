#pragma once
// Which price table a run uses: --prices FILE, else the file `llm_proxy prices update` keeps in
// the user's cache directory, else the table built into the binary.

#include <filesystem>
#include <memory>
#include <string>

#include "llm_proxy/llm/prices.hpp"

namespace llm_proxy::cli {

// $XDG_CACHE_HOME/llm_proxy/prices.json, or ~/.cache/llm_proxy/prices.json.
std::filesystem::path updated_prices_path();

struct loaded_prices {
    std::shared_ptr<const llm::price_table> table;
    std::string origin;  // "built in", or the file it came from
};

// Throws std::invalid_argument (a message for the user) when --prices names a file that is
// missing or not a valid price table. A broken updated file is warned about and skipped.
loaded_prices load_prices(const std::string& prices_file);

// Reads a whole file; throws std::invalid_argument naming it when it cannot.
std::string read_text_file(const std::filesystem::path& path);

}  // namespace llm_proxy::cli

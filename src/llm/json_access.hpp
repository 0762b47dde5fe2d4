#pragma once
// Reading simdjson documents the way the LLM parsers need it: members by name, optional
// strings and counts, and one reusable parser per thread. Internal to src/llm.

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace llm_proxy::llm::json_access {

// simdjson's DOM: it keeps the members in the order the model wrote them, and parses ~30×
// faster than a nlohmann document (the observer parses every answer and every event).
using json = simdjson::dom::element;
using json_array = simdjson::dom::array;

// Compact JSON text.
inline std::string dump(const json& j) {
    return simdjson::minify(j);
}

inline std::optional<json> member(const json& j, std::string_view key) {
    simdjson::dom::object o;
    json v;
    if (j.get_object().get(o) != simdjson::SUCCESS || o.at_key(key).get(v) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return v;
}

inline std::optional<json> object_member(const json& j, std::string_view key) {
    auto m = member(j, key);
    return m && m->is_object() ? m : std::nullopt;
}

inline std::optional<json_array> array_member(const json& j, std::string_view key) {
    json_array a;
    auto m = member(j, key);
    if (!m || m->get_array().get(a) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return a;
}

inline std::optional<std::string_view> as_string(const json& j) {
    std::string_view v;
    if (j.get_string().get(v) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return v;
}

inline std::optional<std::string_view> string_member(const json& j, std::string_view key) {
    auto m = member(j, key);
    return m ? as_string(*m) : std::nullopt;
}

inline std::optional<std::uint64_t> count_member(const json& j, std::string_view key) {
    auto m = member(j, key);
    if (!m) {
        return std::nullopt;
    }
    if (m->is_uint64()) {
        return m->get_uint64().value_unsafe();
    }
    if (m->is_int64()) {
        return std::nullopt;  // negative
    }
    if (m->is_double()) {
        auto v = m->get_double().value_unsafe();
        return v >= 0 && v < 1.8e19 ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(v))
                                    : std::nullopt;
    }
    return std::nullopt;
}

inline bool true_member(const json& j, std::string_view key) {
    auto m = member(j, key);
    return m && m->is_bool() && m->get_bool().value_unsafe();
}

inline std::optional<std::size_t> index_member(const json& j, std::string_view key) {
    auto v = count_member(j, key);
    if (!v || *v > (1u << 30)) {
        return std::nullopt;
    }
    return static_cast<std::size_t>(*v);
}

// The JSON parser of this thread, shared by every request and answer parsed on it: a
// document is only used until the parse that made it returns, and parses on one thread never
// nest. A parser or text buffer grown past 1 MiB by a large document is dropped after use.
class thread_parser {
  public:
    static thread_parser& get() {
        static const bool chosen = choose_implementation();
        (void)chosen;
        thread_local thread_parser p;
        return p;
    }

    // The documents parsed here are small (a request, an answer, one stream event): the
    // AVX2 kernel ("haswell") parses them at least as fast as the AVX-512 one ("icelake"),
    // without waking the wide vector units for a few hundred bytes between other work (in the
    // proxy, the parses' share of the CPU fell from 1.9 % to 1.3-1.7 %, docs/benchmarks.md).
    // SIMDJSON_FORCE_IMPLEMENTATION, when set, decides instead.
    static bool choose_implementation() {
        const char* forced = std::getenv("SIMDJSON_FORCE_IMPLEMENTATION");
        if (forced != nullptr && *forced != '\0') {
            return false;
        }
        const auto& available = simdjson::get_available_implementations();
        const auto* best = available.detect_best_supported();
        const auto* haswell = available["haswell"];
        if (best != nullptr && best->name() == "icelake" && haswell != nullptr &&
            haswell->supported_by_runtime_system()) {
            simdjson::get_active_implementation() = haswell;
            return true;
        }
        return false;
    }

    // nullopt for invalid JSON or invalid UTF-8. The document lives until the next parse.
    std::optional<json> parse(std::string_view text) {
        scratch_.reserve(text.size() + simdjson::SIMDJSON_PADDING);
        scratch_.assign(text);
        return parse_in_place(scratch_);
    }

    // The same without a copy: `text` gets the padding simdjson reads past the end and must
    // outlive the document.
    std::optional<json> parse_in_place(std::string& text) {
        text.reserve(text.size() + simdjson::SIMDJSON_PADDING);
        json root;
        if (parser_.parse(text.data(), text.size(), false).get(root) != simdjson::SUCCESS) {
            return std::nullopt;
        }
        return root;
    }

    // Called when a document is no longer used.
    void trim() {
        if (parser_.capacity() > keep_capacity) {
            parser_ = simdjson::dom::parser{};
        }
        if (scratch_.capacity() > keep_capacity) {
            std::string().swap(scratch_);
        }
    }

  private:
    static constexpr std::size_t keep_capacity = 1u << 20;
    simdjson::dom::parser parser_;
    std::string scratch_;
};

}  // namespace llm_proxy::llm::json_access

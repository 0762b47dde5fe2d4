#include "llm_proxy/web/flow_detail.hpp"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include "llm_proxy/export/record_source.hpp"
#include "llm_proxy/llm/record_json.hpp"
#include "llm_proxy/record/flow_record.hpp"

namespace llm_proxy::web {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> record_text(const disk_location& at) {
    if (at.line == 0) {
        std::ifstream in(at.file, std::ios::binary);
        if (!in) {
            return std::nullopt;
        }
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    }
    return llm::read_segment_line(at.file, at.offset);
}

// The "llm" object of a record that has none (older records, the Go tool's), computed.
void add_computed_llm(nlohmann::json& record, const std::string& text, const std::string& id,
                      const llm::read_options& options) {
    if (record.contains("llm")) {
        return;
    }
    exporter::record_source source(options);
    std::string why;
    if (const auto* f = source.parse(text, id, why); f && f->llm) {
        record["llm"] = llm::to_json(*f->llm);
        record["llm_computed"] = true;
    }
}

flow_entry entry_of_view(const exporter::flow_view& f, disk_location at) {
    flow_entry e;
    e.id = f.id;
    e.time = f.time;
    e.method = std::string(f.method);
    e.host = f.host;
    e.path = f.target;
    e.status = f.has_response ? f.status : 0;
    e.done = true;
    e.error_kind = std::string(f.error_kind);
    e.duration_ms = f.duration_ms;
    if (f.llm) {
        e.model = llm::billed_model(f.llm->call);
        e.input_tokens = f.llm->call.usage.input_tokens;
        e.output_tokens = f.llm->call.usage.output_tokens;
        if (f.llm->cost_usd) {
            e.cost_usd = f.llm->cost_usd->total.to_double();
        }
        e.ttft_ms = f.llm->first_token_ms;
    }
    e.disk = std::move(at);
    return e;
}

}  // namespace

std::optional<nlohmann::json> flow_record(const flow_entry& e, const llm::read_options& options,
                                          const fs::path& records_dir,
                                          const record::record_options& shown) {
    if (e.live) {
        return record::make_record(*e.live, shown, "web");
    }
    auto at = e.disk;
    if (!at && !records_dir.empty()) {
        at = locate_record(records_dir, e.id);
    }
    if (!at) {
        return std::nullopt;
    }
    auto text = record_text(*at);
    if (!text) {
        return std::nullopt;
    }
    auto record = nlohmann::json::parse(*text, nullptr, false);
    if (record.is_discarded() || !record.is_object()) {
        return std::nullopt;
    }
    add_computed_llm(record, *text, e.id, options);
    return record;
}

std::optional<disk_location> locate_record(const fs::path& dir, const std::string& id) {
    std::error_code ec;
    if (auto file = dir / (id + ".json"); fs::is_regular_file(file, ec)) {
        return disk_location{file, 0};
    }
    std::vector<std::pair<fs::file_time_type, fs::path>> segments;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().extension() == ".jsonl" && it->is_regular_file(ec)) {
            segments.emplace_back(it->last_write_time(ec), it->path());
        }
    }
    std::sort(segments.begin(), segments.end(), std::greater<>());
    // A line is a record without whitespace: its own "id" member reads exactly so (inside a
    // string the quotes would be escaped). The line found is parsed to be sure it is the
    // record's own member and not one of a nested object.
    const std::string needle = "\"id\":" + nlohmann::json(id).dump();
    for (const auto& segment : segments) {
        const auto& file = segment.second;  // clang 14: a lambda cannot capture a binding
        std::optional<disk_location> found;
        llm::for_each_segment_line_at(
            file, [&](const std::string& line, std::uint64_t n, std::uint64_t offset) {
                if (line.find(needle) == std::string::npos) {
                    return true;
                }
                auto j = nlohmann::json::parse(line, nullptr, false);
                if (j.is_object() && j.contains("id") && j["id"] == id) {
                    found = disk_location{file, n, offset};
                    return false;
                }
                return true;
            });
        if (found) {
            return found;
        }
    }
    return std::nullopt;
}

std::optional<flow_entry> entry_from_disk(const disk_location& at,
                                          const llm::read_options& options) {
    exporter::record_source source(options);
    std::string why;
    if (at.line == 0) {
        std::error_code ec;
        if (!fs::is_regular_file(at.file, ec)) {
            return std::nullopt;
        }
        const auto* f = source.read(at.file, why);
        return f ? std::optional<flow_entry>(entry_of_view(*f, at)) : std::nullopt;
    }
    auto text = record_text(at);
    const auto* f =
        text ? source.parse(*text, at.file.stem().string() + ":" + std::to_string(at.line), why)
             : nullptr;
    return f ? std::optional<flow_entry>(entry_of_view(*f, at)) : std::nullopt;
}

std::size_t load_records(const std::vector<fs::path>& inputs, flow_store& store,
                         const llm::read_options& options) {
    exporter::record_source source(options);
    std::size_t n = 0;
    exporter::for_each_record_file(inputs, [&](const fs::path& file) {
        std::string why;
        if (file.extension() != ".jsonl") {
            if (const auto* f = source.read(file, why)) {
                store.add(entry_of_view(*f, {file, 0}));
                ++n;
            }
            return;
        }
        const std::string stem = file.stem().string();
        llm::for_each_segment_line_at(
            file, [&](const std::string& line, std::uint64_t number, std::uint64_t offset) {
                if (const auto* f = source.parse(line, stem + ":" + std::to_string(number), why)) {
                    store.add(entry_of_view(*f, {file, number, offset}));
                    ++n;
                }
                return true;
            });
    });
    return n;
}

}  // namespace llm_proxy::web

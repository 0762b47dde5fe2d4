#include "cli/subcommand.hpp"

#include <algorithm>
#include <memory>

namespace llm_proxy::cli {

namespace {
std::vector<std::unique_ptr<subcommand>>& registry() {
    static std::vector<std::unique_ptr<subcommand>> all;
    return all;
}
}  // namespace

subcommand_registration::subcommand_registration(subcommand s) {
    registry().push_back(std::make_unique<subcommand>(std::move(s)));
}

std::vector<const subcommand*> registered_subcommands() {
    std::vector<const subcommand*> out;
    for (const auto& s : registry()) {
        out.push_back(s.get());
    }
    std::stable_sort(out.begin(), out.end(), [](const subcommand* a, const subcommand* b) {
        return a->order != b->order ? a->order < b->order : a->name < b->name;
    });
    return out;
}

}  // namespace llm_proxy::cli

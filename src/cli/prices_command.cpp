// llm_proxy prices update [--url URL] | prices show MODEL [--provider P]

#include <cstdio>
#include <iostream>

#include "cli/http_get.hpp"
#include "cli/prices_source.hpp"
#include "cli/subcommand.hpp"
#include "llm_proxy/util/files.hpp"

namespace llm_proxy::cli {

namespace {

constexpr const char* default_prices_url =
    "https://raw.githubusercontent.com/pydantic/genai-prices/main/prices/new_data/v2/data.json";

struct prices_options {
    std::string url = default_prices_url;
    std::string model;
    std::string provider;
    CLI::App* update = nullptr;
    CLI::App* show = nullptr;
};

int update(const prices_options& o, const global_options& g) {
    http_get_options get;
    if (!g.upstream_ca.empty()) {
        get.extra_ca = expand_home(g.upstream_ca);
    }
    std::string text;
    try {
        text = http_get(o.url, get);
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy prices update: download failed: " << e.what() << "\n";
        return 1;
    }
    std::size_t models = 0;
    try {
        auto table = llm::price_table::parse(text);
        for (const auto& p : table.providers()) {
            models += p.models.size();
        }
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy prices update: " << o.url
                  << " is not a valid genai-prices v2 table, the old prices stay: " << e.what()
                  << "\n";
        return 1;
    }
    auto path = updated_prices_path();
    auto error = files::make_directories(path.parent_path());
    if (error.empty()) {
        error = files::write_file_atomically(path, text, 0644, files::durability::fsync);
    }
    if (!error.empty()) {
        std::cerr << "llm_proxy prices update: " << error << "\n";
        return 1;
    }
    std::cout << "prices updated: " << models << " models from " << o.url << "\n"
              << "saved to " << path.string() << " (used from now on unless --prices is given)\n";
    return 0;
}

int show(const prices_options& o, const global_options& g) {
    loaded_prices prices;
    try {
        prices = load_prices(g.prices_file);
    } catch (const std::exception& e) {
        std::cerr << "llm_proxy prices show: " << e.what() << "\n";
        return 2;
    }
    const auto& table = *prices.table;
    std::vector<const llm::provider_info*> providers;
    if (!o.provider.empty()) {
        if (auto* p = table.find_provider(o.provider)) {
            providers.push_back(p);
        } else {
            std::cerr << "llm_proxy prices show: unknown provider '" << o.provider << "'\n";
            return 2;
        }
    } else if (auto* p = table.find_provider_by_model(o.model)) {
        providers.push_back(p);
    } else {
        for (const auto& p : table.providers()) {
            providers.push_back(&p);
        }
    }
    for (const auto* p : providers) {
        auto found = table.find_model(*p, o.model);
        if (!found) {
            continue;
        }
        std::cout << "model:    " << o.model << "\n"
                  << "priced as " << found->provider->id << " / " << found->model->id;
        if (!found->model->name.empty()) {
            std::cout << " (" << found->model->name << ")";
        }
        std::cout << "\nmatched:  " << found->rule << "\n";
        if (!found->model->prices_checked.empty()) {
            std::cout << "checked:  " << found->model->prices_checked << "\n";
        }
        std::cout << "source:   " << prices.origin << "\n"
                  << "USD per million tokens (per thousand requests for requests_kcount), now:\n";
        const auto& now = found->model->prices_at(std::chrono::system_clock::now());
        for (const auto& [field, price] : now.fields) {
            std::cout << "  " << field << ": " << price.base.to_string();
            for (const auto& t : price.tiers) {
                std::cout << " (above " << t.start << " input tokens: " << t.price.to_string()
                          << ")";
            }
            std::cout << "\n";
        }
        return 0;
    }
    std::cerr << "llm_proxy prices show: no price is known for '" << o.model << "' ("
              << prices.origin << ")\n";
    return 1;
}

const subcommand_registration prices{[] {
    subcommand s;
    s.name = "prices";
    s.description = "Update the price table or show what a model costs";
    s.footer =
        "Prices come from --prices FILE, else the file 'prices update' saved in\n"
        "~/.cache/llm_proxy/prices.json, else the table built into llm_proxy. The format is\n"
        "pydantic's genai-prices v2. See docs/usage-and-cost.md.";
    s.order = 50;
    s.command = [](CLI::App& cmd, const global_options& g) -> std::function<int()> {
        auto o = std::make_shared<prices_options>();
        cmd.require_subcommand(1);
        o->update = cmd.add_subcommand(
            "update", "Download the newest genai-prices v2 table, check it and use it from now on");
        o->update->add_option("--url", o->url, "Where to download it from")->capture_default_str();
        o->show = cmd.add_subcommand("show", "Print what a model costs and which rule matched");
        o->show->add_option("model", o->model, "Model name, e.g. gpt-4o-mini")->required();
        o->show->add_option("--provider", o->provider,
                            "Provider id (openai, anthropic, google...)");
        return [o, &g] { return o->update->parsed() ? update(*o, g) : show(*o, g); };
    };
    return s;
}()};

}  // namespace

}  // namespace llm_proxy::cli

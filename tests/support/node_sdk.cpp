#include "support/node_sdk.hpp"

#include <cstdlib>

namespace llm_proxy::test {

namespace fs = std::filesystem;

fs::path sdk_node_dir() {
    if (const char* d = std::getenv("LLM_PROXY_TEST_NODE_DIR"); d && *d) {
        return d;
    }
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
        return fs::path(x) / "llm_proxy" / "test-node";
    }
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/") / ".cache" / "llm_proxy" / "test-node";
}

fs::path sdk_node_modules() {
    return sdk_node_dir() / "node_modules";
}

std::string missing_node_packages(const std::vector<std::string>& packages) {
    std::string missing;
    for (const auto& p : packages) {
        if (!fs::exists(sdk_node_modules() / p / "package.json")) {
            missing += (missing.empty() ? "" : ", ") + p;
        }
    }
    if (missing.empty()) {
        return {};
    }
    return sdk_node_modules().string() + " lacks " + missing + ": run .ci/install-deps";
}

command_result run_node_script(const fs::path& script, const std::vector<std::string>& args,
                               env_list env, std::chrono::milliseconds timeout) {
    std::vector<std::string> argv = {"node", script.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    spawn_options options;
    options.env = std::move(env);
    options.env.emplace_back("NODE_PATH", sdk_node_modules().string());
    return run_command(std::move(argv), timeout, "", std::move(options));
}

}  // namespace llm_proxy::test

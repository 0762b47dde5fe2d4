#pragma once
// The JavaScript SDKs of the end-to-end tests (openai, @anthropic-ai/sdk, https-proxy-agent,
// installed outside the repository by .ci/install-deps) and a runner for scripts that use them.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace llm_proxy::test {

// Where .ci/install-deps installs them: $LLM_PROXY_TEST_NODE_DIR, else
// $XDG_CACHE_HOME/llm_proxy/test-node, else ~/.cache/llm_proxy/test-node.
std::filesystem::path sdk_node_dir();

// sdk_node_dir()/node_modules.
std::filesystem::path sdk_node_modules();

// "" when every package of `packages` (e.g. "openai", "@anthropic-ai/sdk") is installed, else a
// message naming the missing ones and how to install them.
std::string missing_node_packages(const std::vector<std::string>& packages);

// Runs `node script args...` with the SDKs on NODE_PATH and `env` added to the environment (e.g.
// NODE_EXTRA_CA_CERTS to trust the proxy's CA, or HTTPS_PROXY).
command_result run_node_script(const std::filesystem::path& script,
                               const std::vector<std::string>& args, env_list env = {},
                               std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace llm_proxy::test

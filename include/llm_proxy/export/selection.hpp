#pragma once
// Which records an export takes: --host, --model REGEX, --provider, --since/--until and
// --status (ok: a 2xx answer, the flow did not fail, the call is complete and not an API
// error; all; or status codes and classes such as 200,429,5xx).

#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llm_proxy/export/record_source.hpp"
#include "llm_proxy/llm/call.hpp"

namespace llm_proxy::exporter {

struct status_filter {
    enum class mode { ok, all, codes };
    mode m = mode::ok;
    std::vector<std::pair<unsigned, unsigned>> ranges;  // codes: inclusive ranges

    // "ok", "all", or a comma-separated list of codes (200) and classes (4xx). Throws
    // std::invalid_argument with a message for the user.
    static status_filter parse(std::string_view text);
};

struct selection {
    bool llm_only = true;             // only LLM API calls (every format but har)
    std::vector<std::string> hosts;   // "host" (any port) or "host:port", lower case
    std::optional<std::regex> model;  // searched in the request's and the response's model
    std::vector<llm::provider> providers;
    std::optional<std::chrono::system_clock::time_point> since;  // inclusive
    std::optional<std::chrono::system_clock::time_point> until;  // exclusive
    status_filter status;
};

// nullopt when `f` is selected, else why not (a short reason the summary counts).
std::optional<std::string> rejected(const selection& s, const flow_view& f);

}  // namespace llm_proxy::exporter

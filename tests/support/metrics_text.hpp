#pragma once
// Reading a Prometheus text exposition in tests.

#include <sstream>
#include <string>

namespace llm_proxy::test {

// The value of the sample line that starts with `series` (name with its labels, as rendered)
// followed by a space, or -1 when there is none.
inline double metric_value(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(series + " ")) {
            return std::stod(line.substr(series.size() + 1));
        }
    }
    return -1;
}

}  // namespace llm_proxy::test

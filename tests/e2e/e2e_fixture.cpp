#include "e2e_fixture.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace llm_proxy::test {

std::vector<nlohmann::json> e2e_test::wait_for_records(std::size_t n,
                                                       std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        std::vector<nlohmann::json> out;
        if (std::filesystem::exists(log_dir())) {
            std::vector<std::filesystem::path> files;
            for (const auto& e : std::filesystem::directory_iterator(log_dir())) {
                auto ext = e.path().extension();
                if ((ext == ".json" || ext == ".jsonl") && e.path().filename().string()[0] != '.') {
                    files.push_back(e.path());
                }
            }
            std::sort(files.begin(), files.end());
            for (const auto& f : files) {
                std::string text = read_file(f);
                if (f.extension() == ".json") {
                    out.push_back(nlohmann::json::parse(text));
                    continue;
                }
                // A JSONL segment (--format jsonl): every line is a whole record.
                for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos;
                     at = nl + 1) {
                    out.push_back(nlohmann::json::parse(text.substr(at, nl - at)));
                }
                EXPECT_TRUE(text.empty() || text.back() == '\n') << f << " ends in a cut line";
            }
        }
        if (out.size() >= n || std::chrono::steady_clock::now() > deadline) {
            std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
                return a.value("timestamp", "") < b.value("timestamp", "");
            });
            return out;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

std::optional<std::string> curl_response::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (k.size() == name.size() &&
            std::equal(k.begin(), k.end(), name.begin(),
                       [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
            return v;
        }
    }
    return std::nullopt;
}

curl_response parse_curl_include(const std::string& out) {
    curl_response r;
    std::size_t pos = 0;
    // Skip interim responses (100 Continue, the proxy's "200 Connection established").
    for (;;) {
        auto end = out.find("\r\n\r\n", pos);
        if (end == std::string::npos) {
            r.body = out.substr(pos);
            return r;
        }
        std::string head = out.substr(pos, end - pos);
        std::istringstream in(head);
        std::string line;
        std::getline(in, line);
        r.status = static_cast<unsigned>(std::stoi(line.substr(line.find(' ') + 1, 3)));
        r.headers.clear();
        while (std::getline(in, line)) {
            if (!line.empty() && line.back() == '\r') {
                line.pop_back();
            }
            auto colon = line.find(':');
            if (colon != std::string::npos) {
                auto v = line.substr(colon + 1);
                v.erase(0, v.find_first_not_of(' '));
                r.headers.emplace_back(line.substr(0, colon), v);
            }
        }
        pos = end + 4;
        bool interim = r.status == 100 || (r.status == 200 && head.find("Connection established") !=
                                                                  std::string::npos);
        if (!interim) {
            r.body = out.substr(pos);
            return r;
        }
    }
}

}  // namespace llm_proxy::test

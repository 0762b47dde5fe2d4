// The checker's driver: line by line for the JSONL formats, whole for HAR.

#include <fstream>
#include <stdexcept>

#include "check_har.hpp"
#include "json_text.hpp"
#include "llm_proxy/export/check.hpp"

namespace llm_proxy::exporter {

void check_result::add(std::uint64_t line, std::string message) {
    ++problem_count;
    if (problems.size() < max_problems) {
        problems.push_back({line, std::move(message)});
    }
}

namespace {

class line_checker {
  public:
    explicit line_checker(format f) : f_(f) {}

    void line(std::string_view text, check_result& r) {
        ++number_;
        if (!text.empty() && text.back() == '\r') {
            text.remove_suffix(1);
        }
        if (text.find_first_not_of(" \t") == std::string_view::npos) {
            blank_.push_back(number_);  // a problem unless only blank lines follow
            return;
        }
        for (auto b : blank_) {
            r.add(b, "empty line");
        }
        blank_.clear();
        ++r.items;
        if (auto bad = detail::first_invalid_utf8(text); bad != std::string_view::npos) {
            r.add(number_, "not valid UTF-8 (byte " + std::to_string(bad + 1) + " of the line)");
            return;
        }
        problems_.clear();
        switch (f_) {
            case format::openai_chat:
                check_openai_chat_line(text, problems_);
                break;
            case format::anthropic:
                check_anthropic_line(text, problems_);
                break;
            default:
                check_jsonl_line(text, problems_);
                break;
        }
        for (auto& p : problems_) {
            r.add(number_, std::move(p));
        }
    }

    void end(check_result& r) {
        if (r.items == 0) {
            r.add(number_ == 0 ? 1 : number_, "no examples: the file is empty");
        }
    }

  private:
    format f_;
    std::uint64_t number_ = 0;
    std::vector<std::uint64_t> blank_;
    std::vector<std::string> problems_;
};

}  // namespace

check_result check_text(std::string_view text, format f) {
    check_result r;
    if (f == format::har) {
        detail::check_har(text, r);
        return r;
    }
    line_checker checker(f);
    while (!text.empty()) {
        auto nl = text.find('\n');
        checker.line(text.substr(0, nl), r);
        if (nl == std::string_view::npos) {
            break;
        }
        text.remove_prefix(nl + 1);
    }
    checker.end(r);
    return r;
}

check_result check_file(const std::filesystem::path& path, format f) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error(path.string() + ": cannot be read");
    }
    if (f == format::har) {
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        return check_text(text, f);
    }
    check_result r;
    line_checker checker(f);
    std::string line;
    while (std::getline(in, line)) {
        checker.line(line, r);
    }
    checker.end(r);
    return r;
}

}  // namespace llm_proxy::exporter

#pragma once
// `llm_proxy export --check FILE --format F`: does a file follow the rules of its format?
//
//   openai-chat  OpenAI's chat fine-tuning rules: valid JSON per line; "messages" (and
//                optionally "tools", "parallel_tool_calls"); roles system, developer, user,
//                assistant and tool only; every message has content or tool calls; a tool
//                message answers a call id made earlier; at least one assistant message;
//                weight 0 or 1, on assistant messages only
//   anthropic    the Bedrock Claude rules: "system" (a string, optional) and "messages" only;
//                at least two messages, first a user's, last an assistant's, alternating,
//                each {"role", "content"} with a non-empty string
//   jsonl        the provider-neutral schema of docs/export.md: every key, of its type
//   har          HAR 1.2: required fields present and typed, `time` equal to the sum of the
//                timings, valid UTF-8
//
// Every problem comes with its line number (for HAR: the line where the entry starts).

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/export/formats.hpp"

namespace llm_proxy::exporter {

struct check_problem {
    std::uint64_t line = 0;
    std::string message;
};

struct check_result {
    std::uint64_t items = 0;              // examples / lines / HAR entries looked at
    std::vector<check_problem> problems;  // the first max_problems
    std::uint64_t problem_count = 0;      // all of them

    static constexpr std::size_t max_problems = 1000;
    void add(std::uint64_t line, std::string message);
};

// Checks `text` as a file of format `f`.
check_result check_text(std::string_view text, format f);

// Checks the file at `path`, line by line (a HAR file whole). Throws std::runtime_error when it
// cannot be read.
check_result check_file(const std::filesystem::path& path, format f);

// The rules of one line (openai-chat, anthropic, jsonl) given as parsed JSON text; problems
// are appended without line numbers.
void check_openai_chat_line(std::string_view line, std::vector<std::string>& problems);
void check_anthropic_line(std::string_view line, std::vector<std::string>& problems);
void check_jsonl_line(std::string_view line, std::vector<std::string>& problems);

}  // namespace llm_proxy::exporter

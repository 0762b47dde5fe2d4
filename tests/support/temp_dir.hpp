#pragma once
// A temporary directory under /tmp, removed recursively when the object is destroyed (unless
// the environment variable LLM_PROXY_KEEP_TEMP is set, which helps debugging failed tests).

#include <filesystem>
#include <string>
#include <string_view>

namespace llm_proxy::test {

class temp_dir {
  public:
    // Creates /tmp/<prefix>.XXXXXX with mode 0700. Throws std::system_error on failure.
    explicit temp_dir(std::string_view prefix = "llm_proxy_test");
    ~temp_dir();

    temp_dir(temp_dir&& other) noexcept;
    temp_dir& operator=(temp_dir&& other) noexcept;
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(std::string_view name) const { return path_ / name; }
    std::string string() const { return path_.string(); }

    // Writes `content` to path()/name (creating parent directories) and returns the full path.
    std::filesystem::path write_file(std::string_view name, std::string_view content) const;

  private:
    void remove() noexcept;

    std::filesystem::path path_;
};

// Whole-file helpers.
std::string read_file(const std::filesystem::path& file);
void write_file(const std::filesystem::path& file, std::string_view content);

}  // namespace llm_proxy::test

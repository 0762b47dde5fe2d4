#pragma once
// Text that is known to be valid UTF-8. Header values, URLs and bodies come straight off the
// wire; the record's JSON writer accepts only `sanitized` strings, and only this module makes
// them, so no unchecked byte can reach a record.

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace llm_proxy::record::detail {

class sanitized {
  public:
    sanitized() = default;
    std::string_view view() const { return text_; }
    bool empty() const { return text_.empty(); }
    friend auto operator<=>(const sanitized& a, const sanitized& b) = default;

  private:
    explicit sanitized(std::string text) : text_(std::move(text)) {}
    friend sanitized sanitize_utf8(std::string_view s);
    friend sanitized sanitize_utf8(std::string&& s);
    friend std::optional<sanitized> take_utf8(std::string& bytes, bool drop_cut_tail);

    std::string text_;
};

// True when `s` is valid UTF-8.
bool is_valid_utf8(std::string_view s);

// `s` with each byte that is not part of valid UTF-8 replaced by U+FFFD.
sanitized sanitize_utf8(std::string_view s);
// The same; valid text is moved, not copied.
sanitized sanitize_utf8(std::string&& s);

// `bytes` as text when it is valid UTF-8 (moved out of `bytes`), else nullopt and `bytes` is
// left as it was. With `drop_cut_tail`, a multi-byte character cut off by the end of `bytes`
// (a truncated body) is dropped rather than making the whole text invalid.
std::optional<sanitized> take_utf8(std::string& bytes, bool drop_cut_tail);

}  // namespace llm_proxy::record::detail

#pragma once
// A cursor that steps over JSON tokens without building a tree: for text that may be cut short
// (a request body captured up to a limit) and for finding where values start in a document
// (the line of each entry of a HAR file). It checks no more than it needs to skip a value.

#include <cstddef>
#include <string_view>

namespace llm_proxy {

class json_cursor {
  public:
    explicit json_cursor(std::string_view text) : s_(text) {}

    std::size_t pos() const { return i_; }
    bool at_end() const { return i_ >= s_.size(); }

    // Skips whitespace.
    void space();

    // Consumes `c` when it is under the cursor.
    bool take(char c);

    // Skips whitespace, then consumes `c` when it is under the cursor.
    bool next(char c) {
        space();
        return take(c);
    }

    // Skips the string token under the cursor; false when there is none or it is cut.
    bool string();

    // Skips the value under the cursor; false when it is cut short or not there. A number or
    // literal counts as whole only when something follows it.
    bool value();

    // Reads the `"key":` of an object member (whitespace around it skipped): the key as
    // written, escapes left in.
    bool key(std::string_view& out);

  private:
    std::string_view s_;
    std::size_t i_ = 0;
};

}  // namespace llm_proxy

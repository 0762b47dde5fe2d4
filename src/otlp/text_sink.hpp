#pragma once
// A growing byte buffer written through a pointer, for text made of many small pieces: one
// bounds check per piece, and the pieces of constant size (literals) copied inline. A span
// is some ninety pieces; std::string::append's length checks and calls were most of what
// writing one cost.

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace llm_proxy::otlp {

class text_sink {
  public:
    void clear() { size_ = 0; }
    std::size_t size() const { return size_; }
    std::string_view view() const { return {data_.get(), size_}; }

    // `n` writable bytes at the end; commit() how many were written.
    char* room(std::size_t n) {
        if (capacity_ - size_ < n) {
            grow(n);
        }
        return data_.get() + size_;
    }
    void commit(std::size_t n) { size_ += n; }

    void put(char c) {
        *room(1) = c;
        ++size_;
    }
    void put(std::string_view s) {
        if (s.empty()) {
            return;  // its data() may be null, which memcpy must not see
        }
        std::memcpy(room(s.size()), s.data(), s.size());
        size_ += s.size();
    }
    // A string literal: its size is known here, so the copy is a few moves.
    template <std::size_t N>
    void literal(const char (&s)[N]) {
        std::memcpy(room(N - 1), s, N - 1);
        size_ += N - 1;
    }

    // Lets go of the buffer when it grew past `limit` (after a very long piece).
    void release_above(std::size_t limit) {
        if (capacity_ > limit) {
            data_.reset();
            capacity_ = size_ = 0;
        }
    }

  private:
    void grow(std::size_t n) {
        std::size_t capacity = capacity_ < 4096 ? 4096 : capacity_ * 2;
        while (capacity - size_ < n) {
            capacity *= 2;
        }
        std::unique_ptr<char[]> data(new char[capacity]);
        if (size_ != 0) {
            std::memcpy(data.get(), data_.get(), size_);
        }
        data_ = std::move(data);
        capacity_ = capacity;
    }

    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace llm_proxy::otlp

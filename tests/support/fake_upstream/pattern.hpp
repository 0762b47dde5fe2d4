// The deterministic byte pattern served by the fake upstream's `GET /download?bytes=N`.
// Byte i of a download is pattern_byte(i); tests use pattern_mismatch() to verify what the
// proxy relayed, possibly in pieces (pass the offset of the piece within the download).
#pragma once

#include <cstddef>
#include <cstdint>

namespace llm_proxy::test {

// The pattern repeats every pattern_period bytes (131 * 2^20 and 2^20 >> 12 are both 0 mod 256).
inline constexpr std::uint64_t pattern_period = std::uint64_t{1} << 20;

inline char pattern_byte(std::uint64_t i) {
    return static_cast<char>(static_cast<unsigned char>((i * 131 + (i >> 12)) & 0xFF));
}

// Writes the n pattern bytes starting at download offset `offset` to out.
inline void fill_pattern(char* out, std::size_t n, std::uint64_t offset) {
    for (std::size_t j = 0; j < n; ++j) {
        out[j] = pattern_byte(offset + j);
    }
}

// Index (relative to data) of the first byte that differs from the pattern, where data[0] is
// download byte `offset`; n when all n bytes match.
inline std::size_t pattern_mismatch(const void* data, std::size_t n, std::uint64_t offset) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t j = 0; j < n; ++j) {
        if (static_cast<char>(p[j]) != pattern_byte(offset + j)) {
            return j;
        }
    }
    return n;
}

// True when the n bytes at data are exactly download bytes [offset, offset + n).
inline bool check_pattern(const void* data, std::size_t n, std::uint64_t offset) {
    return pattern_mismatch(data, n, offset) == n;
}

}  // namespace llm_proxy::test

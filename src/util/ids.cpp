#include "llm_proxy/util/ids.hpp"

#include <openssl/rand.h>
#include <time.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <random>

namespace llm_proxy {

namespace {

// Flow ids need to be unique, not secret: a per-thread generator seeded once from OpenSSL
// (or the OS) is enough and costs nanoseconds, where RAND_bytes per id costs a syscall.
void random_bytes(std::array<unsigned char, 16>& out) {
    thread_local std::mt19937_64 engine = [] {
        std::array<std::uint32_t, 8> seed{};
        if (RAND_bytes(reinterpret_cast<unsigned char*>(seed.data()),
                       static_cast<int>(sizeof seed)) != 1) {
            std::random_device rd;
            for (auto& s : seed) {
                s = rd();
            }
        }
        std::seed_seq seq(seed.begin(), seed.end());
        return std::mt19937_64(seq);
    }();
    for (std::size_t i = 0; i < out.size(); i += 8) {
        std::uint64_t v = engine();
        for (std::size_t j = 0; j < 8; ++j) {
            out[i + j] = static_cast<unsigned char>(v >> (8 * j));
        }
    }
}

}  // namespace

std::string make_uuid() {
    std::array<unsigned char, 16> b{};
    random_bytes(b);
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out.push_back('-');
        }
        out.push_back(hex[b[i] >> 4]);
        out.push_back(hex[b[i] & 0x0f]);
    }
    return out;
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    // floor, not duration_cast, so instants before 1970 still get a non-negative fraction.
    auto secs = floor<seconds>(t);
    auto micros = duration_cast<microseconds>(t - secs).count();
    std::time_t tt = system_clock::to_time_t(secs);
    std::tm tm{};
    if (gmtime_r(&tt, &tm) == nullptr) {
        return "1970-01-01T00:00:00.000000Z";
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(micros));
    return buf;
}

}  // namespace llm_proxy

#include "llm_proxy/util/ids.hpp"

#include <openssl/rand.h>
#include <time.h>

#include <array>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <cstdint>
#include <cstdio>
#include <random>

namespace llm_proxy {

namespace {

// Flow ids need to be unique, not secret: a per-thread Mersenne Twister, seeded once from
// OpenSSL (or the OS), costs nanoseconds per id where RAND_bytes per id costs a syscall.
// Seeded here: basic_random_generator's default constructor does not seed std::mt19937_64,
// so every thread (and every process) would produce the same ids.
std::mt19937_64 seeded_engine() {
    std::array<std::uint32_t, 8> seed{};
    if (RAND_bytes(reinterpret_cast<unsigned char*>(seed.data()), static_cast<int>(sizeof seed)) !=
        1) {
        std::random_device rd;
        for (auto& s : seed) {
            s = rd();
        }
    }
    std::seed_seq seq(seed.begin(), seed.end());
    return std::mt19937_64(seq);
}

struct uuid_source {
    std::mt19937_64 engine = seeded_engine();
    boost::uuids::basic_random_generator<std::mt19937_64> generator{engine};
};

}  // namespace

std::string make_uuid() {
    thread_local uuid_source source;
    return boost::uuids::to_string(source.generator());
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

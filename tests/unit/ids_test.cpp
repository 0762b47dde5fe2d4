#include "llm_proxy/util/ids.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace llm_proxy {
namespace {

bool is_uuid_v4(const std::string& id) {
    if (id.size() != 36) {
        return false;
    }
    for (std::size_t i = 0; i < id.size(); ++i) {
        char c = id[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return false;
            }
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return id[14] == '4' && std::string_view("89ab").find(id[19]) != std::string_view::npos;
}

TEST(ids, uuid_v4_format_and_uniqueness) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        std::string id = make_uuid();
        EXPECT_TRUE(is_uuid_v4(id)) << id;
        seen.insert(id);
    }
    EXPECT_EQ(seen.size(), 1000u);
}

TEST(ids, timestamps_are_rfc3339_utc_with_microseconds) {
    using namespace std::chrono;
    EXPECT_EQ(format_timestamp(system_clock::time_point{}), "1970-01-01T00:00:00.000000Z");
    EXPECT_EQ(format_timestamp(system_clock::time_point(seconds(1795756987)) + microseconds(5)),
              "2026-11-27T05:23:07.000005Z");
    // Sub-microsecond precision is dropped, not rounded up into the next second.
    EXPECT_EQ(format_timestamp(system_clock::time_point(seconds(1795756987)) +
                               duration_cast<system_clock::duration>(nanoseconds(999999999))),
              "2026-11-27T05:23:07.999999Z");
    EXPECT_EQ(format_timestamp(system_clock::time_point(seconds(-1))),
              "1969-12-31T23:59:59.000000Z");
}

TEST(ids, uuids_from_many_threads_are_distinct) {
    // Each thread seeds its own generator; two threads must not produce the same sequence.
    constexpr int threads = 4;
    constexpr int per_thread = 500;
    std::vector<std::vector<std::string>> ids(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&ids, t] {
            for (int i = 0; i < per_thread; ++i) {
                ids[t].push_back(make_uuid());
            }
        });
    }
    for (auto& th : pool) {
        th.join();
    }
    std::set<std::string> seen;
    for (const auto& list : ids) {
        for (const auto& id : list) {
            EXPECT_TRUE(is_uuid_v4(id)) << id;
            seen.insert(id);
        }
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(threads * per_thread));
}

}  // namespace
}  // namespace llm_proxy

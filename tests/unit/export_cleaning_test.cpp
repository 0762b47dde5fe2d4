// The pieces of --dedupe, --longest and --split.

#include <gtest/gtest.h>

#include "llm_proxy/export/cleaning.hpp"

using namespace llm_proxy::exporter;

TEST(ExportCleaning, HashSetKeepsEveryHashThroughGrowth) {
    hash128_set set;
    for (std::uint64_t i = 0; i < 100000; ++i) {
        EXPECT_TRUE(set.insert(hash_text("example " + std::to_string(i)))) << i;
    }
    EXPECT_EQ(set.size(), 100000u);
    for (std::uint64_t i = 0; i < 100000; ++i) {
        ASSERT_TRUE(set.contains(hash_text("example " + std::to_string(i)))) << i;
        ASSERT_FALSE(set.insert(hash_text("example " + std::to_string(i)))) << i;
        ASSERT_FALSE(set.contains(hash_text("other " + std::to_string(i)))) << i;
    }
    // The all-zero hash (the table's empty mark) is a member like any other.
    EXPECT_FALSE(set.contains(hash128{}));
    EXPECT_TRUE(set.insert(hash128{}));
    EXPECT_FALSE(set.insert(hash128{}));
    EXPECT_TRUE(set.contains(hash128{}));
    EXPECT_EQ(set.size(), 100001u);
}

TEST(ExportCleaning, Deduplicator) {
    deduplicator d;
    EXPECT_TRUE(d.first_time(R"({"messages":[1]})"));
    EXPECT_TRUE(d.first_time(R"({"messages":[2]})"));
    EXPECT_FALSE(d.first_time(R"({"messages":[1]})"));
}

TEST(ExportCleaning, SplitFractionAndSeed) {
    int train = 0, moved = 0;
    for (int i = 0; i < 20000; ++i) {
        auto line = "line " + std::to_string(i);
        bool a = goes_to_training(line, 0.9, 1);
        EXPECT_EQ(a, goes_to_training(line, 0.9, 1)) << "deterministic";
        train += a;
        moved += a != goes_to_training(line, 0.9, 2);
    }
    EXPECT_NEAR(train / 20000.0, 0.9, 0.01);
    EXPECT_GT(moved, 2000) << "another seed, another split";
}

TEST(ExportCleaning, PrefixHashesFollowTheMessagesInTheirContext) {
    auto make = [](std::string context, std::vector<std::string> messages) {
        example e;
        e.line = "{\"messages\":[";
        e.messages_array.first = e.line.size() - 1;
        for (std::size_t i = 0; i < messages.size(); ++i) {
            e.line += i ? "," : "";
            std::size_t begin = e.line.size();
            e.line += messages[i];
            e.messages.emplace_back(begin, e.line.size());
        }
        e.line += "]";
        e.messages_array.second = e.line.size();
        e.line += context + "}";
        return e;
    };
    auto short_one = prefix_hashes(make(",\"tools\":[]", {"{\"u\":1}", "{\"a\":1}"}));
    auto long_one =
        prefix_hashes(make(",\"tools\":[]", {"{\"u\":1}", "{\"a\":1}", "{\"u\":2}", "{\"a\":2}"}));
    auto other_tools =
        prefix_hashes(make(",\"tools\":[1]", {"{\"u\":1}", "{\"a\":1}", "{\"u\":2}", "{\"a\":2}"}));
    ASSERT_EQ(short_one.size(), 2u);
    ASSERT_EQ(long_one.size(), 4u);
    longest_filter f;
    for (const auto* h : {&short_one, &long_one, &other_tools}) {
        f.add(h->back());
    }
    for (const auto* h : {&short_one, &long_one, &other_tools}) {
        f.mark(*h);
    }
    EXPECT_TRUE(f.extended(short_one.back()));
    EXPECT_FALSE(f.extended(long_one.back())) << "nothing extends the longest";
    EXPECT_FALSE(f.extended(other_tools.back())) << "other tools, another conversation";
    longest_filter g;
    g.add(short_one.back());
    g.add(other_tools.back());
    g.mark(short_one);
    g.mark(other_tools);
    EXPECT_FALSE(g.extended(short_one.back())) << "other tools do not continue it";
}

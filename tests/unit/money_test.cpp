#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "llm_proxy/llm/money.hpp"

using llm_proxy::llm::money;

namespace {

money m(const char* text) {
    auto v = money::parse(text);
    EXPECT_TRUE(v.has_value()) << text;
    return v.value_or(money{});
}

}  // namespace

TEST(Money, ToStringIsPlainDecimalWithoutTrailingZeros) {
    EXPECT_EQ(m("0.00105").to_string(), "0.00105");
    EXPECT_EQ(m("0.001050").to_string(), "0.00105");
    EXPECT_EQ(m("3").to_string(), "3");
    EXPECT_EQ(m("3.000").to_string(), "3");
    EXPECT_EQ(m("-1.5").to_string(), "-1.5");
    EXPECT_EQ(m("0").to_string(), "0");
    EXPECT_EQ(m("-0.0").to_string(), "0");
    EXPECT_EQ(money{}.to_string(), "0");
    EXPECT_EQ(money::from_units(1).to_string(), "0.000000000000000000000001");
    EXPECT_EQ(money::from_dollars(12).to_string(), "12");
    EXPECT_EQ(m("123456789012.5").to_string(), "123456789012.5");
}

TEST(Money, ParsesDecimalsAndExponents) {
    EXPECT_EQ(m("2.5e-7"), m("0.00000025"));
    EXPECT_EQ(m("1E3"), m("1000"));
    EXPECT_EQ(m("+.5"), m("0.5"));
    EXPECT_EQ(m("5."), m("5"));
    EXPECT_EQ(m("0.18000000000000002").to_string(), "0.18000000000000002");
    EXPECT_EQ(m("1000e-27"), money::from_units(1));  // trailing zeros absorb the exponent
}

TEST(Money, RejectsWhatIsNotAnExactDecimal) {
    for (const char* bad :
         {"", "-", ".", "abc", "1.2.3", "1e", "1e+", "1 ", " 1", "0x10", "1,5", "nan", "inf",
          "1e-25", "0.0000000000000000000000001", "1e100", "999999999999999999"}) {
        EXPECT_FALSE(money::parse(bad).has_value()) << bad;
    }
    EXPECT_TRUE(money::parse("99999999999999").has_value());
}

TEST(Money, AddsSubtractsAndCompares) {
    EXPECT_EQ(m("0.0003") + m("0.00075"), m("0.00105"));
    EXPECT_EQ(m("1") - m("1.25"), m("-0.25"));
    EXPECT_EQ(-m("2"), m("-2"));
    EXPECT_LT(m("0.1"), m("0.10000000000000001"));
    EXPECT_GT(m("0"), m("-0.000001"));
    money sum;
    sum += m("0.1");
    sum += m("0.2");
    EXPECT_EQ(sum, m("0.3"));  // unlike doubles
    sum -= m("0.3");
    EXPECT_TRUE(sum.is_zero());
}

TEST(Money, PerMillionTokensIsExact) {
    EXPECT_EQ(m("2.5").per_mtok(1349).to_string(), "0.0033725");
    EXPECT_EQ(m("0.075").per_mtok(13).to_string(), "0.000000975");
    EXPECT_EQ(m("0.18000000000000002").per_mtok(7).to_string(), "0.00000126000000000000014");
    EXPECT_EQ(m("15").per_mtok(0), money{});
    EXPECT_EQ(m("1").times(3), m("3"));
    EXPECT_EQ(m("12").times_ratio(1, 1000), m("0.012"));
    EXPECT_NEAR(m("0.00105").to_double(), 0.00105, 1e-15);
}

TEST(Money, RoundsHalfAwayFromZeroWhenNotExact) {
    EXPECT_EQ(money::from_units(5).times_ratio(1, 10), money::from_units(1));
    EXPECT_EQ(money::from_units(4).times_ratio(1, 10), money::from_units(0));
    EXPECT_EQ(money::from_units(-5).times_ratio(1, 10), money::from_units(-1));
    EXPECT_THROW(m("1").times_ratio(1, 0), std::invalid_argument);
}

TEST(Money, OverflowThrows) {
    money big = money::from_units(std::numeric_limits<money::rep>::max());
    EXPECT_THROW(big + money::from_units(1), std::overflow_error);
    EXPECT_THROW(-big - money::from_units(2), std::overflow_error);
    EXPECT_THROW(m("1000").per_mtok(std::numeric_limits<std::uint64_t>::max()),
                 std::overflow_error);
    EXPECT_EQ(big.to_string(), "170141183460469.231731687303715884105727");
}

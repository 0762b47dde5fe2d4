#pragma once
// An exact amount of US dollars: a fixed-point decimal with 24 digits after the point.
//
// Prices are given per million tokens with up to 18 decimals (price tables hold binary
// floating-point artefacts such as 0.18000000000000002), so price × tokens / 10^6 needs up to
// 24 decimals to stay exact. The 128-bit integer holds about ±1.7 × 10^14 dollars at that scale.

#include <compare>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace llm_proxy::llm {

class money {
  public:
    using rep = __int128;
    static constexpr int decimals = 24;  // digits after the decimal point

    constexpr money() = default;

    // The amount `units` × 10^-24 dollars.
    static constexpr money from_units(rep units) {
        money m;
        m.units_ = units;
        return m;
    }
    static money from_dollars(std::int64_t dollars);

    // Parses a decimal: optional sign, digits with an optional '.', an optional exponent
    // ("1.5", "-0.00105", "2.5e-7"). nullopt when the text is not a decimal, has more than 24
    // decimals after applying the exponent, or is out of range.
    static std::optional<money> parse(std::string_view text);

    // Plain decimal without trailing zeros and without exponent: "0.00105", "3", "-1.5", "0".
    std::string to_string() const;
    // For display only (not exact).
    double to_double() const;

    constexpr rep units() const { return units_; }
    constexpr bool is_zero() const { return units_ == 0; }

    // Arithmetic throws std::overflow_error when the result leaves the representable range.
    money& operator+=(money other);
    money& operator-=(money other);
    friend money operator+(money a, money b) { return a += b; }
    friend money operator-(money a, money b) { return a -= b; }
    money operator-() const;
    // this × n
    money times(std::uint64_t n) const;
    // this × n / d, rounded half away from zero when not exact (d > 0).
    money times_ratio(std::uint64_t n, std::uint64_t d) const;
    // The cost of `tokens` at this price per million tokens (this × tokens / 10^6). Exact when
    // this price has at most 18 decimals, as every price of a loaded price table has.
    money per_mtok(std::uint64_t tokens) const { return times_ratio(tokens, 1'000'000); }

    friend constexpr bool operator==(money a, money b) = default;
    friend constexpr std::strong_ordering operator<=>(money a, money b) {
        return a.units_ <=> b.units_;
    }

  private:
    rep units_ = 0;
};

// Writes to_string().
std::ostream& operator<<(std::ostream& os, money m);

}  // namespace llm_proxy::llm

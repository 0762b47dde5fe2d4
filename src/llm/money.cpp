#include "llm_proxy/llm/money.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <ostream>
#include <stdexcept>

namespace llm_proxy::llm {

namespace {

using rep = money::rep;
using urep = unsigned __int128;

constexpr rep pow10(int n) {
    rep r = 1;
    for (int i = 0; i < n; ++i) {
        r *= 10;
    }
    return r;
}

constexpr rep scale = pow10(money::decimals);

[[noreturn]] void overflow() {
    throw std::overflow_error("money: amount out of range");
}

}  // namespace

money money::from_dollars(std::int64_t dollars) {
    return from_units(static_cast<rep>(dollars) * scale);
}

std::optional<money> money::parse(std::string_view text) {
    std::size_t i = 0;
    bool negative = false;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
        negative = text[i] == '-';
        ++i;
    }
    // Digits of the mantissa without the point, and how many of them follow the point.
    std::string digits;
    int fraction_digits = 0;
    bool seen_point = false;
    bool any_digit = false;
    for (; i < text.size(); ++i) {
        char c = text[i];
        if (c >= '0' && c <= '9') {
            any_digit = true;
            if (!(digits.empty() && c == '0')) {
                digits.push_back(c);
            }
            if (seen_point) {
                ++fraction_digits;
            }
        } else if (c == '.' && !seen_point) {
            seen_point = true;
        } else {
            break;
        }
    }
    if (!any_digit) {
        return std::nullopt;
    }
    long exponent = 0;
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        bool exp_negative = false;
        if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
            exp_negative = text[i] == '-';
            ++i;
        }
        if (i == text.size()) {
            return std::nullopt;
        }
        for (; i < text.size(); ++i) {
            char c = text[i];
            if (c < '0' || c > '9') {
                return std::nullopt;
            }
            exponent = exponent * 10 + (c - '0');
            if (exponent > 1000) {
                return std::nullopt;
            }
        }
        if (exp_negative) {
            exponent = -exponent;
        }
    }
    if (i != text.size()) {
        return std::nullopt;
    }
    // value = digits × 10^(exponent - fraction_digits); units = value × 10^decimals.
    long shift = exponent - fraction_digits + decimals;
    // Trailing zeros of the mantissa may absorb a negative shift.
    while (shift < 0 && !digits.empty() && digits.back() == '0') {
        digits.pop_back();
        ++shift;
    }
    if (digits.empty()) {
        return money{};
    }
    if (shift < 0) {
        return std::nullopt;  // more decimals than money keeps
    }
    if (static_cast<long>(digits.size()) + shift > 38) {
        return std::nullopt;
    }
    urep u = 0;
    for (char c : digits) {
        u = u * 10 + static_cast<unsigned>(c - '0');
    }
    for (long k = 0; k < shift; ++k) {
        u *= 10;
    }
    if (u > static_cast<urep>(std::numeric_limits<rep>::max())) {
        return std::nullopt;
    }
    rep v = static_cast<rep>(u);
    return from_units(negative ? -v : v);
}

std::string money::to_string() const {
    bool negative = units_ < 0;
    urep u = negative ? static_cast<urep>(-(units_ + 1)) + 1 : static_cast<urep>(units_);
    std::string digits;
    do {
        digits.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
        u /= 10;
    } while (u != 0);
    while (static_cast<int>(digits.size()) <= decimals) {
        digits.push_back('0');
    }
    std::reverse(digits.begin(), digits.end());
    std::string whole = digits.substr(0, digits.size() - decimals);
    std::string fraction = digits.substr(digits.size() - decimals);
    while (!fraction.empty() && fraction.back() == '0') {
        fraction.pop_back();
    }
    std::string out;
    if (negative) {
        out.push_back('-');
    }
    out += whole;
    if (!fraction.empty()) {
        out.push_back('.');
        out += fraction;
    }
    return out;
}

double money::to_double() const {
    rep whole = units_ / scale;
    rep fraction = units_ % scale;
    return static_cast<double>(whole) + static_cast<double>(fraction) / 1e24;
}

std::ostream& operator<<(std::ostream& os, money m) {
    return os << m.to_string();
}

money& money::operator+=(money other) {
    if (__builtin_add_overflow(units_, other.units_, &units_)) {
        overflow();
    }
    return *this;
}

money& money::operator-=(money other) {
    if (__builtin_sub_overflow(units_, other.units_, &units_)) {
        overflow();
    }
    return *this;
}

money money::operator-() const {
    if (units_ == std::numeric_limits<rep>::min()) {
        overflow();
    }
    return from_units(-units_);
}

money money::times(std::uint64_t n) const {
    rep r;
    if (__builtin_mul_overflow(units_, static_cast<rep>(n), &r)) {
        overflow();
    }
    return from_units(r);
}

money money::times_ratio(std::uint64_t n, std::uint64_t d) const {
    if (d == 0) {
        throw std::invalid_argument("money: division by zero");
    }
    rep product;
    if (__builtin_mul_overflow(units_, static_cast<rep>(n), &product)) {
        overflow();
    }
    rep q = product / static_cast<rep>(d);
    rep rem = product % static_cast<rep>(d);
    // Half away from zero.
    urep abs_rem = rem < 0 ? static_cast<urep>(-rem) : static_cast<urep>(rem);
    if (abs_rem * 2 >= static_cast<urep>(d)) {
        q += product < 0 ? -1 : 1;
    }
    return from_units(q);
}

}  // namespace llm_proxy::llm

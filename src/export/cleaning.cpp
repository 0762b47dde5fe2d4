#include "llm_proxy/export/cleaning.hpp"

namespace llm_proxy::exporter {

namespace {

// A 64-bit mixer (splitmix64's finaliser).
std::uint64_t mix(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

// Two independent 64-bit hashes of the bytes, eight at a time.
hash128 hash_bytes(std::string_view s, std::uint64_t seed) {
    std::uint64_t a = mix(seed ^ 0x9e3779b97f4a7c15ULL ^ s.size());
    std::uint64_t b = mix(seed + 0x632be59bd9b4e019ULL + s.size());
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        std::uint64_t w = 0;
        for (int k = 7; k >= 0; --k) {
            w = (w << 8) | static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
        }
        a = mix(a ^ w) + 0x9e3779b97f4a7c15ULL;
        b = (b ^ w) * 0x100000001b3ULL + mix(b);
    }
    std::uint64_t tail = 0;
    for (std::size_t k = s.size(); k > i; --k) {
        tail = (tail << 8) | static_cast<unsigned char>(s[k - 1]);
    }
    a = mix(a ^ tail ^ 0xff51afd7ed558ccdULL);
    b = mix(b ^ tail ^ 0xc4ceb9fe1a85ec53ULL);
    return {a, mix(b ^ a)};
}

hash128 chain(const hash128& before, const hash128& next) {
    return {mix(before.a ^ mix(next.a + 0x9e3779b97f4a7c15ULL)),
            mix(before.b + 0x632be59bd9b4e019ULL) ^ next.b};
}

}  // namespace

bool hash128_set::insert(const hash128& h) {
    if (h.a == 0 && h.b == 0) {
        bool added = !has_zero_;
        has_zero_ = true;
        return added;
    }
    if ((size_ + 1) * 10 > slots_.size() * 7) {
        grow();
    }
    std::size_t i = slot_of(h);
    if (slots_[i] == h) {
        return false;
    }
    slots_[i] = h;
    ++size_;
    return true;
}

bool hash128_set::contains(const hash128& h) const {
    if (h.a == 0 && h.b == 0) {
        return has_zero_;
    }
    return !slots_.empty() && slots_[slot_of(h)] == h;
}

// The slot holding `h`, or the empty slot where it would go (linear probing).
std::size_t hash128_set::slot_of(const hash128& h) const {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = static_cast<std::size_t>(h.a) & mask;; i = (i + 1) & mask) {
        const auto& s = slots_[i];
        if (s == h || (s.a == 0 && s.b == 0)) {
            return i;
        }
    }
}

void hash128_set::grow() {
    std::vector<hash128> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, hash128{});
    for (const auto& h : old) {
        if (h.a != 0 || h.b != 0) {
            slots_[slot_of(h)] = h;
        }
    }
}

hash128 hash_text(std::string_view text, std::uint64_t seed) {
    return hash_bytes(text, seed);
}

bool deduplicator::first_time(std::string_view line) {
    return seen_.insert(hash_text(line));
}

std::vector<hash128> prefix_hashes(const example& e) {
    std::string_view line = e.line;
    std::string context(line.substr(0, e.messages_array.first));
    context += line.substr(e.messages_array.second);
    std::vector<hash128> out;
    out.reserve(e.messages.size());
    hash128 h = hash_text(context, 1);
    for (const auto& [begin, end] : e.messages) {
        h = chain(h, hash_text(line.substr(begin, end - begin), 2));
        out.push_back(h);
    }
    return out;
}

void longest_filter::mark(const std::vector<hash128>& prefixes) {
    for (std::size_t i = 0; i + 1 < prefixes.size(); ++i) {
        if (fulls_.contains(prefixes[i])) {
            extended_.insert(prefixes[i]);
        }
    }
}

bool goes_to_training(std::string_view line, double fraction, std::uint64_t seed) {
    // The top 53 bits as a number in [0, 1).
    double u = static_cast<double>(hash_text(line, seed ^ 0x5eed5eed5eed5eedULL).a >> 11) *
               (1.0 / 9007199254740992.0);
    return u < fraction;
}

}  // namespace llm_proxy::exporter

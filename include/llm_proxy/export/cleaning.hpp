#pragma once
// Cleaning a fine-tuning dataset as it is written:
//
//   --dedupe    an example identical to one already written is skipped;
//   --longest   of the requests of one conversation, where a later request's messages extend
//               an earlier one's (the earlier answer included), only the longest is kept;
//   --split F   each example goes to the training file with probability F, decided by a hash
//               of the example and --seed: the same example lands in the same file on every
//               run, whatever the order of the records.
//
// Examples are compared by 128-bit hashes of their text, so memory grows by about 23 bytes
// per example for --dedupe and up to twice that for --longest, never by the examples
// themselves.

#include <cstdint>
#include <string_view>
#include <vector>

#include "llm_proxy/export/formats.hpp"

namespace llm_proxy::exporter {

struct hash128 {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    friend bool operator==(const hash128&, const hash128&) = default;
};

hash128 hash_text(std::string_view text, std::uint64_t seed = 0);

// A set of hashes in one open-addressed table (16 bytes a slot, at most 70 % full), so that
// remembering a million examples costs about 23 MB, not the 60 MB of node-based sets.
class hash128_set {
  public:
    // true when `h` was not in the set yet.
    bool insert(const hash128& h);
    bool contains(const hash128& h) const;
    std::size_t size() const { return size_ + (has_zero_ ? 1 : 0); }

  private:
    std::size_t slot_of(const hash128& h) const;
    void grow();

    std::vector<hash128> slots_;  // {0, 0}: empty
    std::size_t size_ = 0;
    bool has_zero_ = false;  // the hash {0, 0} itself, kept apart
};

// --dedupe: true the first time an example's text is seen.
class deduplicator {
  public:
    bool first_time(std::string_view line);

  private:
    hash128_set seen_;
};

// The hashes --longest compares an example by: of its context (everything but the messages)
// followed by its first 1, 2, ... n messages. full() is the last one.
std::vector<hash128> prefix_hashes(const example& e);

// --longest, in three passes: add() every example's full hash, then mark() with every
// example's hashes (the fulls equal to one of its proper prefixes are extended), then ask
// extended(). Memory: two hashes per example at most, whatever the number of messages.
class longest_filter {
  public:
    void add(const hash128& full) { fulls_.insert(full); }
    void mark(const std::vector<hash128>& prefixes);
    // Another example continues the conversation of the one whose full hash this is.
    bool extended(const hash128& full) const { return extended_.contains(full); }

  private:
    hash128_set fulls_;
    hash128_set extended_;
};

// --split: whether the example goes to the training file (else to the validation file).
bool goes_to_training(std::string_view line, double fraction, std::uint64_t seed);

}  // namespace llm_proxy::exporter

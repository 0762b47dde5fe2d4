// Redis reply handling: RESP bytes from the input go through hiredis' reply reader (what the
// store's connection uses) in pieces of random sizes, and every reply it produces is handled
// as the store's callbacks handle theirs: reply_text() and is_error() on every node, and the
// get, SCAN and stats interpretations of the reply's shape.
#include <fuzzer/FuzzedDataProvider.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/redis_link.hpp"
#include "fuzz_support.hpp"

using llm_proxy::cache::is_error;
using llm_proxy::cache::reply_text;
using llm_proxy::fuzz::check;

namespace {

std::size_t walk(const redisReply* r, int depth) {
    check(depth < 64 + 8, "reply nested deeper than the reader allows");
    std::size_t bytes = reply_text(r).size();
    (void)is_error(r);
    if (r->type == REDIS_REPLY_ARRAY) {  // hiredis 0.14 (Debian 12) reads RESP2 only
        for (std::size_t i = 0; i < r->elements; ++i) {
            check(r->element[i] != nullptr, "null element in an aggregate reply");
            bytes += walk(r->element[i], depth + 1);
        }
    }
    return bytes;
}

// The shapes redis_store.cpp accepts, read the way it reads them.
void as_store_reply(const redisReply* r) {
    if (r->type == REDIS_REPLY_STRING) {
        std::string value = reply_text(r);  // a get hit
        std::int64_t total = 0;             // stats: the byte total
        std::from_chars(value.data(), value.data() + value.size(), total);
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_ARRAY) {
        std::string cursor = reply_text(r->element[0]);  // SCAN
        for (std::size_t i = 0; i < r->element[1]->elements; ++i) {
            std::string key = reply_text(r->element[1]->element[i]);
        }
    }
}

// hiredis 0.14 (Debian 12's) allocates the element array an array header announces before any
// element arrives, with no limit of its own (later hiredis versions have `maxelements`): a header
// such as "*2111111111" is a 16 GB calloc. Inputs announcing more than 2^20 elements are left out
// so that the target looks for other problems (see docs/reliability.md).
bool announces_huge_array(std::string_view bytes) {
    for (std::size_t at = bytes.find('*'); at != std::string_view::npos;
         at = bytes.find('*', at + 1)) {
        std::size_t digits = 0;
        while (at + 1 + digits < bytes.size() && bytes[at + 1 + digits] >= '0' &&
               bytes[at + 1 + digits] <= '9') {
            ++digits;
        }
        if (digits > 7 || (digits == 7 && bytes.substr(at + 1, 7) > "1048576")) {
            return true;
        }
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (announces_huge_array(std::string_view(reinterpret_cast<const char*>(data), size))) {
        return 0;
    }
    FuzzedDataProvider in(data, size);
    redisReader* reader = redisReaderCreate();
    check(reader != nullptr, "redisReaderCreate");
    bool failed = false;
    while (!failed && in.remaining_bytes() > 0) {
        std::string piece = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(1, 64));
        if (redisReaderFeed(reader, piece.data(), piece.size()) != REDIS_OK) {
            break;
        }
        for (;;) {
            void* reply = nullptr;
            if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
                failed = true;  // a protocol error: the store drops the connection
                break;
            }
            if (!reply) {
                break;
            }
            auto* r = static_cast<redisReply*>(reply);
            walk(r, 0);
            as_store_reply(r);
            freeReplyObject(r);
        }
    }
    redisReaderFree(reader);
    return 0;
}

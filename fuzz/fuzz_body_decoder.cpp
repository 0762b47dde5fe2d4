// The whole-body Content-Encoding decoder (decode_body): gzip, deflate, br, zstd, stacks of
// them, unknown codings, corrupt and truncated data, output caps. Checks the contract: the
// output never exceeds the cap; a failed decode hands back the input; and, for bodies the
// encoder made, decoding gives the original back, and any cut of the encoded bytes (but the empty
// one) decodes without error to a prefix of the original.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "llm_proxy/record/body_decoder.hpp"

using llm_proxy::fuzz::check;
using llm_proxy::record::decode_body;
using llm_proxy::record::encode_body;

namespace {

constexpr std::array<std::string_view, 14> codings = {
    "gzip",   "deflate",   "br",       "zstd",           "identity",
    "",       "gzip, br",  "br, gzip", "zstd, deflate",  "gzip, gzip",
    "x-gzip", "GZip , BR", "compress", "gzip,, identity"};
constexpr std::array<std::string_view, 4> single = {"gzip", "deflate", "br", "zstd"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto mode = in.ConsumeIntegralInRange<int>(0, 2);
    const std::size_t limit = in.ConsumeBool() ? 1u << 20 : in.ConsumeIntegralInRange(0, 4096);
    if (mode == 0) {
        // Arbitrary bytes under a chosen (or arbitrary) Content-Encoding.
        std::string coding = in.ConsumeBool() ? std::string(in.PickValueInArray(codings))
                                              : in.ConsumeRandomLengthString(32);
        std::string body = in.ConsumeRemainingBytesAsString();
        auto r = decode_body(coding, body, limit);
        if (r.ok) {
            check(r.data.size() <= limit, "decoded output over the limit");
        } else {
            check(r.data == body, "a failed decode does not hand back the input");
            check(!r.error.empty(), "a failed decode without an error message");
        }
        return 0;
    }
    // Encoded by us: round trip, and every cut decodes to a prefix.
    std::string_view first = in.PickValueInArray(single);
    std::string_view second = in.PickValueInArray(single);
    const bool stacked = mode == 2;
    const std::size_t cut_seed = in.ConsumeIntegral<std::size_t>();
    std::string plain = in.ConsumeRemainingBytesAsString();
    if (plain.size() > 2048) {
        plain.resize(2048);  // br's encoder is slow under the sanitizers
    }
    std::string encoded = encode_body(first, plain);
    std::string coding(first);
    if (stacked) {
        encoded = encode_body(second, encoded);
        coding += ", ";
        coding += second;
    }
    auto whole = decode_body(coding, encoded, 1u << 20);
    check(whole.ok && !whole.truncated, "our own encoding does not decode");
    check(whole.data == plain, "round trip changed the body");
    auto capped = decode_body(coding, encoded, limit);
    check(capped.ok, "a capped decode failed");
    check(capped.data.size() <= limit, "capped output over the limit");
    check(std::string_view(plain).starts_with(capped.data), "capped output is not a prefix");
    check(capped.truncated == (plain.size() > limit), "truncated flag wrong for a capped decode");
    // An empty body is a body without content (HEAD, 204), not a cut one.
    const std::size_t cut = encoded.size() < 2 ? 1 : 1 + cut_seed % (encoded.size() - 1);
    auto part = decode_body(coding, std::string_view(encoded).substr(0, cut), 1u << 20);
    check(part.ok, "a cut encoded body is reported corrupt");
    check(std::string_view(plain).starts_with(part.data), "a cut body decodes to a non-prefix");
    check(part.truncated || part.data == plain, "a cut body is not marked truncated");
    return 0;
}

// The server-sent events decoder (sse_decoder): arbitrary bytes in pieces of random sizes
// (CR, LF and CRLF line ends split anywhere, BOM, comments, fields, oversized events). The
// events must not depend on how the stream was cut, and what it buffers stays bounded.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"
#include "llm_proxy/llm/sse.hpp"

using llm_proxy::fuzz::check;
using llm_proxy::llm::sse_decoder;

namespace {
using events = std::vector<std::pair<std::string, std::string>>;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const std::size_t max = in.ConsumeIntegralInRange<std::size_t>(1, 256);
    std::vector<std::size_t> cuts;
    const auto pieces = in.ConsumeIntegralInRange(0, 32);
    for (int i = 0; i < pieces; ++i) {
        cuts.push_back(in.ConsumeIntegralInRange(0, 32));
    }
    const std::string stream = in.ConsumeRemainingBytesAsString();

    events whole_events;
    sse_decoder whole(
        [&](std::string_view e, std::string_view d) { whole_events.emplace_back(e, d); }, max);
    whole.feed(stream);

    events split_events;
    sse_decoder split(
        [&](std::string_view e, std::string_view d) {
            // (The default type "message" is the decoder's own, whatever the bound.)
            check((e.size() <= max || e == "message") && d.size() <= max,
                  "an event larger than the bound");
            split_events.emplace_back(e, d);
        },
        max);
    std::size_t at = 0;
    for (std::size_t n : cuts) {
        n = std::min(n, stream.size() - at);
        split.feed(std::string_view(stream).substr(at, n));
        at += n;
        check(split.buffered_bytes() <= 3 * max + 8, "buffered bytes beyond the bound");
    }
    split.feed(std::string_view(stream).substr(at));
    check(split_events == whole_events, "events depend on how the stream was cut");
    check(split.dropped_events() == whole.dropped_events(), "drops depend on the cuts");
    return 0;
}

// HTTP/1.1 body framing (http_framing.hpp): the strict decoder the body relay runs on every
// request and response body (Content-Length, chunked with extensions and trailers,
// close-delimited), fed arbitrary bytes in pieces of random sizes; the body data, trailers,
// success or failure must not depend on the cuts. Then the encoder's chunked framing of the
// decoded data, with the decoded trailers, decodes back to the same data and trailers.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "proxy/http_framing.hpp"

using llm_proxy::fuzz::check;
using llm_proxy::proxy::framing_decoder;
using llm_proxy::proxy::framing_encoder;

namespace {

struct outcome {
    std::string data;
    bool done = false;
    llm_proxy::proxy::framing_error error{};
    llm_proxy::header_list trailers;
    std::size_t consumed = 0;
};

framing_decoder make(int kind, std::uint64_t length) {
    switch (kind) {
        case 0:
            return framing_decoder::for_chunked();
        case 1:
            return framing_decoder::for_length(length);
        case 2:
            return framing_decoder::for_until_close();
        default:
            return framing_decoder();
    }
}

// Feeds `wire` in pieces as the relay does: each read's bytes are appended to what is left
// over, and the decoder is stepped until it consumes nothing.
outcome run(framing_decoder d, std::string_view wire, const std::vector<std::size_t>& cuts,
            bool end) {
    outcome o;
    std::string pending;
    std::size_t at = 0;
    auto drain = [&] {
        for (;;) {
            auto s = d.decode(pending);
            check(s.consumed <= pending.size(), "consumed more than it was given");
            if (!s.data.empty()) {
                check(s.data.data() >= pending.data() &&
                          s.data.data() + s.data.size() <= pending.data() + pending.size(),
                      "data outside the input");
                o.data.append(s.data);
            }
            pending.erase(0, s.consumed);
            o.consumed += s.consumed;
            if (s.consumed == 0) {
                break;
            }
        }
    };
    for (std::size_t i = 0; at < wire.size(); ++i) {
        std::size_t n = i < cuts.size() ? cuts[i] : wire.size() - at;
        n = std::min(std::max<std::size_t>(n, 1), wire.size() - at);
        pending.append(wire.substr(at, n));
        at += n;
        drain();
        if (d.done() || d.failed()) {
            break;
        }
    }
    if (end && !d.done() && !d.failed()) {
        d.end_of_input();
    }
    check(d.body_bytes() == o.data.size(), "body_bytes() differs from the data handed out");
    // A failed decoder is also done (it takes nothing more): done here means complete.
    o.done = d.done() && !d.failed();
    o.error = d.error();
    if (o.done) {
        o.trailers = d.trailers();
    }
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const int kind = in.ConsumeIntegralInRange(0, 3);
    const std::uint64_t length = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::uint64_t>(0, 64)
                                                  : in.ConsumeIntegral<std::uint64_t>();
    const bool end = in.ConsumeBool();
    std::vector<std::size_t> cuts;
    const auto pieces = in.ConsumeIntegralInRange(0, 32);
    for (int i = 0; i < pieces; ++i) {
        cuts.push_back(in.ConsumeIntegralInRange(1, 40));
    }
    const std::string wire = in.ConsumeRemainingBytesAsString();

    const outcome whole = run(make(kind, length), wire, {}, end);
    const outcome split = run(make(kind, length), wire, cuts, end);
    check(whole.data == split.data, "body data depends on the cuts");
    check(whole.done == split.done, "completion depends on the cuts");
    // Which error a bad body gets may depend on how much of the bad line had arrived (an
    // invalid chunk size seen before its bare CR, or the bare CR seen first): that it fails
    // may not.
    check((whole.error == llm_proxy::proxy::framing_error::none) ==
              (split.error == llm_proxy::proxy::framing_error::none),
          "failing depends on the cuts");
    check(whole.trailers == split.trailers, "trailers depend on the cuts");
    if (whole.done) {
        check(whole.consumed == split.consumed, "bytes consumed depend on the cuts");
    }

    if (kind == 0 && whole.done) {
        // Re-frame what was decoded and decode it again.
        framing_encoder enc = framing_encoder::for_chunked();
        std::string reframed;
        std::string_view rest = whole.data;
        std::size_t i = 0;
        while (!rest.empty()) {
            std::size_t n = i < cuts.size() ? cuts[i++] : rest.size();
            n = std::min(std::max<std::size_t>(n, 1), rest.size());
            std::string_view prefix;
            check(enc.begin_piece(n, prefix), "chunked encoder refused a piece");
            reframed.append(prefix);
            reframed.append(rest.substr(0, n));
            reframed.append(enc.end_piece());
            rest.remove_prefix(n);
        }
        std::string tail;
        check(enc.finish(whole.trailers, tail), "chunked encoder refused to finish");
        reframed += tail;
        const outcome again = run(framing_decoder::for_chunked(), reframed, {}, true);
        check(again.done, "the encoder's chunked body does not decode");
        check(again.data == whole.data, "re-framed data differs");
        check(again.trailers == whole.trailers, "re-framed trailers differ");
        check(again.consumed == reframed.size(), "the re-framed body left bytes over");
    }
    return 0;
}

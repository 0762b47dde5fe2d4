#pragma once
// Inputs for the body decoders' tests: bytes that do not compress, and raw deflate (no zlib
// wrapper), which the product's encode_body does not make.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>

namespace llm_proxy::record::samples {

// Incompressible: the codecs store it (output comes out about as fast as input goes in).
inline std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) {
        c = static_cast<char>(rng() & 0xff);
    }
    return s;
}

// Raw deflate (RFC 1951), as some servers send for "deflate".
inline std::string raw_deflate(std::string_view input) {
    z_stream zs{};
    EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string out(deflateBound(&zs, static_cast<uLong>(input.size())), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    zs.avail_in = static_cast<uInt>(input.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

}  // namespace llm_proxy::record::samples

#include "llm_proxy/record/body_decoder.hpp"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "llm_proxy/record/stream_decoder.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::record {

namespace {

// Decoders write into a fixed buffer of this size and copy what fits below the limit, so a
// decompression bomb costs at most `limit` plus one chunk of memory.
constexpr std::size_t chunk_size = 64 * 1024;

enum class coding { identity, gzip, deflate, br, zstd };

std::optional<coding> parse_coding(std::string_view token) {
    std::string name = to_lower(token);
    if (name.empty() || name == "identity") {
        return coding::identity;
    }
    if (name == "gzip" || name == "x-gzip") {
        return coding::gzip;
    }
    if (name == "deflate") {
        return coding::deflate;
    }
    if (name == "br") {
        return coding::br;
    }
    if (name == "zstd") {
        return coding::zstd;
    }
    return std::nullopt;
}

// Collects decoded output up to `limit` bytes without letting std::string's geometric growth
// reserve more than the limit.
class capped_sink final : public stream_decoder::sink {
  public:
    capped_sink(std::string& out, std::size_t limit) : out_(out), limit_(limit) {}

    bool write(std::string_view piece) override {
        std::size_t take = std::min(piece.size(), limit_ - out_.size());
        if (take > 0) {
            if (out_.size() + take > out_.capacity()) {
                out_.reserve(std::min(limit_, std::max(out_.capacity() * 2, out_.size() + take)));
            }
            out_.append(piece.substr(0, take));
        }
        capped_ = capped_ || take < piece.size();
        return !capped_;
    }

    bool capped() const { return capped_; }

  private:
    std::string& out_;
    std::size_t limit_;
    bool capped_ = false;
};

std::string deflate_encode(std::string_view input, int window_bits) {
    z_stream zs{};
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        throw std::runtime_error("zlib: deflateInit2 failed");
    }
    std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, deflateEnd);
    std::string out;
    auto next = reinterpret_cast<const Bytef*>(input.data());
    std::size_t remaining = input.size();
    std::vector<char> buf(chunk_size);
    int ret = Z_OK;
    while (ret != Z_STREAM_END) {
        if (zs.avail_in == 0 && remaining > 0) {
            auto n = static_cast<uInt>(std::min<std::size_t>(remaining, UINT_MAX));
            zs.next_in = const_cast<Bytef*>(next);
            zs.avail_in = n;
            next += n;
            remaining -= n;
        }
        zs.next_out = reinterpret_cast<Bytef*>(buf.data());
        zs.avail_out = static_cast<uInt>(buf.size());
        ret = deflate(&zs, remaining == 0 ? Z_FINISH : Z_NO_FLUSH);
        if (ret == Z_STREAM_ERROR) {
            throw std::runtime_error("zlib: deflate failed");
        }
        out.append(buf.data(), buf.size() - zs.avail_out);
    }
    return out;
}

std::string brotli_encode(std::string_view input) {
    // Quality 5 is what servers commonly use for dynamic content: fast, decent ratio.
    constexpr int quality = 5;
    std::size_t size = BrotliEncoderMaxCompressedSize(input.size());
    if (size == 0) {
        throw std::runtime_error("brotli: input too large");
    }
    std::string out(size, '\0');
    if (BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, input.size(),
                              reinterpret_cast<const uint8_t*>(input.data()), &size,
                              reinterpret_cast<uint8_t*>(out.data())) != BROTLI_TRUE) {
        throw std::runtime_error("brotli: compression failed");
    }
    out.resize(size);
    return out;
}

std::string zstd_encode(std::string_view input) {
    constexpr int level = 3;
    std::string out(ZSTD_compressBound(input.size()), '\0');
    std::size_t n = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), level);
    if (ZSTD_isError(n)) {
        throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
    }
    out.resize(n);
    return out;
}

}  // namespace

decoded_body decode_body(std::string_view content_encoding, std::string_view input,
                         std::size_t limit) {
    decoded_body result;
    auto decoder = stream_decoder::make(content_encoding, result.error);
    if (!decoder) {
        result.ok = false;
        result.data.assign(input);
        return result;
    }
    if (decoder->identity()) {
        result.data.assign(input.substr(0, limit));
        result.truncated = input.size() > limit;
        return result;
    }
    capped_sink sink(result.data, limit);
    decoder->feed(input, sink);
    if (decoder->failed()) {
        result.ok = false;
        result.data.assign(input);
        result.error = decoder->error();
        return result;
    }
    result.truncated = sink.capped() || !decoder->complete();
    return result;
}

std::string encode_body(std::string_view encoding, std::string_view input) {
    auto c = parse_coding(trim_space(encoding));
    if (!c) {
        throw std::invalid_argument("unsupported content encoding \"" + std::string(encoding) +
                                    "\"");
    }
    switch (*c) {
        case coding::gzip:
            return deflate_encode(input, 16 + MAX_WBITS);
        case coding::deflate:
            return deflate_encode(input, MAX_WBITS);
        case coding::br:
            return brotli_encode(input);
        case coding::zstd:
            return zstd_encode(input);
        case coding::identity:
            break;
    }
    return std::string(input);
}

}  // namespace llm_proxy::record

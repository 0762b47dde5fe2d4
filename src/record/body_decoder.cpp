#include "llm_proxy/record/body_decoder.hpp"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::record {

namespace {

// Decoders write into a fixed buffer of this size and copy what fits below the limit, so a
// decompression bomb costs at most `limit` plus one chunk of memory.
constexpr std::size_t chunk_size = 64 * 1024;

enum class coding { identity, gzip, deflate, br, zstd };

std::string_view trim(std::string_view s) {
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

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

// Splits a Content-Encoding value into codings in the order they were applied. Returns
// nullopt and names the offending token in `unknown` when one is not supported.
std::optional<std::vector<coding>> parse_codings(std::string_view value, std::string& unknown) {
    std::vector<coding> out;
    while (true) {
        std::size_t comma = value.find(',');
        std::string_view token = trim(value.substr(0, comma));
        auto c = parse_coding(token);
        if (!c) {
            unknown = std::string(token);
            return std::nullopt;
        }
        if (*c != coding::identity) {
            out.push_back(*c);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
    return out;
}

enum class stage_status {
    done,             // the whole input decoded
    input_truncated,  // the input ended in the middle of a stream
    output_capped,    // the output reached the limit with more to come
    failed,
};

struct stage_result {
    std::string data;
    stage_status status = stage_status::done;
    std::string error;
};

// Collects decoder output up to `limit` bytes without letting std::string's geometric growth
// reserve more than the limit.
class capped_sink {
  public:
    capped_sink(std::string& out, std::size_t limit) : out_(out), limit_(limit) {}

    // False when the bytes did not all fit, i.e. the output is capped.
    bool append(const char* data, std::size_t n) {
        std::size_t room = limit_ - out_.size();
        std::size_t take = std::min(n, room);
        if (take > 0) {
            if (out_.size() + take > out_.capacity()) {
                out_.reserve(std::min(limit_, std::max(out_.capacity() * 2, out_.size() + take)));
            }
            out_.append(data, take);
        }
        return take == n;
    }

  private:
    std::string& out_;
    std::size_t limit_;
};

stage_result failure(std::string message) {
    stage_result r;
    r.status = stage_status::failed;
    r.error = std::move(message);
    return r;
}

bool looks_like_gzip_member(const Bytef* p, std::size_t n) {
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

// window_bits: 16 + MAX_WBITS for gzip, MAX_WBITS for zlib, -MAX_WBITS for raw deflate.
stage_result inflate_stream(std::string_view input, std::size_t limit, int window_bits) {
    stage_result r;
    z_stream zs{};
    if (inflateInit2(&zs, window_bits) != Z_OK) {
        return failure("zlib: inflateInit2 failed");
    }
    // Frees the zlib state on every return path.
    std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);

    auto next = reinterpret_cast<const Bytef*>(input.data());
    std::size_t remaining = input.size();
    auto feed = [&] {
        // avail_in is a uInt: feed huge inputs in pieces.
        auto n = static_cast<uInt>(std::min<std::size_t>(remaining, UINT_MAX));
        zs.next_in = const_cast<Bytef*>(next);
        zs.avail_in = n;
        next += n;
        remaining -= n;
    };
    feed();

    capped_sink sink(r.data, limit);
    std::vector<char> buf(chunk_size);
    while (true) {
        if (zs.avail_in == 0 && remaining > 0) {
            feed();
        }
        zs.next_out = reinterpret_cast<Bytef*>(buf.data());
        zs.avail_out = static_cast<uInt>(buf.size());
        int ret = inflate(&zs, Z_NO_FLUSH);
        std::size_t produced = buf.size() - zs.avail_out;
        if (ret == Z_NEED_DICT || ret == Z_DATA_ERROR || ret == Z_MEM_ERROR ||
            ret == Z_STREAM_ERROR) {
            return failure(std::string("zlib: ") + (zs.msg != nullptr ? zs.msg : "corrupt data"));
        }
        if (!sink.append(buf.data(), produced)) {
            r.status = stage_status::output_capped;
            return r;
        }
        if (ret == Z_STREAM_END) {
            // A gzip body may hold several members back to back (RFC 1952 2.2); anything else
            // after the end of the stream is ignored, as browsers do.
            if (zs.avail_in == 0 && remaining > 0) {
                feed();
            }
            if (window_bits > MAX_WBITS && looks_like_gzip_member(zs.next_in, zs.avail_in)) {
                inflateReset(&zs);
                continue;
            }
            return r;
        }
        if (zs.avail_in == 0 && remaining == 0 && zs.avail_out != 0) {
            // All input consumed, room left for output, yet no end of stream: cut short.
            r.status = stage_status::input_truncated;
            return r;
        }
        if (ret == Z_BUF_ERROR && produced == 0) {
            return failure("zlib: no progress possible");
        }
    }
}

stage_result decode_deflate(std::string_view input, std::size_t limit) {
    // "deflate" is meant to be zlib-wrapped (RFC 9110 8.4.1.2) but some servers send raw
    // deflate; browsers accept both, so do we.
    stage_result zlib = inflate_stream(input, limit, MAX_WBITS);
    if (zlib.status != stage_status::failed) {
        return zlib;
    }
    stage_result raw = inflate_stream(input, limit, -MAX_WBITS);
    if (raw.status != stage_status::failed) {
        return raw;
    }
    return zlib;
}

stage_result decode_brotli(std::string_view input, std::size_t limit) {
    stage_result r;
    std::unique_ptr<BrotliDecoderState, void (*)(BrotliDecoderState*)> state(
        BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), BrotliDecoderDestroyInstance);
    if (!state) {
        return failure("brotli: cannot create decoder");
    }
    auto next_in = reinterpret_cast<const uint8_t*>(input.data());
    std::size_t avail_in = input.size();
    capped_sink sink(r.data, limit);
    std::vector<char> buf(chunk_size);
    while (true) {
        auto next_out = reinterpret_cast<uint8_t*>(buf.data());
        std::size_t avail_out = buf.size();
        BrotliDecoderResult ret = BrotliDecoderDecompressStream(state.get(), &avail_in, &next_in,
                                                                &avail_out, &next_out, nullptr);
        if (ret == BROTLI_DECODER_RESULT_ERROR) {
            return failure(std::string("brotli: ") +
                           BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state.get())));
        }
        if (!sink.append(buf.data(), buf.size() - avail_out)) {
            r.status = stage_status::output_capped;
            return r;
        }
        if (ret == BROTLI_DECODER_RESULT_SUCCESS) {
            return r;
        }
        if (ret == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
            // We handed over all input at once, so the stream was cut short.
            r.status = stage_status::input_truncated;
            return r;
        }
        // BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT: go round with an empty buffer.
    }
}

stage_result decode_zstd(std::string_view input, std::size_t limit) {
    stage_result r;
    std::unique_ptr<ZSTD_DCtx, std::size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    if (!dctx) {
        return failure("zstd: cannot create decoder");
    }
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    capped_sink sink(r.data, limit);
    std::vector<char> buf(chunk_size);
    while (true) {
        ZSTD_outBuffer out{buf.data(), buf.size(), 0};
        std::size_t ret = ZSTD_decompressStream(dctx.get(), &out, &in);
        if (ZSTD_isError(ret)) {
            return failure(std::string("zstd: ") + ZSTD_getErrorName(ret));
        }
        if (!sink.append(buf.data(), out.pos)) {
            r.status = stage_status::output_capped;
            return r;
        }
        if (ret == 0 && in.pos == in.size) {
            // A frame ended exactly at the end of input (0 also means "frame complete" when
            // more frames follow, which the next round decodes).
            return r;
        }
        if (in.pos == in.size && out.pos < out.size) {
            r.status = stage_status::input_truncated;
            return r;
        }
    }
}

stage_result decode_stage(coding c, std::string_view input, std::size_t limit) {
    if (input.empty()) {
        // Bodiless responses (HEAD, 304) often still carry Content-Encoding.
        return {};
    }
    switch (c) {
        case coding::gzip:
            return inflate_stream(input, limit, 16 + MAX_WBITS);
        case coding::deflate:
            return decode_deflate(input, limit);
        case coding::br:
            return decode_brotli(input, limit);
        case coding::zstd:
            return decode_zstd(input, limit);
        case coding::identity:
            break;
    }
    stage_result r;
    r.data.assign(input.substr(0, limit));
    if (input.size() > limit) {
        r.status = stage_status::output_capped;
    }
    return r;
}

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
    std::string unknown;
    auto codings = parse_codings(content_encoding, unknown);
    if (!codings) {
        result.ok = false;
        result.data.assign(input);
        result.error = "unsupported content encoding \"" + unknown + "\"";
        return result;
    }
    if (codings->empty()) {
        stage_result r = decode_stage(coding::identity, input, limit);
        result.data = std::move(r.data);
        result.truncated = r.status == stage_status::output_capped;
        return result;
    }

    // Codings are listed in the order they were applied, so undo them from the last. Each
    // intermediate result is capped at `limit` too: a capped middle stage simply looks like a
    // truncated input to the next one, which still decodes its prefix.
    std::string current;
    std::string_view stage_input = input;
    for (auto it = codings->rbegin(); it != codings->rend(); ++it) {
        stage_result r = decode_stage(*it, stage_input, limit);
        if (r.status == stage_status::failed) {
            result.ok = false;
            result.data.assign(input);
            result.error = std::move(r.error);
            return result;
        }
        if (r.status != stage_status::done) {
            result.truncated = true;
        }
        current = std::move(r.data);
        stage_input = current;
    }
    result.data = std::move(current);
    return result;
}

std::string encode_body(std::string_view encoding, std::string_view input) {
    auto c = parse_coding(trim(encoding));
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

#include "llm_proxy/record/stream_decoder.hpp"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <optional>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::record {

// One coding being undone: its output goes to the next stage (or the caller).
class stream_decoder::stage {
  public:
    virtual ~stage() = default;
    // False on corrupt data (`error` set) or when `next` asked to stop.
    virtual bool push(std::string_view in, sink& next) = 0;
    // The coding's stream reached its end.
    virtual bool ended() const = 0;

    std::string error;
    bool got_input = false;

  protected:
    // Output is written through this buffer: memory stays the same whatever the ratio.
    static constexpr std::size_t buffer_size = 16 * 1024;
    std::vector<char> buf = std::vector<char>(buffer_size);
};

namespace {

using stage = stream_decoder::stage;
using sink = stream_decoder::sink;

// gzip, zlib-wrapped or raw deflate. "deflate" is meant to be zlib-wrapped (RFC 9110 8.4.1.2)
// but some servers send raw deflate; browsers accept both, so do we: the first two bytes tell.
class inflate_stage final : public stage {
  public:
    enum class mode { gzip, deflate };
    explicit inflate_stage(mode m) : mode_(m) {}
    ~inflate_stage() override {
        if (initialised_) {
            inflateEnd(&zs_);
        }
    }

    bool push(std::string_view in, sink& next) override {
        if (ignore_rest_) {
            return true;
        }
        if (!held_.empty()) {
            held_.append(in);
            std::string data = std::move(held_);
            held_.clear();
            return process(data, next);
        }
        return process(in, next);
    }

    bool ended() const override { return ended_; }

  private:
    static bool zlib_header(std::string_view b) {
        auto cmf = static_cast<unsigned char>(b[0]);
        auto flg = static_cast<unsigned char>(b[1]);
        return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
    }

    // Decides what comes next when it needs the first two bytes of a stream; false while
    // they have not arrived (they are held).
    bool ready(std::string_view rest) {
        if (initialised_ && !ended_) {
            return true;
        }
        if (rest.size() < 2) {
            held_.assign(rest);
            return false;
        }
        if (ended_) {
            // Several gzip members may follow each other (RFC 1952 2.2); anything else after
            // the end of the stream is ignored, as browsers do.
            if (mode_ != mode::gzip || rest[0] != '\x1f' || rest[1] != '\x8b') {
                ignore_rest_ = true;
                return false;
            }
            inflateReset(&zs_);
            ended_ = false;
            return true;
        }
        int bits = mode_ == mode::gzip ? 16 + MAX_WBITS
                   : zlib_header(rest) ? MAX_WBITS
                                       : -MAX_WBITS;
        if (inflateInit2(&zs_, bits) != Z_OK) {
            error = "zlib: inflateInit2 failed";
            return false;
        }
        initialised_ = true;
        return true;
    }

    bool process(std::string_view data, sink& next) {
        std::size_t pos = 0;
        while (pos < data.size()) {
            if (!ready(data.substr(pos))) {
                return error.empty();
            }
            auto n = static_cast<uInt>(std::min<std::size_t>(data.size() - pos, UINT_MAX));
            zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + pos));
            zs_.avail_in = n;
            do {
                zs_.next_out = reinterpret_cast<Bytef*>(buf.data());
                zs_.avail_out = static_cast<uInt>(buf.size());
                int ret = inflate(&zs_, Z_NO_FLUSH);
                if (ret == Z_NEED_DICT || ret == Z_DATA_ERROR || ret == Z_MEM_ERROR ||
                    ret == Z_STREAM_ERROR) {
                    error = std::string("zlib: ") + (zs_.msg != nullptr ? zs_.msg : "corrupt data");
                    return false;
                }
                std::size_t produced = buf.size() - zs_.avail_out;
                if (produced > 0 && !next.write(std::string_view(buf.data(), produced))) {
                    return false;
                }
                if (ret == Z_STREAM_END) {
                    ended_ = true;
                    break;
                }
                if (ret == Z_BUF_ERROR) {
                    break;  // no progress possible: more input is needed
                }
            } while (zs_.avail_in > 0 || zs_.avail_out == 0);
            pos += n - zs_.avail_in;
        }
        return true;
    }

    mode mode_;
    z_stream zs_{};
    bool initialised_ = false;
    bool ended_ = false;
    bool ignore_rest_ = false;
    std::string held_;  // fewer than two bytes, until the stream's kind can be told
};

class brotli_stage final : public stage {
  public:
    brotli_stage() : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
    ~brotli_stage() override {
        if (state_ != nullptr) {
            BrotliDecoderDestroyInstance(state_);
        }
    }

    bool push(std::string_view in, sink& next) override {
        if (state_ == nullptr) {
            error = "brotli: cannot create decoder";
            return false;
        }
        if (ended_) {
            return true;  // bytes after the end are ignored
        }
        auto next_in = reinterpret_cast<const uint8_t*>(in.data());
        std::size_t avail_in = in.size();
        while (true) {
            auto next_out = reinterpret_cast<uint8_t*>(buf.data());
            std::size_t avail_out = buf.size();
            BrotliDecoderResult ret = BrotliDecoderDecompressStream(state_, &avail_in, &next_in,
                                                                    &avail_out, &next_out, nullptr);
            if (ret == BROTLI_DECODER_RESULT_ERROR) {
                error = std::string("brotli: ") +
                        BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state_));
                return false;
            }
            std::size_t produced = buf.size() - avail_out;
            if (produced > 0 && !next.write(std::string_view(buf.data(), produced))) {
                return false;
            }
            if (ret == BROTLI_DECODER_RESULT_SUCCESS) {
                ended_ = true;
                return true;
            }
            if (ret == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
                return true;
            }
            // BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT: go round with an empty buffer.
        }
    }

    bool ended() const override { return ended_; }

  private:
    BrotliDecoderState* state_;
    bool ended_ = false;
};

class zstd_stage final : public stage {
  public:
    zstd_stage() : dctx_(ZSTD_createDCtx()) {}
    ~zstd_stage() override { ZSTD_freeDCtx(dctx_); }

    bool push(std::string_view in, sink& next) override {
        if (dctx_ == nullptr) {
            error = "zstd: cannot create decoder";
            return false;
        }
        ZSTD_inBuffer input{in.data(), in.size(), 0};
        while (true) {
            ZSTD_outBuffer out{buf.data(), buf.size(), 0};
            const std::size_t consumed_before = input.pos;
            std::size_t ret = ZSTD_decompressStream(dctx_, &out, &input);
            if (ZSTD_isError(ret)) {
                error = std::string("zstd: ") + ZSTD_getErrorName(ret);
                return false;
            }
            // 0: a frame is complete and flushed (another may follow, in the same input or
            // the next). A call that takes no input and gives no output says nothing about
            // the frame: after a frame ended on a full buffer, the next call (to see whether
            // more output is pending) returns the size of a next frame's header instead.
            if (input.pos > consumed_before || out.pos > 0) {
                frame_done_ = ret == 0;
            }
            if (out.pos > 0 && !next.write(std::string_view(buf.data(), out.pos))) {
                return false;
            }
            if (input.pos == input.size && out.pos < out.size) {
                return true;
            }
        }
    }

    bool ended() const override { return frame_done_; }

  private:
    ZSTD_DCtx* dctx_;
    bool frame_done_ = false;
};

std::unique_ptr<stage> make_stage(std::string_view token, bool& identity) {
    std::string name = to_lower(trim_space(token));
    identity = name.empty() || name == "identity";
    if (name == "gzip" || name == "x-gzip") {
        return std::make_unique<inflate_stage>(inflate_stage::mode::gzip);
    }
    if (name == "deflate") {
        return std::make_unique<inflate_stage>(inflate_stage::mode::deflate);
    }
    if (name == "br") {
        return std::make_unique<brotli_stage>();
    }
    if (name == "zstd") {
        return std::make_unique<zstd_stage>();
    }
    return nullptr;
}

}  // namespace

std::unique_ptr<stream_decoder> stream_decoder::make(std::string_view content_encoding,
                                                     std::string& error) {
    std::unique_ptr<stream_decoder> d(new stream_decoder());
    // Codings are listed in the order they were applied: undo them from the last.
    while (true) {
        std::size_t comma = content_encoding.rfind(',');
        std::string_view token =
            comma == std::string_view::npos ? content_encoding : content_encoding.substr(comma + 1);
        bool identity = false;
        auto s = make_stage(token, identity);
        if (!s && !identity) {
            error = "unsupported content encoding \"" + std::string(trim_space(token)) + "\"";
            return nullptr;
        }
        if (s && d->stages_.size() == max_codings) {
            error = "more than " + std::to_string(max_codings) + " content codings";
            return nullptr;
        }
        if (s) {
            d->stages_.push_back(std::move(s));
        }
        if (comma == std::string_view::npos) {
            break;
        }
        content_encoding = content_encoding.substr(0, comma);
    }
    return d;
}

stream_decoder::~stream_decoder() = default;

bool stream_decoder::run(std::size_t i, std::string_view in, sink& out) {
    if (i == stages_.size()) {
        if (!out.write(in)) {
            stopped_ = true;
            return false;
        }
        return true;
    }
    struct next_stage final : sink {
        next_stage(stream_decoder& d, std::size_t i, sink& out) : d(d), i(i), out(out) {}
        bool write(std::string_view piece) override { return d.run(i, piece, out); }
        stream_decoder& d;
        std::size_t i;
        sink& out;
    } next(*this, i + 1, out);
    stage& s = *stages_[i];
    s.got_input = s.got_input || !in.empty();
    if (!s.push(in, next)) {
        if (!s.error.empty() && error_.empty()) {
            error_ = s.error;
        }
        return false;
    }
    return true;
}

bool stream_decoder::feed(std::string_view piece, sink& out) {
    if (failed() || stopped_) {
        return false;
    }
    if (piece.empty()) {
        return true;
    }
    return run(0, piece, out);
}

bool stream_decoder::complete() const {
    if (failed()) {
        return false;
    }
    // A stage that never got a byte had an empty body to undo (bodiless responses often
    // still carry Content-Encoding).
    return std::all_of(stages_.begin(), stages_.end(),
                       [](const auto& s) { return !s->got_input || s->ended(); });
}

}  // namespace llm_proxy::record

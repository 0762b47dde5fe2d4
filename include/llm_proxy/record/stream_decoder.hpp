#pragma once
// Content-Encoding decoding as the body passes: gzip, deflate (zlib or raw), br, zstd, and
// stacks of them ("gzip, br"). Memory stays at one small buffer per coding whatever the body's
// size, and decoded bytes reach the caller as soon as the codings let them out.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llm_proxy::record {

class stream_decoder {
  public:
    // Receives decoded bytes; returns false to stop decoding (e.g. enough output).
    class sink {
      public:
        virtual bool write(std::string_view decoded) = 0;

      protected:
        ~sink() = default;
    };

    // nullptr when a coding is not supported, or when there are more than max_codings of them
    // (each holds a codec window: a head of thousands of "gzip" would take gigabytes);
    // `error` then says which. "identity" and an empty value give a decoder that passes bytes
    // through.
    static std::unique_ptr<stream_decoder> make(std::string_view content_encoding,
                                                std::string& error);
    static constexpr std::size_t max_codings = 5;  // as curl

    ~stream_decoder();
    stream_decoder(const stream_decoder&) = delete;
    stream_decoder& operator=(const stream_decoder&) = delete;

    // Decodes the next piece of the body. False when the data is corrupt (error() says why) or
    // the sink asked to stop; nothing more is decoded after that.
    bool feed(std::string_view piece, sink& out);

    // After the last piece: every coding's stream reached its end (the body was whole).
    bool complete() const;
    bool failed() const { return !error_.empty(); }
    const std::string& error() const { return error_; }
    // No coding to undo.
    bool identity() const { return stages_.empty(); }

    class stage;

  private:
    stream_decoder() = default;
    bool run(std::size_t i, std::string_view in, sink& out);

    std::vector<std::unique_ptr<stage>> stages_;  // in the order they are undone
    std::string error_;
    bool stopped_ = false;
};

}  // namespace llm_proxy::record

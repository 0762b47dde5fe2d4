#include "body_relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http_util.hpp"

namespace llm_proxy::proxy {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Decoded pieces gathered into one write at most (a read of many tiny chunks).
constexpr std::size_t max_pieces = 256;
// Room a read of a large or open-ended body gets: a few TLS records per system call.
constexpr std::size_t large_read = 64 * 1024;
// A body known to be this small is read into the room the buffer already has.
constexpr std::size_t small_body = 16 * 1024;

bool is_end_of_stream(const beast::error_code& ec) {
    return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

std::string_view buffer_view(const beast::flat_buffer& b) {
    return {static_cast<const char*>(b.data().data()), b.size()};
}

}  // namespace

body_source::body_source(flex_stream& stream, beast::flat_buffer& buffer, framing_decoder& decoder,
                         std::chrono::steady_clock::duration timeout)
    : stream_(stream), buffer_(buffer), decoder_(decoder), timeout_(timeout) {}

body_source::~body_source() {
    consume();
}

void body_source::consume() {
    buffer_.consume(pending_);
    pending_ = 0;
}

body_source::status body_source::take_buffered(std::vector<std::string_view>& pieces) {
    consume();
    pieces.clear();
    std::string_view in = buffer_view(buffer_);
    std::size_t used = 0;
    while (!decoder_.done() && pieces.size() < max_pieces) {
        auto step = decoder_.decode(in.substr(used));
        if (decoder_.failed()) {
            return status::bad_framing;
        }
        if (step.consumed == 0) {
            break;
        }
        used += step.consumed;
        if (!step.data.empty()) {
            pieces.push_back(step.data);
        }
    }
    pending_ = used;
    if (used > 0) {
        interim_ = {};  // the peer sends its body without waiting for a 100 (Continue)
    }
    return status::ok;
}

std::size_t body_source::read_room() const {
    std::size_t room = buffer_.capacity() - buffer_.size();
    auto remaining = decoder_.remaining();
    if (!(remaining && *remaining <= small_body) && room < large_read) {
        room = large_read;
    }
    return std::min(std::max<std::size_t>(room, 512), buffer_.max_size() - buffer_.size());
}

asio::awaitable<body_source::status> body_source::next(std::vector<std::string_view>& pieces) {
    for (;;) {
        if (auto st = take_buffered(pieces); st != status::ok || !pieces.empty() || done()) {
            co_return st;
        }
        consume();  // framing bytes only: the buffer holds at most a partial line now
        if (!interim_.empty()) {
            stream_.tcp().expires_after(timeout_);
            auto [wec, wn] = co_await asio::async_write(stream_, asio::buffer(interim_), use_tuple);
            interim_ = {};
            if (wec) {
                error_ = wec;
                co_return status::cut_off;
            }
        }
        std::size_t room = read_room();
        if (room == 0) {
            // Cannot happen with the decoder's line limits; never spin on a full buffer.
            error_ = asio::error::no_buffer_space;
            co_return status::cut_off;
        }
        stream_.tcp().expires_after(timeout_);
        auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(room), use_tuple);
        buffer_.commit(n);
        if (ec && n == 0) {
            if (is_end_of_stream(ec)) {
                decoder_.end_of_input();
                if (done()) {
                    continue;  // a body delimited by the close
                }
            }
            error_ = ec;
            co_return status::cut_off;
        }
    }
}

header_list forwardable_trailers(const header_list& trailers) {
    static constexpr std::string_view never[] = {"Content-Length",
                                                 "Transfer-Encoding",
                                                 "Host",
                                                 "Connection",
                                                 "Keep-Alive",
                                                 "TE",
                                                 "Trailer",
                                                 "Upgrade",
                                                 "Proxy-Authorization",
                                                 "Proxy-Authenticate",
                                                 "Content-Encoding",
                                                 "Content-Type",
                                                 "Content-Range"};
    header_list out;
    for (const auto& field : trailers) {
        bool drop = false;
        for (auto name : never) {
            drop = drop || iequals(field.first, name);
        }
        if (!drop) {
            out.push_back(field);
        }
    }
    return out;
}

namespace {

// One write: [head] [chunk-size line, pieces, CRLF] [end of the body].
class write_batch {
  public:
    void clear() {
        buffers_.clear();
        tail_.clear();
    }
    void add(std::string_view s) {
        if (!s.empty()) {
            buffers_.emplace_back(s.data(), s.size());
        }
    }
    // Adds body data framed by `encoder`; false when it does not fit the framing.
    bool add_data(framing_encoder& encoder, std::string_view prefix,
                  const std::vector<std::string_view>& pieces) {
        std::size_t total = prefix.size();
        for (auto p : pieces) {
            total += p.size();
        }
        if (total == 0) {
            return true;
        }
        std::string_view chunk_line;
        if (!encoder.begin_piece(total, chunk_line)) {
            return false;
        }
        add(chunk_line);
        add(prefix);
        for (auto p : pieces) {
            add(p);
        }
        add(encoder.end_piece());
        return true;
    }
    bool add_end(const framing_encoder& encoder, const header_list& trailers) {
        if (!encoder.finish(forwardable_trailers(trailers), tail_)) {
            return false;
        }
        add(tail_);
        return true;
    }
    bool empty() const { return buffers_.empty(); }

    asio::awaitable<beast::error_code> write(body_sink& sink) {
        if (buffers_.empty()) {
            co_return beast::error_code{};
        }
        sink.stream.tcp().expires_after(sink.timeout);
        auto [ec, n] = co_await asio::async_write(sink.stream, buffers_, use_tuple);
        co_return ec;
    }

  private:
    std::vector<asio::const_buffer> buffers_;
    std::string tail_;  // the end of the body (kept alive until written)
};

relay_result sink_mismatch() {
    return {relay_status::sink_failed, beast::error_code(asio::error::message_size)};
}

}  // namespace

void run_transforms(const std::vector<std::shared_ptr<body_transform>>& transforms,
                    std::vector<std::string_view>& pieces, bool last, std::string& scratch) {
    if (transforms.empty()) {
        return;
    }
    std::string in;
    for (auto p : pieces) {
        in.append(p);
    }
    std::string out;
    for (const auto& t : transforms) {
        out.clear();
        if (!in.empty()) {
            t->on_data(in, out);
        }
        if (last) {
            t->on_end(out);
        }
        in.swap(out);
    }
    scratch = std::move(in);
    pieces.clear();
    if (!scratch.empty()) {
        pieces.push_back(scratch);
    }
}

asio::awaitable<relay_result> relay_body(body_source& source, body_sink& sink,
                                         const body_filter& filter, std::string_view prefix) {
    std::vector<std::string_view> pieces;
    std::string scratch;
    write_batch batch;
    for (;;) {
        auto st = source.take_buffered(pieces);
        if (st == body_source::status::ok && pieces.empty() && prefix.empty() && !source.done()) {
            if (!sink.head.empty()) {
                batch.clear();
                batch.add(sink.head);
                if (auto ec = co_await batch.write(sink)) {
                    co_return relay_result{relay_status::sink_failed, ec};
                }
                sink.head.clear();
            }
            st = co_await source.next(pieces);
        }
        if (st == body_source::status::bad_framing) {
            co_return relay_result{relay_status::bad_framing, {}};
        }
        if (st == body_source::status::cut_off) {
            co_return relay_result{relay_status::cut_off, source.error()};
        }
        bool last = source.done();
        if (filter && !filter(pieces, last, scratch)) {
            co_return relay_result{relay_status::stopped, {}};
        }
        batch.clear();
        batch.add(sink.head);
        if (!batch.add_data(sink.encoder, prefix, pieces)) {
            co_return sink_mismatch();
        }
        prefix = {};
        if (last && !batch.add_end(sink.encoder, source.decoder().trailers())) {
            co_return sink_mismatch();
        }
        if (last && sink.before_end) {
            co_await sink.before_end();
        }
        if (auto ec = co_await batch.write(sink)) {
            co_return relay_result{relay_status::sink_failed, ec};
        }
        sink.head.clear();
        source.consume();
        if (last) {
            co_return relay_result{};
        }
    }
}

asio::awaitable<relay_result> send_pieces(body_sink& sink,
                                          const std::vector<std::string_view>& pieces,
                                          const header_list& trailers) {
    write_batch batch;
    const std::vector<std::string_view> none;
    for (std::size_t i = 0; i == 0 || i < pieces.size(); ++i) {
        bool last = i + 1 >= pieces.size();
        batch.clear();
        batch.add(sink.head);
        if (i < pieces.size() && !batch.add_data(sink.encoder, pieces[i], none)) {
            co_return sink_mismatch();
        }
        if (last && !batch.add_end(sink.encoder, trailers)) {
            co_return sink_mismatch();
        }
        if (last && sink.before_end) {
            co_await sink.before_end();
        }
        if (auto ec = co_await batch.write(sink)) {
            co_return relay_result{relay_status::sink_failed, ec};
        }
        sink.head.clear();
    }
    co_return relay_result{};
}

asio::awaitable<relay_result> send_body(body_sink& sink, std::string_view body,
                                        const header_list& trailers) {
    const std::vector<std::string_view> pieces{body};
    co_return co_await send_pieces(sink, pieces, trailers);
}

}  // namespace llm_proxy::proxy

#pragma once
// Moves a message body from one connection to the other as it arrives, in both directions
// (client -> upstream for requests, upstream -> client for responses):
//
//   stream --read--> buffer --framing_decoder--> body data --observer--> framing_encoder --> sink
//
// Body data is never copied on the way: the decoder yields views into the read buffer, and
// everything decoded from one read goes out in one gathered write (one chunk when chunked),
// together with the message head if that is still pending and, at the end, the last chunk.
// The head is never held back waiting for body bytes the peer has not sent yet.

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flex_stream.hpp"
#include "http_framing.hpp"

namespace llm_proxy::proxy {

// The decoding side: reads a body from a stream through its framing decoder. The bytes of the
// body are taken out of the buffer as they are used; what follows the body (a pipelined next
// message) stays in it.
class body_source {
  public:
    body_source(flex_stream& stream, beast::flat_buffer& buffer, framing_decoder& decoder,
                std::chrono::steady_clock::duration timeout);
    ~body_source();
    body_source(const body_source&) = delete;
    body_source& operator=(const body_source&) = delete;

    // Written to the stream before the first read from it (e.g. "HTTP/1.1 100 Continue").
    void send_before_first_read(std::string_view interim) { interim_ = interim; }

    enum class status {
        ok,
        bad_framing,  // the peer's framing is invalid: decoder().error() says how
        cut_off,      // the connection ended or failed before the body did: error()
    };
    // Body data already in the buffer, without waiting. The views stay valid until the next
    // call or consume(); the bytes behind them are dropped then.
    status take_buffered(std::vector<std::string_view>& pieces);
    // Like take_buffered, reading from the stream while nothing is buffered: `pieces` comes
    // back empty only when the body is done.
    boost::asio::awaitable<status> next(std::vector<std::string_view>& pieces);
    // Drops the bytes behind the pieces last returned.
    void consume();

    bool done() const { return decoder_.done() && !decoder_.failed(); }
    framing_decoder& decoder() { return decoder_; }
    const beast::error_code& error() const { return error_; }

  private:
    std::size_t read_room() const;

    flex_stream& stream_;
    beast::flat_buffer& buffer_;
    framing_decoder& decoder_;
    std::chrono::steady_clock::duration timeout_;
    std::string_view interim_;
    std::size_t pending_ = 0;  // decoded bytes at the front of the buffer, not yet consumed
    beast::error_code error_;
};

// The encoding side: a stream, the framing for it, and the message head still to be written.
struct body_sink {
    flex_stream& stream;
    framing_encoder& encoder;
    std::chrono::steady_clock::duration timeout;
    std::string head;  // emptied once written
    // When set: awaited once the whole body is in hand, before the write that ends the
    // message (its last data, last chunk, or the head of a bodiless message) goes out.
    std::function<boost::asio::awaitable<void>()> before_end;
};

enum class relay_status {
    done,
    bad_framing,  // the source's framing is invalid
    cut_off,      // the source ended or failed mid-body
    sink_failed,  // writing to the sink failed, or the data did not fit its framing
    stopped,      // the filter stopped it
};

struct relay_result {
    relay_status status = relay_status::done;
    beast::error_code error;  // of the source (cut_off) or the sink (sink_failed)
};

// Sees each batch of body data before it is written and may change it: `pieces` may be
// replaced, e.g. by views into `scratch` (which stays alive until the batch is written).
// `last`: the body ends with this batch. Returns false to stop the relay.
using body_filter =
    std::function<bool(std::vector<std::string_view>& pieces, bool last, std::string& scratch)>;

// Relays the body from `source` to `sink`, writing the sink's head first (with the first data
// when it is at hand). `prefix` is body data the caller already took from the source (and
// filtered): it goes out first. On success the sink's message is complete (last chunk and
// trailers written).
boost::asio::awaitable<relay_result> relay_body(body_source& source, body_sink& sink,
                                                const body_filter& filter,
                                                std::string_view prefix = {});

// Runs `pieces` through body transforms in order (a transform's output is the next one's
// input); on return `pieces` holds the result, stored in `scratch`. `last` ends the body:
// each transform's on_end output joins in.
void run_transforms(const std::vector<std::shared_ptr<body_transform>>& transforms,
                    std::vector<std::string_view>& pieces, bool last, std::string& scratch);

// Writes the sink's head and a body held in memory, framed: each piece in a write of its own
// (one chunk each when chunked), the head with the first piece and the end with the last.
boost::asio::awaitable<relay_result> send_pieces(body_sink& sink,
                                                 const std::vector<std::string_view>& pieces,
                                                 const header_list& trailers = {});

// Writes the sink's head and a whole body held in memory, framed, in one write.
boost::asio::awaitable<relay_result> send_body(body_sink& sink, std::string_view body,
                                               const header_list& trailers = {});

// Trailer fields that are never forwarded (framing, routing and connection fields).
header_list forwardable_trailers(const header_list& trailers);

}  // namespace llm_proxy::proxy

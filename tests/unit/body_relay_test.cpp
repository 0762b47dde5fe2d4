// The body relay (src/proxy/body_relay.hpp) over loopback sockets: chunk boundaries at every
// offset around the relay's read size, framing conversions, trailers, and the bytes after a
// body left for the next message. The output is parsed by Beast's parser, not ours.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "proxy/body_relay.hpp"

using namespace llm_proxy;
using namespace llm_proxy::proxy;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    std::mt19937 rng(seed);
    for (auto& c : s) {
        c = static_cast<char>('a' + rng() % 26);
    }
    return s;
}

std::string chunk(std::string_view data) {
    char size[20];
    std::snprintf(size, sizeof size, "%zx", data.size());
    return std::string(size) + "\r\n" + std::string(data) + "\r\n";
}

struct relay_outcome {
    relay_result result;
    std::string observed;   // what the observer saw
    std::string left_over;  // the source buffer after the relay (the next message)
    std::string output;     // everything the sink's peer received
    // One entry per relay step (one gathered write): the pieces it carried and whether it
    // was the last.
    std::vector<std::pair<std::size_t, bool>> steps;
};

// Writes `input` into one end of a loopback connection before the relay starts (so the relay's
// reads fall at fixed offsets), relays from the other end into a second connection, and
// collects what arrives there.
relay_outcome run_relay(const std::string& input, framing_decoder decoder, framing_encoder encoder,
                        std::string head, std::size_t trailing) {
    boost::asio::io_context ioc;
    // Socket buffers large enough for the whole input before anyone reads (set before
    // listen/connect so the TCP window is sized for them).
    tcp::acceptor acceptor(ioc);
    acceptor.open(tcp::v4());
    acceptor.set_option(boost::asio::socket_base::receive_buffer_size(1 << 20));
    acceptor.bind(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    acceptor.listen();
    auto pair = [&] {
        tcp::socket a(ioc);
        a.open(tcp::v4());
        a.set_option(boost::asio::socket_base::send_buffer_size(1 << 20));
        a.connect(acceptor.local_endpoint());
        return std::pair{std::move(a), acceptor.accept()};
    };
    auto [writer, relay_in] = pair();
    auto [relay_out, reader] = pair();
    boost::asio::write(writer, boost::asio::buffer(input));

    flex_stream in(boost::beast::tcp_stream(std::move(relay_in)));
    flex_stream out(boost::beast::tcp_stream(std::move(relay_out)));
    boost::beast::flat_buffer buffer(64 * 1024 + 64 * 1024);
    buffer.reserve(4 * 1024);  // as a client session's buffer starts
    relay_outcome outcome;
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> {
            body_source source(in, buffer, decoder, std::chrono::seconds(10));
            body_sink sink{out, encoder, std::chrono::seconds(10), std::move(head), {}};
            outcome.result = co_await relay_body(
                source, sink, [&](std::vector<std::string_view>& pieces, bool last, std::string&) {
                    outcome.steps.emplace_back(pieces.size(), last);
                    for (auto p : pieces) {
                        outcome.observed.append(p);
                    }
                    return true;
                });
            source.consume();
            // The message after the body: read whatever of it has not arrived yet.
            while (buffer.size() < trailing) {
                auto n =
                    co_await in.async_read_some(buffer.prepare(4096), boost::asio::use_awaitable);
                buffer.commit(n);
            }
            outcome.left_over.assign(static_cast<const char*>(buffer.data().data()), buffer.size());
            out.close();
        },
        [](std::exception_ptr e) {
            if (e) {
                std::rethrow_exception(e);
            }
        });
    std::thread drain([&, &reader = reader] {
        boost::system::error_code ec;
        char b[65536];
        for (;;) {
            auto n = reader.read_some(boost::asio::buffer(b), ec);
            if (ec) {
                break;
            }
            outcome.output.append(b, n);
        }
    });
    ioc.run();
    drain.join();
    return outcome;
}

// Parses the relay's output with Beast: body and the X-Trailer field, if any.
struct parsed {
    bool complete = false;
    std::string body;
    std::string trailer;
    std::string chunked;
    std::size_t extra = 0;  // bytes after the message
};
parsed parse_output(const std::string& output) {
    http::request_parser<http::string_body> p;
    p.eager(true);
    p.body_limit(boost::none);
    boost::system::error_code ec;
    std::size_t used = 0;
    while (used < output.size() && !p.is_done()) {
        auto n = p.put(boost::asio::buffer(output.data() + used, output.size() - used), ec);
        if (ec) {
            ADD_FAILURE() << "relay output does not parse: " << ec.message();
            return {};
        }
        if (n == 0) {
            break;
        }
        used += n;
    }
    parsed out;
    out.complete = p.is_done();
    out.body = p.get().body();
    out.trailer = std::string(p.get()["X-Trailer"]);
    out.chunked = p.chunked() ? "chunked" : "";
    out.extra = output.size() - used;
    return out;
}

const std::string next_message = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";

}  // namespace

// The relay reads 64 KiB at a time: a first chunk of 64 KiB +- 40 bytes puts its size line,
// data, CRLF and the following chunk's size line across that boundary at every offset.
TEST(BodyRelay, ChunkBoundariesAtEveryOffsetAroundTheReadSize) {
    constexpr std::size_t read_size = 64 * 1024;
    for (std::size_t first = read_size - 40; first <= read_size + 40; ++first) {
        std::string a = pattern(first, static_cast<unsigned>(first));
        std::string b = pattern(100, 7);
        std::string c = pattern(3000, 9);
        std::string input =
            chunk(a) + chunk(b) + chunk(c) + "0\r\nX-Trailer: kept\r\n\r\n" + next_message;
        auto r = run_relay(input, framing_decoder::for_chunked(), framing_encoder::for_chunked(),
                           "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                           next_message.size());
        ASSERT_EQ(r.result.status, relay_status::done) << "first chunk " << first;
        auto p = parse_output(r.output);
        ASSERT_TRUE(p.complete) << "first chunk " << first;
        ASSERT_EQ(p.body, a + b + c) << "first chunk " << first;
        EXPECT_EQ(p.trailer, "kept");
        EXPECT_EQ(p.extra, 0u) << "nothing after the end of the message";
        EXPECT_EQ(r.observed, a + b + c);
        ASSERT_EQ(r.left_over, next_message) << "first chunk " << first;
    }
}

TEST(BodyRelay, LengthBodyAtEveryOffsetAroundTheReadSize) {
    constexpr std::size_t read_size = 64 * 1024;
    for (std::size_t n = read_size - 8; n <= read_size + 8; ++n) {
        std::string body = pattern(n, static_cast<unsigned>(n));
        auto r = run_relay(body + next_message, framing_decoder::for_length(n),
                           framing_encoder::for_chunked(),
                           "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                           next_message.size());
        ASSERT_EQ(r.result.status, relay_status::done) << n;
        auto p = parse_output(r.output);
        ASSERT_TRUE(p.complete) << n;
        ASSERT_EQ(p.body, body) << n;
        ASSERT_EQ(r.left_over, next_message) << n;
    }
}

TEST(BodyRelay, ChunkedToContentLength) {
    std::string a = pattern(70000, 1), b = pattern(5, 2);
    std::string input = chunk(a) + chunk(b) + "0\r\n\r\n";
    auto r = run_relay(
        input, framing_decoder::for_chunked(), framing_encoder::for_length(a.size() + b.size()),
        "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(a.size() + b.size()) +
            "\r\n\r\n",
        0);
    ASSERT_EQ(r.result.status, relay_status::done);
    auto p = parse_output(r.output);
    EXPECT_TRUE(p.complete);
    EXPECT_TRUE(p.chunked.empty());
    EXPECT_EQ(p.body, a + b);
}

TEST(BodyRelay, EmptyBodyWritesTheHeadAndTheLastChunkOnly) {
    auto r = run_relay(next_message, framing_decoder::for_chunked(), framing_encoder::for_chunked(),
                       "POST /up HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    // "GET ..." is not a chunk size: the decoder refuses it instead of reading on.
    EXPECT_EQ(r.result.status, relay_status::bad_framing);

    auto empty = run_relay(
        "0\r\n\r\n" + next_message, framing_decoder::for_chunked(), framing_encoder::for_chunked(),
        "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", next_message.size());
    ASSERT_EQ(empty.result.status, relay_status::done);
    EXPECT_EQ(empty.output,
              "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    EXPECT_EQ(empty.left_over, next_message);
}

TEST(BodyRelay, DataBeyondTheAnnouncedLengthFailsTheSink) {
    auto r = run_relay(chunk(pattern(20, 3)) + "0\r\n\r\n", framing_decoder::for_chunked(),
                       framing_encoder::for_length(10),
                       "POST /up HTTP/1.1\r\nContent-Length: 10\r\n\r\n", 0);
    EXPECT_EQ(r.result.status, relay_status::sink_failed);
}

namespace {

// `count` chunks with distinct content each (chunk i holds its number and a few pattern bytes,
// 1 to 8 bytes in all; or exactly one byte when `one_byte`), all of which arrive in one read.
std::vector<std::string> distinct_chunks(std::size_t count, bool one_byte) {
    std::vector<std::string> chunks;
    for (std::size_t i = 0; i < count; ++i) {
        if (one_byte) {
            chunks.push_back(std::string(1, static_cast<char>('!' + i % 90)));
        } else {
            std::string c = std::to_string(i) + ":" + pattern(i % 4, static_cast<unsigned>(i));
            chunks.push_back(c.substr(0, 8));
        }
    }
    return chunks;
}

// The relay steps expected when `count` data chunks arrive in one read: 256 pieces at most
// per step; when the data ends exactly at a step's end, a last step of no pieces writes the
// last chunk.
std::vector<std::pair<std::size_t, bool>> expected_steps(std::size_t count) {
    std::vector<std::pair<std::size_t, bool>> steps;
    std::size_t left = count;
    while (left > 256) {
        steps.emplace_back(256, false);
        left -= 256;
    }
    if (left == 256) {
        steps.emplace_back(256, false);
        steps.emplace_back(0, true);
    } else {
        steps.emplace_back(left, true);
    }
    return steps;
}

// The chunked output the relay writes for those steps: one chunk per step with data.
std::string expected_chunked_output(const std::string& head, const std::vector<std::string>& in,
                                    const std::string& last_chunk) {
    std::string out = head;
    std::size_t i = 0;
    for (auto [pieces, last] : expected_steps(in.size())) {
        std::string data;
        for (std::size_t k = 0; k < pieces; ++k) {
            data += in[i++];
        }
        if (!data.empty()) {
            out += chunk(data);
        }
    }
    return out + last_chunk;
}

}  // namespace

// One read holding 255 / 256 / 257 (and more) chunks: a relay step gathers at most 256 decoded
// pieces into one write and the next step carries on from the buffer, nothing lost or
// repeated. With 255 chunks the last chunk is the 256th in the read and ends the same step;
// with 256 it is the 257th and gets a step of its own.
TEST(BodyRelay, AtMost256PiecesPerWriteAndTheRestInTheNextStep) {
    const std::string head = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (bool one_byte : {true, false}) {
        for (std::size_t count : {1u, 255u, 256u, 257u, 511u, 512u, 513u, 1000u}) {
            auto chunks = distinct_chunks(count, one_byte);
            std::string input, body;
            for (const auto& c : chunks) {
                input += chunk(c);
                body += c;
            }
            input += "0\r\n\r\n" + next_message;
            auto r = run_relay(input, framing_decoder::for_chunked(),
                               framing_encoder::for_chunked(), head, next_message.size());
            SCOPED_TRACE(testing::Message() << count << " chunks, one byte " << one_byte);
            ASSERT_EQ(r.result.status, relay_status::done);
            EXPECT_EQ(r.steps, expected_steps(count));
            EXPECT_EQ(r.observed, body);
            // Exactly: the head, one chunk per step, the last chunk; nothing after it.
            EXPECT_EQ(r.output, expected_chunked_output(head, chunks, "0\r\n\r\n"));
            auto p = parse_output(r.output);
            EXPECT_TRUE(p.complete);
            EXPECT_EQ(p.body, body);
            EXPECT_EQ(p.extra, 0u);
            EXPECT_EQ(r.left_over, next_message);
        }
    }
}

// The same bound with a trailer section after the 256th / 257th chunk, and into a
// Content-Length framing (the relayed bytes are then the body itself).
TEST(BodyRelay, PieceBoundWithTrailersAndIntoContentLength) {
    const std::string head = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (std::size_t count : {255u, 256u, 257u}) {
        SCOPED_TRACE(count);
        auto chunks = distinct_chunks(count, false);
        std::string input, body;
        for (const auto& c : chunks) {
            input += chunk(c);
            body += c;
        }
        auto t = run_relay(input + "0\r\nX-Trailer: kept\r\n\r\n" + next_message,
                           framing_decoder::for_chunked(), framing_encoder::for_chunked(), head,
                           next_message.size());
        ASSERT_EQ(t.result.status, relay_status::done);
        EXPECT_EQ(t.steps, expected_steps(count));
        EXPECT_EQ(t.output, expected_chunked_output(head, chunks, "0\r\nX-Trailer: kept\r\n\r\n"));
        EXPECT_EQ(t.left_over, next_message);

        const std::string length_head =
            "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n\r\n";
        auto l =
            run_relay(input + "0\r\n\r\n" + next_message, framing_decoder::for_chunked(),
                      framing_encoder::for_length(body.size()), length_head, next_message.size());
        ASSERT_EQ(l.result.status, relay_status::done);
        EXPECT_EQ(l.steps, expected_steps(count));
        EXPECT_EQ(l.output, length_head + body);
        EXPECT_EQ(l.left_over, next_message);
    }
}

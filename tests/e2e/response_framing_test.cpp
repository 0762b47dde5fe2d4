// Response bodies reach the client whole, whatever the upstream framing (Content-Length,
// chunked, close-delimited) and size, for HTTP/1.1 and HTTP/1.0 clients; an HTTP/1.0 client
// never gets chunked encoding; where keep-alive applies, the connection serves the next
// request correctly, and where it does not, the proxy closes it.
#include <limits>
#include <vector>

#include "framing_fixture.hpp"
#include "support/fake_upstream/pattern.hpp"

namespace llm_proxy::test {

namespace {

constexpr std::uint64_t MiB = 1024 * 1024;

enum class client_kind {
    http11,
    http10,             // no keep-alive: the proxy closes after the response
    http10_keep_alive,  // "Connection: keep-alive": kept when the length is known
};

struct download_row {
    bool https;
    client_kind client;
    std::string framing;  // the upstream's: length, chunked or close
    std::uint64_t size;
    std::uint64_t piece = 0;  // the upstream's body write size; 0: its default
};

const char* client_name(client_kind c) {
    switch (c) {
        case client_kind::http11:
            return "http11";
        case client_kind::http10:
            return "http10";
        case client_kind::http10_keep_alive:
            return "http10KeepAlive";
    }
    return "?";
}

std::string row_name(const download_row& r) {
    const std::string size =
        r.size >= MiB ? std::to_string(r.size / MiB) + "MiB" : std::to_string(r.size);
    return std::string(r.https ? "https_" : "http_") + client_name(r.client) + "_" + r.framing +
           "_" + size + (r.piece != 0 && r.piece == r.size ? "_oneWrite" : "");
}

// Test names and failure messages show the row by its name.
void PrintTo(const download_row& r, std::ostream* os) {
    *os << row_name(r);
}

std::vector<download_row> rows() {
    std::vector<download_row> out;
    for (auto client : {client_kind::http11, client_kind::http10, client_kind::http10_keep_alive}) {
        for (const char* framing : {"length", "chunked", "close"}) {
            for (std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{65535},
                                       std::uint64_t{65536}, std::uint64_t{65537}, MiB, 20 * MiB}) {
                out.push_back({true, client, framing, size});
            }
        }
    }
    // Around the 16 KiB body the relay reads into the room its buffer has rather than with its
    // 64 KiB read (small_body in src/proxy/body_relay.cpp).
    for (const char* framing : {"length", "chunked", "close"}) {
        for (std::uint64_t size : {16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1}) {
            out.push_back({true, client_kind::http11, framing, size});
        }
    }
    // The upstream connection's read buffer holds 256 KiB at most (src/proxy/upstream.hpp): a
    // body of 256 KiB - 1 / 256 KiB / 256 KiB + 1 (and 1 MiB) the upstream writes in one piece
    // straight after its head is there to be read at once; the client gets it exactly and the
    // next request on the connection is still answered correctly.
    for (const char* framing : {"length", "chunked"}) {
        for (std::uint64_t size : {256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 1024 * 1024}) {
            out.push_back({true, client_kind::http11, framing, size, size});
        }
    }
    for (auto client : {client_kind::http11, client_kind::http10}) {
        for (const char* framing : {"length", "chunked", "close"}) {
            out.push_back({false, client, framing, 65537});
        }
    }
    return out;
}

}  // namespace

class ResponseFraming : public framing_suite, public ::testing::WithParamInterface<download_row> {};

TEST_P(ResponseFraming, BodyArrivesWholeAndTheConnectionStaysInSync) {
    const auto& row = GetParam();
    auto& proxy = env().shared_proxy(proxy_kind::simple);
    auto c = connect(proxy, row.https ? "https://api.openai.com" : "http://api.openai.com");
    const unsigned version = row.client == client_kind::http11 ? 11 : 10;
    header_list headers;
    if (row.client == client_kind::http10_keep_alive) {
        headers.emplace_back("Connection", "keep-alive");
    }
    // Small bodies are written by the upstream in odd 1000-byte pieces (many small chunks),
    // except the 16 KiB edge rows: written in one piece, the proxy may read them whole.
    const bool small_body_edge = row.size >= 16 * 1024 - 1 && row.size <= 16 * 1024 + 1;
    std::string path = "/download?bytes=" + std::to_string(row.size) + "&framing=" + row.framing +
                       (row.piece != 0 ? "&piece=" + std::to_string(row.piece)
                        : row.size <= 65537 && !small_body_edge ? "&piece=1000"
                                                                : "") +
                       "&id=" + unique_id("download");
    c.send(make_head("GET", c.target(path), c.host_header(), headers, version));

    std::uint64_t offset = 0;
    std::uint64_t first_mismatch = std::numeric_limits<std::uint64_t>::max();
    const raw_response r = c.read_final_response(false, [&](std::string_view piece) {
        if (first_mismatch == std::numeric_limits<std::uint64_t>::max()) {
            const auto m = pattern_mismatch(piece.data(), piece.size(), offset);
            if (m != piece.size()) {
                first_mismatch = offset + m;
            }
        }
        offset += piece.size();
    });
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body_length, row.size);
    EXPECT_EQ(first_mismatch, std::numeric_limits<std::uint64_t>::max())
        << "the body differs from byte " << first_mismatch;
    EXPECT_EQ(r.version, version) << "the response is not in the client's HTTP version";
    if (row.framing == "length") {
        EXPECT_EQ(r.framing, raw_response::body_framing::length)
            << "the upstream's Content-Length was not kept";
    }
    if (version == 10) {
        EXPECT_NE(r.framing, raw_response::body_framing::chunked)
            << "chunked encoding sent to an HTTP/1.0 client";
    }

    const bool keep_alive_possible =
        row.client == client_kind::http11 ||
        (row.client == client_kind::http10_keep_alive && row.framing == "length");
    if (row.client == client_kind::http11) {
        EXPECT_TRUE(r.keep_alive()) << "an HTTP/1.1 response closes the connection";
    }
    if (row.client == client_kind::http10) {
        EXPECT_FALSE(r.keep_alive());
    }
    if (keep_alive_possible && r.keep_alive()) {
        expect_own_echo(c, unique_id("after-download"), version, headers);
    } else {
        EXPECT_TRUE(c.peer_closed(std::chrono::seconds(30)))
            << "the response said the connection ends, but the proxy kept it open";
        EXPECT_EQ(c.pending(), "") << "bytes after the end of the response";
    }
}

INSTANTIATE_TEST_SUITE_P(Matrix, ResponseFraming, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<download_row>& info) {
                             return row_name(info.param);
                         });

}  // namespace llm_proxy::test

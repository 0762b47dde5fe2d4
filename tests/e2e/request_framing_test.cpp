// Request bodies reach the upstream byte for byte, whatever their size and framing
// (Content-Length, chunked with various chunk sizes, extensions and trailers, Expect:
// 100-continue) and however the client times them (head and body in one write, or the head
// alone first as curl sends bodies of 64 KiB and more), through every subcommand, over CONNECT +
// TLS and over plain-HTTP absolute-form. After each upload the same client connection must get
// the right answer to its next request.
#include <vector>

#include "framing_fixture.hpp"

namespace llm_proxy::test {

namespace {

enum class framing_kind {
    content_length,
    chunked_16k,
    chunked_1000,
    chunked_65537,
    chunked_ext_trailers,  // 16 KiB chunks with ";ext=1" on each and two trailers
    expect_content_length,
    expect_chunked,  // 16 KiB chunks
};

struct upload_row {
    proxy_kind kind;
    bool https;
    framing_kind framing;
    send_timing timing;
    std::uint64_t size;
};

constexpr std::uint64_t MiB = 1024 * 1024;

const char* framing_name(framing_kind f) {
    switch (f) {
        case framing_kind::content_length:
            return "length";
        case framing_kind::chunked_16k:
            return "chunked16k";
        case framing_kind::chunked_1000:
            return "chunked1000";
        case framing_kind::chunked_65537:
            return "chunked65537";
        case framing_kind::chunked_ext_trailers:
            return "chunkedExtTrailers";
        case framing_kind::expect_content_length:
            return "expectLength";
        case framing_kind::expect_chunked:
            return "expectChunked";
    }
    return "?";
}

bool is_expect(framing_kind f) {
    return f == framing_kind::expect_content_length || f == framing_kind::expect_chunked;
}

std::string size_name(std::uint64_t size) {
    if (size >= MiB && size % MiB == 0) {
        return std::to_string(size / MiB) + "MiB";
    }
    return std::to_string(size);
}

std::string row_name(const upload_row& r) {
    std::string timing = is_expect(r.framing)                ? "afterContinue"
                         : r.timing == send_timing::together ? "oneWrite"
                                                             : "headFirst";
    return std::string(name_of(r.kind)) + (r.https ? "_https_" : "_http_") +
           framing_name(r.framing) + "_" + timing + "_" + size_name(r.size);
}

upload_spec spec_for(const upload_row& r) {
    upload_spec spec;
    spec.size = r.size;
    spec.seed = next_seed();
    switch (r.framing) {
        case framing_kind::content_length:
        case framing_kind::expect_content_length:
            spec.framing = body_framing::content_length;
            break;
        case framing_kind::chunked_16k:
        case framing_kind::expect_chunked:
            spec.framing = body_framing::chunked;
            spec.chunk_size = 16 * 1024;
            break;
        case framing_kind::chunked_1000:
            spec.framing = body_framing::chunked;
            spec.chunk_size = 1000;
            break;
        case framing_kind::chunked_65537:
            spec.framing = body_framing::chunked;
            spec.chunk_size = 65537;
            break;
        case framing_kind::chunked_ext_trailers:
            spec.framing = body_framing::chunked;
            spec.chunk_size = 16 * 1024;
            spec.chunk_extension = ";ext=1";
            spec.trailers = {{"X-Checksum", "not-checked"}, {"X-Trailer-Two", "2"}};
            break;
    }
    return spec;
}

const std::vector<std::uint64_t> small_sizes = {0, 1, 65535, 65536, 65537, MiB};
constexpr std::uint64_t big_size = 20 * MiB;

// Every framing and timing for the sizes up to 1 MiB, and the common framings at 20 MiB.
std::vector<upload_row> full_matrix(proxy_kind kind, bool https) {
    std::vector<upload_row> rows;
    for (auto f :
         {framing_kind::content_length, framing_kind::chunked_16k, framing_kind::chunked_1000,
          framing_kind::chunked_65537, framing_kind::chunked_ext_trailers,
          framing_kind::expect_content_length, framing_kind::expect_chunked}) {
        for (auto size : small_sizes) {
            rows.push_back({kind, https, f, send_timing::head_first, size});
            if (!is_expect(f)) {
                rows.push_back({kind, https, f, send_timing::together, size});
            }
        }
    }
    for (auto f : {framing_kind::content_length, framing_kind::chunked_16k}) {
        rows.push_back({kind, https, f, send_timing::head_first, big_size});
        rows.push_back({kind, https, f, send_timing::together, big_size});
    }
    rows.push_back({kind, https, framing_kind::chunked_65537, send_timing::head_first, big_size});
    rows.push_back({kind, https, framing_kind::expect_chunked, send_timing::head_first, big_size});
    return rows;
}

// A subset: the main framings at every size, head first (the case that loses bodies), one
// 20 MiB chunked head-first row and a few one-write rows.
std::vector<upload_row> subset(proxy_kind kind, bool https, std::vector<framing_kind> framings) {
    std::vector<upload_row> rows;
    for (auto f : framings) {
        for (auto size : small_sizes) {
            rows.push_back({kind, https, f, send_timing::head_first, size});
        }
    }
    for (auto size : {std::uint64_t{65537}, MiB}) {
        rows.push_back({kind, https, framing_kind::content_length, send_timing::together, size});
        rows.push_back({kind, https, framing_kind::chunked_16k, send_timing::together, size});
    }
    rows.push_back({kind, https, framing_kind::chunked_16k, send_timing::head_first, big_size});
    return rows;
}

// Around the 16 KiB body the relay reads into the room its buffer has rather than with its
// 64 KiB read (small_body in src/proxy/body_relay.cpp): one byte below, at and above it, in
// Content-Length and chunked framing, head first and in one write. (65,535 to 65,537, the
// relay's large_read and the TLS stream's max_write, are in every matrix above.)
std::vector<upload_row> small_body_edge(proxy_kind kind) {
    std::vector<upload_row> rows;
    for (auto f :
         {framing_kind::content_length, framing_kind::chunked_16k, framing_kind::chunked_1000}) {
        for (std::uint64_t size : {16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1}) {
            rows.push_back({kind, true, f, send_timing::head_first, size});
            rows.push_back({kind, true, f, send_timing::together, size});
        }
    }
    return rows;
}

// Test names and failure messages show the row by its name.
void PrintTo(const upload_row& r, std::ostream* os) {
    *os << row_name(r);
}

struct row_namer {
    std::string operator()(const ::testing::TestParamInfo<upload_row>& info) const {
        return row_name(info.param);
    }
};

}  // namespace

class RequestFraming : public framing_suite, public ::testing::WithParamInterface<upload_row> {};

TEST_P(RequestFraming, UpstreamReceivesTheExactBodyAndTheConnectionStaysInSync) {
    const upload_row& row = GetParam();
    auto& proxy = env().shared_proxy(row.kind);
    auto c = connect(proxy, row.https ? "https://api.openai.com" : "http://api.openai.com");
    const upload_spec spec = spec_for(row);
    const std::string path = "/sink?id=" + unique_id(row_name(row));
    const auto out = upload(c, spec, row.timing, is_expect(row.framing), path);
    expect_sink_received(out, path);
    if (row.kind == proxy_kind::cache) {
        EXPECT_EQ(out.response.header("X-Llm_proxy-Cache").value_or("(none)"),
                  row.size <= cache_max_body ? "MISS" : "SKIP");
    }
    ASSERT_TRUE(out.response.keep_alive()) << "the proxy closes the connection after the upload";
    expect_own_echo(c, unique_id("after-upload"));
}

INSTANTIATE_TEST_SUITE_P(Simple, RequestFraming,
                         ::testing::ValuesIn(full_matrix(proxy_kind::simple, true)), row_namer{});

INSTANTIATE_TEST_SUITE_P(SimpleSmallBodyEdge, RequestFraming,
                         ::testing::ValuesIn(small_body_edge(proxy_kind::simple)), row_namer{});

INSTANTIATE_TEST_SUITE_P(SimplePlainHttp, RequestFraming,
                         ::testing::ValuesIn(subset(proxy_kind::simple, false,
                                                    {framing_kind::content_length,
                                                     framing_kind::chunked_16k,
                                                     framing_kind::expect_chunked})),
                         row_namer{});

INSTANTIATE_TEST_SUITE_P(
    DirLoggerDefaultBodyLog, RequestFraming,
    ::testing::ValuesIn(subset(proxy_kind::dir_logger, true,
                               {framing_kind::content_length, framing_kind::chunked_16k,
                                framing_kind::chunked_65537, framing_kind::chunked_ext_trailers,
                                framing_kind::expect_chunked})),
    row_namer{});

INSTANTIATE_TEST_SUITE_P(DirLoggerTinyBodyLog, RequestFraming,
                         ::testing::ValuesIn(subset(proxy_kind::dir_logger_tiny, true,
                                                    {framing_kind::content_length,
                                                     framing_kind::chunked_16k,
                                                     framing_kind::chunked_1000})),
                         row_namer{});

INSTANTIATE_TEST_SUITE_P(CacheMemoryEngine, RequestFraming,
                         ::testing::ValuesIn(subset(
                             proxy_kind::cache, true,
                             {framing_kind::content_length, framing_kind::chunked_16k,
                              framing_kind::chunked_ext_trailers,
                              framing_kind::expect_content_length, framing_kind::expect_chunked})),
                         row_namer{});

}  // namespace llm_proxy::test

#pragma once
// Request bodies of any size for framing tests, generated and hashed piece by piece so that a
// 512 MiB upload never sits in memory: deterministic pseudo-random bytes, SHA-256 (OpenSSL
// EVP), chunked transfer encoding with chosen chunk sizes, extensions and trailers.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "support/http_client.hpp"  // header_list

namespace llm_proxy::test {

class proxied_connection;

// Incremental SHA-256; hex_digest() finishes it (lower-case hex).
class sha256 {
  public:
    sha256();
    ~sha256();
    sha256(const sha256&) = delete;
    sha256& operator=(const sha256&) = delete;

    void update(std::string_view data);
    std::string hex_digest();

    static std::string of(std::string_view data);

  private:
    void* ctx_;  // EVP_MD_CTX
};

// Byte i of body `seed` is the same however the body is cut into pieces: fills out with bytes
// [offset, offset + n) of it.
void fill_body(char* out, std::size_t n, std::uint64_t seed, std::uint64_t offset);
// The first n bytes of body `seed`, in memory (for small bodies).
std::string make_body(std::size_t n, std::uint64_t seed);

// One chunk: "<hex size><extension>\r\n<data>\r\n". extension like ";ext=1" (or "").
std::string encode_chunk(std::string_view data, std::string_view extension = "");
// The last chunk, the trailers and the final CRLF: "0<extension>\r\n<name: value\r\n>...\r\n".
std::string encode_last_chunk(std::string_view extension = "", const header_list& trailers = {});
// The whole body as chunks of chunk_size bytes (the last one shorter) plus encode_last_chunk.
std::string encode_chunked(std::string_view body, std::size_t chunk_size,
                           std::string_view extension = "", const header_list& trailers = {});

enum class body_framing { content_length, chunked };

struct upload_spec {
    std::uint64_t size = 0;
    std::uint64_t seed = 1;
    body_framing framing = body_framing::content_length;
    std::size_t chunk_size = 16 * 1024;  // chunked: data bytes per chunk (the last may be less)
    std::string chunk_extension;         // chunked: added to every chunk and the last one
    header_list trailers;                // chunked
    std::size_t write_size = 64 * 1024;  // about this many encoded bytes per send()
};

struct upload_result {
    std::uint64_t length = 0;      // body bytes (not counting chunk framing)
    std::string sha256;            // of the body bytes
    std::uint64_t wire_bytes = 0;  // bytes written, framing and prefix included
};

// The framing header lines of spec ("Content-Length: N" or "Transfer-Encoding: chunked",
// plus "Trailer: ..." when there are trailers), for make_head().
header_list framing_headers(const upload_spec& spec);

// Sends the body of `spec`, framed, generated piece by piece (memory: one piece). `prefix` (e.g.
// the request head) goes out in the same write as the first piece. Throws like
// proxied_connection::send().
upload_result send_body(proxied_connection& c, const upload_spec& spec, std::string prefix = {});

// What send_body() would send, hashed without sending anything.
upload_result expected_body(const upload_spec& spec);

}  // namespace llm_proxy::test

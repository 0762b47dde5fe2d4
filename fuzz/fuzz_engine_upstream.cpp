// The upstream response side of the engine: a fixed request (chosen by the first input byte)
// goes through a real client_session, and the upstream answers the rest of the input as is
// (response heads, framing, 1xx, trailers, close-delimited bodies), then closes.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"

namespace {

constexpr std::array<std::string_view, 10> requests = {
    "GET http://upstream.test/x HTTP/1.1\r\nHost: upstream.test\r\n\r\n",
    "HEAD http://upstream.test/x HTTP/1.1\r\nHost: upstream.test\r\n\r\n",
    "POST http://api.openai.com/v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
    "Content-Type: application/json\r\nContent-Length: 81\r\n\r\n"
    R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]})",
    "POST http://api.anthropic.com/v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\n"
    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    "40\r\n"
    R"({"model":"claude-3-5-haiku-latest","max_tokens":5,"stream":true})"
    "\r\n0\r\n\r\n",
    "CONNECT upstream.test:80 HTTP/1.1\r\nHost: upstream.test:80\r\n\r\n"
    "GET /inside HTTP/1.1\r\nHost: upstream.test\r\n\r\n",
    "GET http://upstream.test/old HTTP/1.0\r\nConnection: close\r\n\r\n",
    "POST http://generativelanguage.googleapis.com/v1beta/models/"
    "gemini-2.0-flash:streamGenerateContent?alt=sse HTTP/1.1\r\n"
    "Host: generativelanguage.googleapis.com\r\nContent-Length: 2\r\n\r\n{}",
    "GET http://upstream.test/1 HTTP/1.1\r\nHost: upstream.test\r\n\r\n"
    "GET http://upstream.test/2 HTTP/1.1\r\nHost: upstream.test\r\n\r\n",
    "POST http://upstream.test/upload HTTP/1.1\r\nHost: upstream.test\r\n"
    "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
    "POST http://api.openai.com/v1/responses HTTP/1.1\r\nHost: api.openai.com\r\n"
    "Accept-Encoding: gzip, br, zstd\r\nContent-Length: 47\r\n\r\n"
    R"({"model":"gpt-4.1","input":"hi","stream":false})",
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    llm_proxy::fuzz::harness_for(llm_proxy::fuzz::upstream_mode::raw);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& harness = llm_proxy::fuzz::harness_for(llm_proxy::fuzz::upstream_mode::raw);
    if (size == 0) {
        return 0;
    }
    std::string_view request = requests[data[0] % requests.size()];
    std::string_view response(reinterpret_cast<const char*>(data) + 1, size - 1);
    harness.exchange(request, response);
    return 0;
}

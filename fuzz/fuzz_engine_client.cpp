// The client side of the engine: arbitrary bytes from a client (request heads, bodies in every
// framing, CONNECT, pipelined requests) go to a real client_session over a loopback connection;
// the upstream answers canned responses chosen by the request path (see fuzz_support.hpp).
// Every finished flow's record is rendered and must parse as JSON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    llm_proxy::fuzz::harness_for(llm_proxy::fuzz::upstream_mode::scripted);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& harness = llm_proxy::fuzz::harness_for(llm_proxy::fuzz::upstream_mode::scripted);
    harness.exchange(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}

// The client side of the engine: arbitrary bytes from a client (request heads, bodies in every
// framing, CONNECT, pipelined requests) go to a real client_session over a loopback connection;
// the upstream answers canned responses chosen by the request path (see fuzz_support.hpp).
// Every finished flow's record is rendered and must parse as JSON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"

// Made before the first input (LLVMFuzzerInitialize), so that making it (a CA with its RSA
// key) does not count against the first input's time limit: a fuzzer started at low priority
// beside a build reported the empty input as a timeout while its key was being generated.
static llm_proxy::fuzz::engine_harness& the_harness() {
    static llm_proxy::fuzz::engine_harness harness(llm_proxy::fuzz::upstream_mode::scripted);
    return harness;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    the_harness();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& harness = the_harness();
    harness.exchange(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}

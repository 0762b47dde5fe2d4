#pragma once
// Shared pieces of the fuzz targets: the in-process engine harness (a real client_session
// on one worker, fed over a loopback connection, with a loopback upstream) and small helpers.
//
// The engine harness runs everything on the worker's io_context in the fuzzer's thread: the
// proxy's client session, the client that sends the fuzz input and reads until the proxy is
// done, and the upstream server. Nothing leaves 127.0.0.1; every listener binds port 0.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace llm_proxy::fuzz {

// Aborts (a crash libFuzzer reports) with `what` when `ok` is false: the targets' own checks.
inline void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz check failed: %s\n", what);
        std::abort();
    }
}

// Silences spdlog (the engine logs every failed flow) unless LLM_PROXY_FUZZ_LOG is set.
void quiet_logs();

// What the upstream of the engine harness does with each connection it accepts.
enum class upstream_mode {
    // Reads requests (keep-alive) and answers each with a canned response chosen by the
    // request target's path: /cl, /chunked (with trailers), /close (close-delimited),
    // /sse, /gzip, /continue (100 Continue first), /early-hints (103 first), /204, /304,
    // /switch (101 and a raw byte exchange), anything else: 200 echoing the request body.
    scripted,
    // Reads one request head (and what body arrives), then writes `raw_response` as is and
    // closes: the response side of the engine fed arbitrary bytes.
    raw,
};

class engine_harness {
  public:
    explicit engine_harness(upstream_mode mode);
    ~engine_harness();
    engine_harness(const engine_harness&) = delete;
    engine_harness& operator=(const engine_harness&) = delete;

    // One exchange: a new client connection to the proxy session, `client_bytes` written
    // (then the client shuts its sending side), everything the proxy answers read until it
    // closes. In raw mode, the upstream's connections answer `raw_response`. Returns the bytes
    // the client received.
    std::string exchange(std::string_view client_bytes, std::string_view raw_response = {});

    std::uint16_t upstream_port() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// The process's one harness for `mode`, made on the first call. The engine targets call it from
// LLVMFuzzerInitialize, before the first input, so that making it (a CA with its RSA key) does
// not count against the first input's time limit: a fuzzer started at low priority beside a
// build reported the empty input as a timeout while its key was being generated.
engine_harness& harness_for(upstream_mode mode);

}  // namespace llm_proxy::fuzz

#pragma once
// Helpers for the blind-tunnel tests: a raw TCP server that runs one handler per connection,
// a CONNECT over a raw socket, and certificate issuers.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "support/raw_socket.hpp"

namespace llm_proxy::test {

// Listens on 127.0.0.1:<ephemeral>; each accepted connection runs `handler(fd)` on a thread of
// its own (the fd is closed after it returns). Accepting gives up after `accept_timeout`.
class raw_server {
  public:
    using handler = std::function<void(int fd)>;
    explicit raw_server(handler h, std::size_t connections = 1,
                        std::chrono::milliseconds accept_timeout = std::chrono::seconds(30));
    ~raw_server();  // joins every thread
    std::uint16_t port() const { return port_; }

  private:
    unique_fd listener_;
    std::uint16_t port_ = 0;
    std::vector<std::thread> threads_;
    std::vector<std::thread> workers_;  // touched only by the accepting thread until joined
};

// Connects to the proxy, sends CONNECT host:port (with extra header lines, each ending in
// "\r\n") and reads the response head. Returns the fd with the tunnel open, or throws
// std::runtime_error with the proxy's answer when it is not 200.
unique_fd open_tunnel(std::uint16_t proxy_port, const std::string& target,
                      const std::string& extra_headers = "",
                      std::chrono::milliseconds io_timeout = std::chrono::seconds(30));

// Deterministic test bytes: block `index` of a stream seeded with `seed`.
void fill_pattern(std::string& block, std::uint64_t seed, std::uint64_t index);
// FNV-1a 64 over a stream, updated piece by piece.
struct fnv64 {
    std::uint64_t value = 1469598103934665603ull;
    void update(std::string_view s);
};

// The issuer / subject of a PEM certificate (one line, OpenSSL's RFC 2253 form).
std::string certificate_issuer(const std::string& pem);
std::string certificate_subject_of_file(const std::filesystem::path& pem_file);

}  // namespace llm_proxy::test

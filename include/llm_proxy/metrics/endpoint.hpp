#pragma once
// Serves GET /metrics (the registry's text exposition) over plain HTTP/1.1 on a thread and an
// io_context of its own, apart from the proxy's workers. Other paths get 404, other methods
// 405.

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "llm_proxy/metrics/registry.hpp"

namespace llm_proxy::metrics {

class endpoint {
  public:
    // Binds host:port (port 0: any free one) and starts serving; throws std::runtime_error
    // when the address cannot be bound.
    endpoint(std::shared_ptr<const registry> registry, const std::string& host, std::uint16_t port);
    // stop().
    ~endpoint();
    endpoint(const endpoint&) = delete;
    endpoint& operator=(const endpoint&) = delete;

    boost::asio::ip::tcp::endpoint local_endpoint() const;
    // Closes the listener and the connections, joins the thread. Idempotent.
    void stop();

    struct impl;

  private:
    std::unique_ptr<impl> impl_;
};

}  // namespace llm_proxy::metrics

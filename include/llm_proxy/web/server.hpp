#pragma once
// The web view's HTTP server (--web, `llm_proxy web DIR`): the page, its assets and the JSON
// API over a flow store, on a thread and io_context of its own, never on the proxy's. See
// docs/web.md for the API and the security model.

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "llm_proxy/llm/record_reader.hpp"
#include "llm_proxy/proxy/proxy_auth.hpp"
#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/web/flow_store.hpp"

namespace llm_proxy::web {

struct server_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8081;
    // Required from every client when not empty: ?token=, then a cookie, or "Authorization:
    // Bearer". The server refuses to start on a non-loopback address without one.
    std::string token;
    // When set and not empty: HTTP Basic with credentials these accept (--proxy-auth's) also
    // lets a client in, and a 401 asks the browser for them. Either this or a token is
    // required on a non-loopback address.
    std::shared_ptr<const proxy_credentials> credentials;
    bool live = true;        // the flows of this run (false: records from disk)
    llm::read_options read;  // for records without an "llm" object (must outlive the server)
    // How the flows of this run are shown: the header filters of their records (the default
    // credential headers, and those the record writer filters).
    record::record_options shown;
};

class server {
  public:
    // Listens at once; throws std::runtime_error when it cannot, or std::invalid_argument for
    // a non-loopback address without a token or credentials.
    server(std::shared_ptr<flow_store> store, server_options options);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    boost::asio::ip::tcp::endpoint local_endpoint() const;
    // The address to open: http://HOST:PORT/ (with ?token= when one is required).
    std::string url() const;
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A random token for --web-token random (32 hex digits).
std::string make_token();

}  // namespace llm_proxy::web

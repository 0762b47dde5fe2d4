#pragma once
// Who may talk to the web view: the Host header must name the address the server is bound to
// (no DNS rebinding), and with a token or credentials every request must carry one of them.
// And the headers every answer gets (strict Content-Security-Policy, no sniffing, no framing, no
// CORS).

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llm_proxy/proxy/proxy_auth.hpp"

namespace llm_proxy::web {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

// A response with a short JSON error: {"error": message}.
response json_error(const request& req, boost::beast::http::status status,
                    const std::string& message);
// Adds the security headers and finishes the response (Content-Length).
void finish(response& res);

class http_guard {
  public:
    // `bound`: the address the server listens on (an unspecified address accepts any Host:
    // the token guards it); `port` its port. `credentials` (may be null or empty): HTTP Basic
    // with credentials they accept is let in too.
    http_guard(const std::string& bound, std::uint16_t port, std::string token,
               std::shared_ptr<const proxy_credentials> credentials = nullptr);
    // nullopt: the request may go on (`set_cookie` true when it brought the token in the
    // query: the answer should set the cookie); else the refusal.
    std::optional<response> check(const request& req, bool& set_cookie) const;
    std::string cookie() const;

  private:
    bool host_ok(const request& req) const;
    bool token_ok(const request& req, bool& from_query) const;
    bool credentials_ok(const request& req) const;

    std::vector<std::string> hosts_;
    bool any_host_ = false;
    std::string token_;
    std::shared_ptr<const proxy_credentials> credentials_;
};

// The value of query parameter `name` in `target` (no percent-decoding), or nullopt.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

}  // namespace llm_proxy::web

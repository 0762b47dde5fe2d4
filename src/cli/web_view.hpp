#pragma once
// --web: the web view's server and the addon that feeds it, and `llm_proxy web`'s listener.

#include <memory>

#include "cli/options.hpp"
#include "llm_proxy/web/server.hpp"

namespace llm_proxy::cli {

// The server options of --web ADDRESS / --web-token (a "random" token is made up and printed
// with the address, once). Throws std::invalid_argument for a bad address.
web::server_options make_web_options(const std::string& address, const global_options& g);

// Checks --web and --web-token before anything starts: throws std::invalid_argument for a bad
// address, or a non-loopback one without a token.
void check_web_options(const global_options& g);

// Starts the web server and logs where it is.
std::unique_ptr<web::server> start_web_server(std::shared_ptr<web::flow_store> store,
                                              web::server_options options);

// With --web: adds the feeding addon to `chain` and starts the server; nullptr without.
std::unique_ptr<web::server> start_web_view(const global_options& g, addon_chain& chain);

}  // namespace llm_proxy::cli

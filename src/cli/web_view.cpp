#include "cli/web_view.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <stdexcept>

#include "llm_proxy/addons/dir_logger.hpp"
#include "llm_proxy/addons/web_feed.hpp"
#include "llm_proxy/util/authority.hpp"

namespace llm_proxy::cli {

namespace {

constexpr std::size_t ring_size = 1000;                 // flows kept for the view
constexpr std::size_t body_limit = 1024 * 1024;         // bytes of each body kept
constexpr std::size_t body_budget = 256 * 1024 * 1024;  // of all kept bodies

void add_filters(std::vector<std::string>& to, const std::vector<std::string>& more) {
    for (const auto& name : more) {
        if (std::none_of(to.begin(), to.end(), [&](const auto& n) { return iequals(n, name); })) {
            to.push_back(name);
        }
    }
}

}  // namespace

web::server_options make_web_options(const std::string& address, const global_options& g) {
    auto a = parse_listen_address(address, "--web");
    web::server_options o;
    o.host = a.host;
    o.port = a.port;
    o.token = g.web_token == "random" ? web::make_token() : g.web_token;
    auto credentials = make_proxy_credentials(g);
    if (credentials.enabled()) {
        o.credentials = std::make_shared<const proxy_credentials>(std::move(credentials));
    }
    return o;
}

void check_web_options(const global_options& g) {
    if (g.web.empty()) {
        return;
    }
    auto a = parse_listen_address(g.web, "--web");
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(a.host, ec);
    if (!ec && !address.is_loopback() && g.web_token.empty() && g.proxy_auth.empty() &&
        g.proxy_auth_file.empty()) {
        throw std::invalid_argument(
            "--web " + g.web +
            " is not a loopback address: the view shows prompts and answers. Add --web-token "
            "random (or --web-token TOKEN) to require a token, or --proxy-auth credentials");
    }
}

std::unique_ptr<web::server> start_web_server(std::shared_ptr<web::flow_store> store,
                                              web::server_options options) {
    auto server = std::make_unique<web::server>(std::move(store), std::move(options));
    spdlog::info("web view listening on {}", endpoint_text(server->local_endpoint()));
    spdlog::info("web view: open {}", server->url());
    return server;
}

std::unique_ptr<web::server> start_web_view(const global_options& g, addon_chain& chain) {
    if (g.web.empty()) {
        return nullptr;
    }
    auto options = make_web_options(g.web, g);
    auto store = std::make_shared<web::flow_store>(ring_size, body_budget);
    for (const auto& a : chain.addons()) {
        if (auto logger = std::dynamic_pointer_cast<addons::dir_logger>(a)) {
            const auto& writer = *logger->writer();
            store->set_records_dir(writer.directory());
            // What the records leave out stays out of the view, and so do the default
            // credential headers even when the records keep them.
            add_filters(options.shown.filter_request_headers,
                        writer.options().filter_request_headers);
            add_filters(options.shown.filter_response_headers,
                        writer.options().filter_response_headers);
        }
    }
    auto server = start_web_server(store, std::move(options));
    chain.add(std::make_shared<addons::web_feed>(store, body_limit));
    return server;
}

}  // namespace llm_proxy::cli

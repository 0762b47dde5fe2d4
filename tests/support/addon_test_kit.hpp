#pragma once
// Testing an addon without sockets: a synthetic flow, hooks run to completion (awaiting ones
// included), and a whole exchange simulated through a chain the way the engine runs it.
//
//   auto f = test::make_flow("POST", "https://api.openai.com/v1/chat/completions", {}, body);
//   addon_chain chain;  chain.add(my_addon);
//   auto r = test::simulate(chain, f, {200, "OK", 11, {{"Content-Type", "text/event-stream"}}},
//                           {"data: 1\n\n", "data: 2\n\n"});
//   EXPECT_EQ(r.client_body, "data: 2\n\n");

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "llm_proxy/addon.hpp"
#include "llm_proxy/flow.hpp"

namespace llm_proxy::test {

// A flow as the engine builds it after admission: the URL split into the request head.
flow make_flow(std::string method, std::string_view url, header_list headers = {},
               std::string body = {});

// Runs an awaitable (a hook) to completion on a private io_context and returns its result;
// exceptions propagate. A hook that awaits work on another thread completes too.
template <class T>
T run_hook(boost::asio::awaitable<T> a) {
    boost::asio::io_context ioc;
    auto fut = boost::asio::co_spawn(ioc, std::move(a), boost::asio::use_future);
    ioc.run();
    return fut.get();
}

// What a simulated exchange produced.
struct simulated {
    bool answered_locally = false;
    bool failed = false;  // the flow failed (error_kind says why)
    unsigned client_status = 0;
    header_list client_headers;
    std::string client_body;    // after transforms
    std::string upstream_body;  // the request body that would have gone upstream
    bool upstream_called = false;
};

// Runs `f` through the chain as the engine does: on_request_headers, request body (buffered to
// the chain's limit, replacement and transforms applied), on_request, then either the local
// answer or `upstream` with `upstream_body` pieces through on_response_headers, the response
// transforms and on_response_body, then on_response_end (or on_error on an addon failure).
simulated simulate(addon_chain& chain, flow& f, response_head upstream,
                   std::vector<std::string> upstream_body = {});

}  // namespace llm_proxy::test

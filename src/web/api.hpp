#pragma once
// The web view's answers, except the event stream (server.cpp): the page and its assets,
// /api/flows, /api/flows/{id}, /api/flows/{id}/record and /api/har.

#include "http_guard.hpp"
#include "llm_proxy/llm/record_reader.hpp"
#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/web/flow_store.hpp"

namespace llm_proxy::web {

struct api_context {
    const flow_store& store;
    const llm::read_options& read;
    bool live;
    const record::record_options& shown;  // the header filters live flows are shown with
};

// The path of a request target, without the query.
std::string_view target_path(const request& req);

response answer(const api_context& ctx, const request& req);

// The SSE event of one entry: "event: started|updated|finished", its version as id, the
// summary as data.
std::string sse_event(const flow_entry& e);

}  // namespace llm_proxy::web

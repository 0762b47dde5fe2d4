#pragma once
// Reassembling an LLM API call from its bodies, as the providers' SDKs do: the facts the
// request states (model, stream) and, fed the response body incrementally, the answers and
// the usage the provider reported. Bodies are given decoded (no content coding, no chunked
// framing).

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "llm_proxy/llm/call.hpp"
#include "llm_proxy/llm/recognise.hpp"

namespace llm_proxy::llm {

// What the request body says. Invalid JSON (or a body that is not an object) gives the
// defaults; nothing throws.
struct request_facts {
    std::string model;           // "model"; for Gemini the path's model
    bool stream = false;         // "stream": true; Gemini: :streamGenerateContent
    bool include_usage = false;  // OpenAI "stream_options": {"include_usage": true}
};

// Reads the facts the answer's parser needs from the request body (any body: facts it
// cannot read stay at their defaults). A body cut short, as captured up to a limit, gives the
// members that come before the cut.
request_facts read_request(const endpoint& e, std::string_view body);

// The call as known from the request alone: provider, api, request_model, stream.
call call_from_request(const endpoint& e, const request_facts& r);

struct parser_limits {
    // A non-streamed (JSON) body is parsed when complete; one larger than this is not kept
    // and yields no facts (gave_up()).
    std::size_t max_json_body = 8u << 20;
    // One SSE event, or one element of a streamed JSON array; larger ones are skipped.
    std::size_t max_event = 8u << 20;
    // All reassembled text of the call together (content, refusal, reasoning, tool
    // arguments); text beyond it is dropped and the answer marked truncated.
    std::size_t max_text = 4u << 20;
    // Choices and tool calls per answer kept; higher indexes are ignored.
    std::size_t max_answers = 128;
    std::size_t max_tool_calls = 1024;
};

// Reassembles one response body. Feed the decoded body in pieces of any size (they may split
// SSE lines, UTF-8 sequences and JSON anywhere), then call finish() once. The body's form is
// sniffed from its first bytes: a JSON object (non-streamed answer or error), a JSON array
// (Gemini streamed without alt=sse) or server-sent events. For streams only the reassembled
// answer and at most one unfinished event are held, never the raw stream.
class response_parser {
  public:
    response_parser(const endpoint& e, const request_facts& r, parser_limits limits = {});
    ~response_parser();
    response_parser(response_parser&&) noexcept;
    response_parser& operator=(response_parser&&) noexcept;

    void feed(std::string_view bytes);

    // Ends the body; `body_complete` false when the connection ended before the body did.
    // Marks the call incomplete when the body or stream ended before the API said it was
    // done. Further feed() calls are ignored.
    const llm::call& finish(bool body_complete);

    // The call as reassembled so far (usable before finish() for live views).
    const llm::call& result() const;

    // Moves the call out, after finish(); result() is then empty.
    llm::call take();

    // A limit was hit: the JSON body was too large, or an event was skipped.
    bool gave_up() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace llm_proxy::llm

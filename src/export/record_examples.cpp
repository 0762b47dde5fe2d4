#include "llm_proxy/export/record_examples.hpp"

namespace llm_proxy::exporter {

namespace {

example skip(std::string why) {
    example e;
    e.skipped = std::move(why);
    return e;
}

// The request's conversation, or why there is none.
std::optional<conversation> request_conversation(const flow_view& f, std::string& why) {
    if (f.request_body.truncated) {
        why = "request body cut at the capture limit";
        return std::nullopt;
    }
    if (f.request_body.base64 || f.request_body.decode_error) {
        why = "request body is not text";
        return std::nullopt;
    }
    return read_conversation(f.llm->call.api, f.request_body.text, why);
}

}  // namespace

example example_of(const flow_view& f, format fmt) {
    if (!f.llm) {
        return skip("not an LLM call");
    }
    const auto& call = f.llm->call;
    std::string why;
    auto c = request_conversation(f, why);
    if (!c) {
        return skip(why);
    }
    if (call.answers.size() > 1) {
        return skip("several choices (n > 1)");
    }
    if (call.answers.empty()) {
        return skip("no answer");
    }
    append_answer(*c, call.answers.front(), call.provider);
    return fmt == format::anthropic ? to_anthropic(*c) : to_openai_chat(*c);
}

std::string jsonl_line_of(const flow_view& f) {
    call_facts facts;
    facts.time = std::string(f.timestamp);
    facts.record = f.id;
    facts.host = f.host;
    facts.status = f.has_response ? f.status : 0;
    facts.error = std::string(f.error_kind);
    facts.latency_ms = f.duration_ms;
    facts.llm = f.llm ? &*f.llm : nullptr;
    std::optional<conversation> c;
    if (f.llm) {
        std::string why;
        c = request_conversation(f, why);
    }
    return to_jsonl(facts, c ? &*c : nullptr);
}

}  // namespace llm_proxy::exporter

// One provider-neutral line per LLM call (the schema is in docs/export.md). Every key is
// always present, null when unknown, so pandas and DuckDB see one schema whatever the
// provider.

#include "json_text.hpp"
#include "llm_proxy/export/formats.hpp"
#include "llm_proxy/llm/record_json.hpp"

namespace llm_proxy::exporter {

using detail::json_text;

namespace {

void write_part(json_text& j, const part& p) {
    j.begin_object();
    switch (p.k) {
        case part::kind::text:
            j.key("type").string("text").key("text").string(p.text);
            break;
        case part::kind::image:
            j.key("type").string("image").key("url").string(p.url);
            if (!p.detail.empty()) {
                j.key("detail").string(p.detail);
            }
            break;
        case part::kind::reasoning:
            j.key("type").string("reasoning").key("text").string(p.text);
            if (!p.raw.empty()) {
                j.key("raw").string(p.raw);
            }
            break;
        case part::kind::other:
            j.key("type").string(p.type).key("raw").string(p.raw);
            break;
    }
    j.end_object();
}

void write_calls(json_text& j, const std::vector<tool_call>& calls) {
    j.begin_array();
    for (const auto& t : calls) {
        j.begin_object().key("id").string(t.id).key("name").string(t.name);
        j.key("arguments").string(t.arguments).end_object();
    }
    j.end_array();
}

void write_message(json_text& j, const message& m) {
    j.begin_object().key("role").string(to_string(m.role));
    j.key("content").begin_array();
    for (const auto& p : m.content) {
        write_part(j, p);
    }
    j.end_array();
    j.key("tool_calls");
    write_calls(j, m.tool_calls);
    j.key("tool_call_id");
    m.role == role::tool ? j.string(m.tool_call_id) : j.null();
    j.key("name");
    m.name.empty() ? j.null() : j.string(m.name);
    j.key("refusal").optional_string(m.refusal);
    j.key("weight");
    m.weight ? j.number(*m.weight) : j.null();
    if (m.tool_error) {
        j.key("is_error").boolean(true);
    }
    j.end_object();
}

void write_tool(json_text& j, const tool& t) {
    j.begin_object().key("type").string(t.type);
    j.key("name");
    t.type == "function" ? j.string(t.name) : j.null();
    j.key("description").optional_string(t.description);
    j.key("parameters").optional_string(t.parameters);
    j.key("raw");
    t.raw.empty() ? j.null() : j.string(t.raw);
    j.end_object();
}

void write_count(json_text& j, const char* key, const std::optional<std::uint64_t>& v) {
    j.key(key);
    v ? j.number(*v) : j.null();
}

}  // namespace

std::string to_jsonl(const call_facts& f, const conversation* c) {
    std::string out;
    json_text j(out);
    const llm::summary* s = f.llm;
    const llm::call* call = s != nullptr ? &s->call : nullptr;
    j.begin_object();
    j.key("time").string(f.time);
    j.key("record").string(f.record);
    j.key("host").string(f.host);
    j.key("provider");
    call ? j.string(llm::to_string(call->provider)) : j.null();
    j.key("api");
    call ? j.string(llm::to_string(call->api)) : j.null();
    j.key("model");
    call ? j.string(llm::billed_model(*call)) : j.null();
    j.key("request_model");
    call ? j.string(call->request_model) : j.null();
    j.key("stream");
    call ? j.boolean(call->stream) : j.null();
    j.key("status").number(f.status);
    j.key("error");
    if (!f.error.empty()) {
        j.string(f.error);
    } else if (call && call->error) {
        j.string(*call->error);
    } else {
        j.null();
    }
    j.key("incomplete");
    call ? j.boolean(call->incomplete) : j.null();

    j.key("messages");
    if (c != nullptr) {
        j.begin_array();
        for (std::size_t i = 0; i < c->messages.size(); ++i) {
            if (c->answered && i + 1 == c->messages.size()) {
                break;  // the answer is "output"
            }
            write_message(j, c->messages[i]);
        }
        j.end_array();
    } else {
        j.null();
    }
    j.key("tools");
    if (c != nullptr) {
        j.begin_array();
        for (const auto& t : c->tools) {
            write_tool(j, t);
        }
        j.end_array();
    } else {
        j.null();
    }
    j.key("parallel_tool_calls");
    c && c->parallel_tool_calls ? j.boolean(*c->parallel_tool_calls) : j.null();

    const llm::answer* a = call && !call->answers.empty() ? &call->answers.front() : nullptr;
    j.key("output");
    if (a != nullptr) {
        j.begin_object();
        j.key("content").optional_string(a->content);
        j.key("refusal").optional_string(a->refusal);
        j.key("reasoning").optional_string(a->reasoning);
        j.key("tool_calls").begin_array();
        for (const auto& t : a->tool_calls) {
            j.begin_object().key("id").string(t.id).key("type").string(t.type);
            j.key("name").string(t.name).key("arguments").string(t.arguments).end_object();
        }
        j.end_array();
        j.key("truncated").boolean(a->truncated);
        j.end_object();
    } else {
        j.null();
    }
    j.key("choices").number(call ? call->answers.size() : 0);
    j.key("finish_reason");
    a ? j.optional_string(a->finish_reason) : j.null();

    j.key("usage").begin_object();
    llm::usage none;
    const llm::usage& u = call ? call->usage : none;
    write_count(j, "input_tokens", u.input_tokens);
    write_count(j, "output_tokens", u.output_tokens);
    write_count(j, "cache_read_tokens", u.cache_read_tokens);
    write_count(j, "cache_write_tokens", u.cache_write_tokens);
    write_count(j, "reasoning_tokens", u.reasoning_tokens);
    j.end_object();
    j.key("cost_usd");
    if (s && s->cost_usd) {
        j.raw(s->cost_usd->total.to_string());
    } else {
        j.null();
    }
    j.key("latency_ms");
    f.latency_ms ? j.number(*f.latency_ms) : j.null();
    j.key("first_token_ms");
    s && s->first_token_ms ? j.number(*s->first_token_ms) : j.null();
    j.end_object();
    return out;
}

}  // namespace llm_proxy::exporter

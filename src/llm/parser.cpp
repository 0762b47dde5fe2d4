#include "llm_proxy/llm/parser.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "json_access.hpp"
#include "llm_proxy/llm/sse.hpp"

namespace llm_proxy::llm {

using namespace json_access;

namespace {

std::optional<std::uint64_t> sum(std::initializer_list<std::optional<std::uint64_t>> parts) {
    std::optional<std::uint64_t> total;
    for (const auto& p : parts) {
        if (p) {
            total = total.value_or(0) + *p;
        }
    }
    return total;
}

// The message of an API error object: {"error": {"message": ...}} (OpenAI, Anthropic,
// Gemini), {"error": "text"}, or a Responses stream's {"type": "error", "message": ...}.
std::optional<std::string> error_message(const json& j) {
    if (auto e = member(j, "error")) {
        if (auto text = as_string(*e)) {
            return std::string(*text);
        }
        if (e->is_object()) {
            if (auto m = string_member(*e, "message")) {
                return std::string(*m);
            }
            return dump(*e);
        }
    }
    if (auto type = string_member(j, "type"); type && *type == "error") {
        if (auto m = string_member(j, "message")) {
            return std::string(*m);
        }
        return dump(j);
    }
    return std::nullopt;
}

usage openai_chat_usage(const json& u) {
    usage out;
    out.input_tokens = count_member(u, "prompt_tokens");
    out.output_tokens = count_member(u, "completion_tokens");
    if (auto d = object_member(u, "prompt_tokens_details")) {
        out.cache_read_tokens = count_member(*d, "cached_tokens");
        out.cache_write_tokens = count_member(*d, "cache_write_tokens");
        out.input_audio_tokens = count_member(*d, "audio_tokens");
    }
    if (auto d = object_member(u, "completion_tokens_details")) {
        out.reasoning_tokens = count_member(*d, "reasoning_tokens");
        out.output_audio_tokens = count_member(*d, "audio_tokens");
    }
    return out;
}

usage openai_responses_usage(const json& u) {
    usage out;
    out.input_tokens = count_member(u, "input_tokens");
    out.output_tokens = count_member(u, "output_tokens");
    if (auto d = object_member(u, "input_tokens_details")) {
        out.cache_read_tokens = count_member(*d, "cached_tokens");
        out.cache_write_tokens = count_member(*d, "cache_write_tokens");
    }
    if (auto d = object_member(u, "output_tokens_details")) {
        out.reasoning_tokens = count_member(*d, "reasoning_tokens");
    }
    return out;
}

std::optional<std::uint64_t> modality_count(const json& u, std::string_view key,
                                            std::string_view modality) {
    auto details = array_member(u, key);
    if (!details) {
        return std::nullopt;
    }
    std::optional<std::uint64_t> total;
    for (const auto& d : *details) {
        if (auto m = string_member(d, "modality"); m && *m == modality) {
            total = sum({total, count_member(d, "tokenCount")});
        }
    }
    return total;
}

// Gemini's usageMetadata as Google bills it: tool-use prompt tokens are input, thinking
// tokens are output.
usage gemini_usage(const json& u) {
    usage out;
    out.input_tokens =
        sum({count_member(u, "promptTokenCount"), count_member(u, "toolUsePromptTokenCount")});
    auto thoughts = count_member(u, "thoughtsTokenCount");
    out.output_tokens = sum({count_member(u, "candidatesTokenCount"), thoughts});
    out.reasoning_tokens = thoughts;
    out.cache_read_tokens = count_member(u, "cachedContentTokenCount");
    out.input_audio_tokens = modality_count(u, "promptTokensDetails", "AUDIO");
    out.output_audio_tokens = modality_count(u, "candidatesTokensDetails", "AUDIO");
    return out;
}

}  // namespace

call call_from_request(const endpoint& e, const request_facts& r) {
    call c;
    c.provider = e.provider;
    c.api = e.api;
    c.request_model = r.model;
    c.stream = r.stream;
    return c;
}

// ---------------------------------------------------------------------------------------------
// Response

struct response_parser::impl {
    enum class form { sniffing, json_body, json_array, sse };

    // One Anthropic content block, by its index.
    struct block {
        enum class kind { none, text, thinking, tool, other };
        kind k = kind::none;
        std::string initial_input;  // a tool block's input as content_block_start gave it
    };

    // Anthropic's usage fields as last reported (message_delta repeats them cumulatively).
    struct anthropic_usage {
        std::optional<std::uint64_t> input, cache_creation, cache_read, output, write_1h, thinking;
    };

    impl(const endpoint& e, const request_facts& r, parser_limits l)
        : ep(e),
          limits(l),
          c(call_from_request(e, r)),
          sse([this](std::string_view, std::string_view data) { event(data); }, l.max_event) {}

    endpoint ep;
    parser_limits limits;
    llm::call c;
    form f = form::sniffing;
    std::string sniffed;  // leading whitespace / BOM before the form is known
    bool finished = false;
    bool gave_up = false;
    bool done = false;  // the API said the answer is complete

    // json_body
    std::string body;
    bool body_dropped = false;

    // json_array
    std::string element;
    int depth = 0;
    bool in_element = false;
    bool in_string = false;
    bool escaped = false;
    bool element_dropped = false;
    bool array_closed = false;

    sse_decoder sse;

    std::size_t text_bytes = 0;
    // Per answer: (the API's tool index, position in tool_calls).
    std::vector<std::vector<std::pair<std::size_t, std::size_t>>> tool_index;
    std::vector<block> blocks;
    anthropic_usage au;

    // --- building the answer ---

    answer* answer_at(std::size_t i) {
        if (i >= limits.max_answers) {
            return nullptr;
        }
        if (i >= c.answers.size()) {
            c.answers.resize(i + 1);
            tool_index.resize(i + 1);
        }
        return &c.answers[i];
    }

    tool_call* tool_at(std::size_t answer_i, std::size_t api_index, bool create) {
        answer* a = answer_at(answer_i);
        if (!a) {
            return nullptr;
        }
        auto& index = tool_index[answer_i];
        for (auto it = index.rbegin(); it != index.rend(); ++it) {
            if (it->first == api_index) {
                return &a->tool_calls[it->second];
            }
        }
        if (!create || a->tool_calls.size() >= limits.max_tool_calls) {
            return nullptr;
        }
        index.emplace_back(api_index, a->tool_calls.size());
        return &a->tool_calls.emplace_back();
    }

    void append(answer& a, std::string& field, std::string_view piece) {
        if (piece.empty()) {
            return;
        }
        std::size_t room = limits.max_text > text_bytes ? limits.max_text - text_bytes : 0;
        if (piece.size() > room) {
            std::size_t cut = room;
            while (cut > 0 && (static_cast<unsigned char>(piece[cut]) & 0xC0) == 0x80) {
                --cut;  // never cut inside a UTF-8 sequence
            }
            piece = piece.substr(0, cut);
            a.truncated = true;
        }
        field.append(piece);
        text_bytes += piece.size();
    }

    void append(answer& a, std::optional<std::string>& field, std::string_view piece) {
        if (!field) {
            field.emplace();
        }
        append(a, *field, piece);
    }

    void assign(answer& a, std::string& field, std::string_view value) {
        text_bytes -= field.size();
        field.clear();
        append(a, field, value);
    }

    void take_id_and_model(const json& j, std::string_view id_key, std::string_view model_key) {
        if (auto id = string_member(j, id_key); id && !id->empty()) {
            c.response_id.assign(*id);
        }
        if (auto model = string_member(j, model_key); model && !model->empty()) {
            c.response_model.assign(*model);
        }
    }

    // --- OpenAI chat completions and legacy completions ---

    void chat_tool_calls(std::size_t answer_i, const json_array& calls) {
        std::size_t position = 0;
        for (const auto& tc : calls) {
            std::size_t api_index = index_member(tc, "index").value_or(position++);
            tool_call* t = tool_at(answer_i, api_index, true);
            if (!t) {
                continue;
            }
            answer& a = c.answers[answer_i];
            if (auto id = string_member(tc, "id"); id && t->id.empty()) {
                t->id.assign(*id);
            }
            if (auto type = string_member(tc, "type")) {
                t->type.assign(*type);
            }
            if (auto fn = object_member(tc, "function")) {
                if (auto name = string_member(*fn, "name"); name && t->name.empty()) {
                    t->name.assign(*name);
                }
                if (auto args = member(*fn, "arguments")) {
                    if (auto text = as_string(*args)) {
                        append(a, t->arguments, *text);
                    } else if (!args->is_null()) {
                        append(a, t->arguments, dump(*args));
                    }
                }
            }
        }
    }

    // The legacy function_call, as a tool call of its own.
    void chat_function_call(std::size_t answer_i, const json& fn) {
        static constexpr std::size_t legacy = static_cast<std::size_t>(-1);
        tool_call* t = tool_at(answer_i, legacy, true);
        if (!t) {
            return;
        }
        if (auto name = string_member(fn, "name"); name && t->name.empty()) {
            t->name.assign(*name);
        }
        if (auto args = string_member(fn, "arguments")) {
            append(c.answers[answer_i], t->arguments, *args);
        }
    }

    // A message (non-streamed) or delta (streamed): the fields are the same, strings append.
    void chat_message(std::size_t answer_i, const json& m) {
        answer& a = c.answers[answer_i];
        if (auto role = string_member(m, "role")) {
            a.role.assign(*role);
        }
        if (auto content = string_member(m, "content")) {
            append(a, a.content, *content);
        }
        if (auto refusal = string_member(m, "refusal")) {
            append(a, a.refusal, *refusal);
        }
        // OpenAI-compatible servers (DeepSeek, vLLM, OpenRouter...) stream reasoning here.
        for (std::string_view key : {"reasoning_content", "reasoning"}) {
            if (auto reasoning = string_member(m, key)) {
                append(a, a.reasoning, *reasoning);
            }
        }
        if (auto calls = array_member(m, "tool_calls")) {
            chat_tool_calls(answer_i, *calls);
        }
        if (auto fn = object_member(m, "function_call")) {
            chat_function_call(answer_i, *fn);
        }
    }

    void chat(const json& j, bool streamed) {
        take_id_and_model(j, "id", "model");
        if (auto u = object_member(j, "usage")) {
            c.usage = openai_chat_usage(*u);
        }
        auto choices = array_member(j, "choices");
        if (!choices) {
            return;
        }
        std::size_t position = 0;
        for (const auto& choice : *choices) {
            std::size_t i = index_member(choice, "index").value_or(position);
            ++position;
            answer* a = answer_at(i);
            if (!a) {
                continue;
            }
            if (auto text = string_member(choice, "text")) {  // legacy completions
                append(*a, a->content, *text);
            }
            if (auto m = object_member(choice, streamed ? "delta" : "message")) {
                chat_message(i, *m);
            }
            if (auto reason = string_member(choice, "finish_reason")) {
                a->finish_reason = std::string(*reason);
            }
        }
    }

    // --- OpenAI Responses ---

    void responses_object(const json& r, bool final) {
        take_id_and_model(r, "id", "model");
        if (auto u = object_member(r, "usage")) {
            c.usage = openai_responses_usage(*u);
        }
        if (final) {
            if (auto status = string_member(r, "status")) {
                if (answer* a = answer_at(0)) {
                    a->finish_reason = std::string(*status);
                }
            }
            if (auto e = object_member(r, "error")) {
                if (auto m = string_member(*e, "message")) {
                    c.error = std::string(*m);
                }
            }
        }
    }

    void responses_function_call(std::size_t output_index, const json& item, bool done_item) {
        tool_call* t = tool_at(0, output_index, true);
        if (!t) {
            return;
        }
        if (auto id = string_member(item, "call_id"); id && t->id.empty()) {
            t->id.assign(*id);
        }
        if (auto name = string_member(item, "name"); name && t->name.empty()) {
            t->name.assign(*name);
        }
        if (auto args = string_member(item, "arguments"); args && !args->empty()) {
            if (done_item) {
                if (*args != t->arguments) {
                    assign(c.answers[0], t->arguments, *args);
                }
            } else {
                append(c.answers[0], t->arguments, *args);
            }
        }
    }

    void responses_document(const json& r) {
        responses_object(r, true);
        auto output = array_member(r, "output");
        if (!output) {
            return;
        }
        answer* a = answer_at(0);
        if (!a) {
            return;
        }
        std::size_t output_index = 0;
        for (const auto& item : *output) {
            auto type = string_member(item, "type").value_or("");
            if (type == "message") {
                if (auto parts = array_member(item, "content")) {
                    for (const auto& part : *parts) {
                        auto part_type = string_member(part, "type").value_or("");
                        if (part_type == "output_text") {
                            append(*a, a->content, string_member(part, "text").value_or(""));
                        } else if (part_type == "refusal") {
                            append(*a, a->refusal, string_member(part, "refusal").value_or(""));
                        }
                    }
                }
            } else if (type == "function_call") {
                responses_function_call(output_index, item, true);
            } else if (type == "reasoning") {
                if (auto summary = array_member(item, "summary")) {
                    for (const auto& s : *summary) {
                        append(*a, a->reasoning, string_member(s, "text").value_or(""));
                    }
                }
            }
            ++output_index;
        }
    }

    void responses_event(const json& e) {
        auto type = string_member(e, "type").value_or("");
        answer* a = answer_at(0);
        if (!a) {
            return;
        }
        if (type == "response.output_text.delta") {
            append(*a, a->content, string_member(e, "delta").value_or(""));
        } else if (type == "response.function_call_arguments.delta") {
            if (auto i = index_member(e, "output_index")) {
                if (tool_call* t = tool_at(0, *i, true)) {
                    append(c.answers[0], t->arguments, string_member(e, "delta").value_or(""));
                }
            }
        } else if (type == "response.reasoning_summary_text.delta") {
            append(*a, a->reasoning, string_member(e, "delta").value_or(""));
        } else if (type == "response.refusal.delta") {
            append(*a, a->refusal, string_member(e, "delta").value_or(""));
        } else if (type == "response.output_item.added" || type == "response.output_item.done") {
            auto item = object_member(e, "item");
            auto i = index_member(e, "output_index");
            if (item && i && string_member(*item, "type").value_or("") == "function_call") {
                responses_function_call(*i, *item, type == "response.output_item.done");
            }
        } else if (type == "response.function_call_arguments.done") {
            auto i = index_member(e, "output_index");
            auto args = string_member(e, "arguments");
            if (i && args) {
                if (tool_call* t = tool_at(0, *i, true); t && *args != t->arguments) {
                    assign(c.answers[0], t->arguments, *args);
                }
            }
        } else if (type == "response.content_part.added") {
            if (auto part = object_member(e, "part")) {
                auto part_type = string_member(*part, "type").value_or("");
                if (part_type == "output_text") {
                    append(*a, a->content, string_member(*part, "text").value_or(""));
                } else if (part_type == "refusal") {
                    append(*a, a->refusal, string_member(*part, "refusal").value_or(""));
                }
            }
        } else if (type == "response.created" || type == "response.in_progress" ||
                   type == "response.queued") {
            if (auto r = object_member(e, "response")) {
                responses_object(*r, false);
            }
        } else if (type == "response.completed" || type == "response.incomplete" ||
                   type == "response.failed" || type == "response.cancelled") {
            if (auto r = object_member(e, "response")) {
                responses_object(*r, true);
            }
            done = true;
        }
    }

    // --- Anthropic messages ---

    void anthropic_usage_update(const json& u) {
        auto take = [&](std::optional<std::uint64_t>& field, std::string_view key) {
            if (auto v = count_member(u, key)) {
                field = v;
            }
        };
        take(au.input, "input_tokens");
        take(au.cache_creation, "cache_creation_input_tokens");
        take(au.cache_read, "cache_read_input_tokens");
        take(au.output, "output_tokens");
        if (auto cc = object_member(u, "cache_creation")) {
            if (auto v = count_member(*cc, "ephemeral_1h_input_tokens")) {
                au.write_1h = v;
            }
        }
        if (auto d = object_member(u, "output_tokens_details")) {
            if (auto v = count_member(*d, "thinking_tokens")) {
                au.thinking = v;
            }
        }
        c.usage.input_tokens = sum({au.input, au.cache_creation, au.cache_read});
        c.usage.output_tokens = au.output;
        c.usage.cache_read_tokens = au.cache_read;
        c.usage.cache_write_tokens = au.cache_creation;
        c.usage.cache_write_1h_tokens = au.write_1h;
        c.usage.reasoning_tokens = au.thinking;
    }

    static bool anthropic_tool_block(std::string_view type) {
        return type == "tool_use" || type == "server_tool_use" || type == "mcp_tool_use";
    }

    // Client tools are "function" calls, as in OpenAI's APIs; server-side tools keep their
    // block type.
    static std::string_view anthropic_tool_type(std::string_view type) {
        return type == "tool_use" ? std::string_view("function") : type;
    }

    void anthropic_document(const json& m) {
        take_id_and_model(m, "id", "model");
        if (auto u = object_member(m, "usage")) {
            anthropic_usage_update(*u);
        }
        answer* a = answer_at(0);
        if (!a) {
            return;
        }
        if (auto content = array_member(m, "content")) {
            std::size_t index = 0;
            for (const auto& b : *content) {
                auto type = string_member(b, "type").value_or("");
                if (type == "text") {
                    append(*a, a->content, string_member(b, "text").value_or(""));
                } else if (type == "thinking") {
                    append(*a, a->reasoning, string_member(b, "thinking").value_or(""));
                } else if (anthropic_tool_block(type)) {
                    if (tool_call* t = tool_at(0, index, true)) {
                        t->id.assign(string_member(b, "id").value_or(""));
                        t->name.assign(string_member(b, "name").value_or(""));
                        t->type.assign(anthropic_tool_type(type));
                        if (auto input = member(b, "input")) {
                            append(c.answers[0], t->arguments, dump(*input));
                        }
                    }
                }
                ++index;
            }
        }
        if (auto reason = string_member(m, "stop_reason")) {
            c.answers[0].finish_reason = std::string(*reason);
        }
    }

    block* block_at(const json& e) {
        auto i = index_member(e, "index");
        if (!i || *i >= 4096) {
            return nullptr;
        }
        if (*i >= blocks.size()) {
            blocks.resize(*i + 1);
        }
        return &blocks[*i];
    }

    void anthropic_event(const json& e) {
        auto type = string_member(e, "type").value_or("");
        answer* a = answer_at(0);
        if (!a) {
            return;
        }
        if (type == "content_block_delta") {
            auto d = object_member(e, "delta");
            block* b = block_at(e);
            if (!d || !b) {
                return;
            }
            auto delta_type = string_member(*d, "type").value_or("");
            if (delta_type == "text_delta") {
                append(*a, a->content, string_member(*d, "text").value_or(""));
            } else if (delta_type == "thinking_delta") {
                append(*a, a->reasoning, string_member(*d, "thinking").value_or(""));
            } else if (delta_type == "input_json_delta" && b->k == block::kind::tool) {
                if (tool_call* t = tool_at(0, static_cast<std::size_t>(b - blocks.data()), false)) {
                    append(*a, t->arguments, string_member(*d, "partial_json").value_or(""));
                }
            }
            // signature_delta, citations_delta, compaction_delta: no answer text.
        } else if (type == "content_block_start") {
            auto cb = object_member(e, "content_block");
            block* b = block_at(e);
            if (!cb || !b) {
                return;
            }
            auto block_type = string_member(*cb, "type").value_or("");
            if (block_type == "text") {
                b->k = block::kind::text;
                append(*a, a->content, string_member(*cb, "text").value_or(""));
            } else if (block_type == "thinking") {
                b->k = block::kind::thinking;
                append(*a, a->reasoning, string_member(*cb, "thinking").value_or(""));
            } else if (anthropic_tool_block(block_type)) {
                b->k = block::kind::tool;
                auto index = static_cast<std::size_t>(b - blocks.data());
                if (tool_call* t = tool_at(0, index, true)) {
                    t->id.assign(string_member(*cb, "id").value_or(""));
                    t->name.assign(string_member(*cb, "name").value_or(""));
                    t->type.assign(anthropic_tool_type(block_type));
                    if (auto input = member(*cb, "input")) {
                        b->initial_input = dump(*input);
                    }
                }
            } else {
                b->k = block::kind::other;
            }
        } else if (type == "content_block_stop") {
            block* b = block_at(e);
            if (b && b->k == block::kind::tool) {
                auto index = static_cast<std::size_t>(b - blocks.data());
                // No input_json_delta: the input is the one the block started with.
                if (tool_call* t = tool_at(0, index, false); t && t->arguments.empty()) {
                    append(*a, t->arguments, b->initial_input);
                }
                std::string().swap(b->initial_input);
            }
        } else if (type == "message_delta") {
            if (auto d = object_member(e, "delta")) {
                if (auto reason = string_member(*d, "stop_reason")) {
                    a->finish_reason = std::string(*reason);
                }
            }
            if (auto u = object_member(e, "usage")) {
                anthropic_usage_update(*u);
            }
        } else if (type == "message_start") {
            if (auto m = object_member(e, "message")) {
                take_id_and_model(*m, "id", "model");
                if (auto u = object_member(*m, "usage")) {
                    anthropic_usage_update(*u);
                }
            }
        } else if (type == "message_stop") {
            done = true;
        }
    }

    // --- Gemini generateContent (a streamed chunk has the same form as the whole answer) ---

    void gemini(const json& j) {
        take_id_and_model(j, "responseId", "modelVersion");
        if (auto u = object_member(j, "usageMetadata")) {
            c.usage = gemini_usage(*u);
        }
        auto candidates = array_member(j, "candidates");
        if (!candidates) {
            // A blocked prompt: no candidates, the reason in promptFeedback.
            if (auto feedback = object_member(j, "promptFeedback")) {
                if (auto reason = string_member(*feedback, "blockReason")) {
                    if (answer* a = answer_at(0)) {
                        a->finish_reason = std::string(*reason);
                    }
                    done = true;
                }
            }
            return;
        }
        std::size_t position = 0;
        for (const auto& cand : *candidates) {
            std::size_t i = index_member(cand, "index").value_or(position);
            ++position;
            answer* a = answer_at(i);
            if (!a) {
                continue;
            }
            auto content = object_member(cand, "content");
            auto parts = content ? array_member(*content, "parts") : std::nullopt;
            if (parts) {
                for (const auto& part : *parts) {
                    if (auto text = string_member(part, "text")) {
                        append(*a, true_member(part, "thought") ? a->reasoning : a->content, *text);
                    }
                    if (auto fc = object_member(part, "functionCall")) {
                        std::size_t api_index = a->tool_calls.size();
                        if (tool_call* t = tool_at(i, api_index, true)) {
                            t->id.assign(string_member(*fc, "id").value_or(""));
                            t->name.assign(string_member(*fc, "name").value_or(""));
                            if (auto args = member(*fc, "args")) {
                                append(*a, t->arguments, dump(*args));
                            }
                        }
                    }
                }
            }
            if (auto reason = string_member(cand, "finishReason")) {
                a->finish_reason = std::string(*reason);
                done = true;
            }
        }
    }

    // --- dispatch ---

    // A whole answer (streamed: false) or one streamed chunk: the API's error, else its parts.
    void dispatch(const json& j, bool streamed) {
        if (!j.is_object()) {
            return;
        }
        if (auto message = error_message(j)) {
            c.error = std::move(message);
            done = true;
            return;
        }
        switch (c.api) {
            case api::chat_completions:
            case api::completions:
            case api::embeddings:
                chat(j, streamed);
                break;
            case api::responses:
                streamed ? responses_event(j) : responses_document(j);
                break;
            case api::messages:
                streamed ? anthropic_event(j) : anthropic_document(j);
                break;
            case api::generate_content:
                gemini(j);
                break;
        }
    }

    void document(const json& j) {
        dispatch(j, false);
        done = done || j.is_object();
    }

    // One streamed chunk: an SSE event's data or an element of a streamed JSON array.
    void event(std::string_view data) {
        if (data == "[DONE]") {
            done = true;
            return;
        }
        auto& parser = thread_parser::get();
        auto parsed = parser.parse(data);
        if (parsed) {
            dispatch(*parsed, true);
        }
        parser.trim();
    }

    // A streamed JSON array ("[{...},\r\n{...}]"): each top-level element is one chunk.
    void array_bytes(std::string_view bytes) {
        std::size_t start = 0;  // where the current element's bytes begin in `bytes`
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            char ch = bytes[i];
            if (!in_element) {
                if (array_closed) {
                    continue;
                }
                if (depth == 0) {
                    if (ch == '[') {
                        depth = 1;
                    }
                } else if (ch == ']') {
                    depth = 0;
                    array_closed = true;
                } else if (ch == '{') {
                    in_element = true;
                    depth = 2;
                    start = i;
                }
                continue;
            }
            if (in_string) {
                if (escaped) {
                    escaped = false;
                } else if (ch == '\\') {
                    escaped = true;
                } else if (ch == '"') {
                    in_string = false;
                }
                continue;
            }
            if (ch == '"') {
                in_string = true;
            } else if (ch == '{' || ch == '[') {
                ++depth;
            } else if ((ch == '}' || ch == ']') && --depth == 1) {
                keep_element(bytes.substr(start, i + 1 - start));
                in_element = false;
                if (!element_dropped) {
                    event(element);
                }
                element_dropped = false;
                element.clear();
                if (element.capacity() > (64u << 10)) {
                    std::string().swap(element);
                }
            }
        }
        if (in_element) {
            keep_element(bytes.substr(start));
        }
    }

    void keep_element(std::string_view piece) {
        if (element_dropped) {
            return;
        }
        if (element.size() + piece.size() > limits.max_event) {
            element_dropped = true;
            gave_up = true;
            std::string().swap(element);
            return;
        }
        element.append(piece);
    }

    void route(std::string_view bytes) {
        switch (f) {
            case form::json_body:
                if (body_dropped) {
                    return;
                }
                if (body.size() + bytes.size() > limits.max_json_body) {
                    body_dropped = true;
                    gave_up = true;
                    std::string().swap(body);
                    return;
                }
                if (std::size_t need = body.size() + bytes.size() + simdjson::SIMDJSON_PADDING;
                    body.capacity() < need) {
                    // Room for the parser's padding from the start: growing the string for
                    // it at the end would copy the body into a block twice its size.
                    body.reserve(std::max(need, 2 * body.capacity()));
                }
                body.append(bytes);
                return;
            case form::json_array:
                array_bytes(bytes);
                return;
            case form::sse:
                sse.feed(bytes);
                return;
            case form::sniffing:
                return;
        }
    }

    void feed(std::string_view bytes) {
        if (finished) {
            return;
        }
        if (f == form::sniffing) {
            std::size_t i = 0;
            for (; i < bytes.size(); ++i) {
                auto ch = static_cast<unsigned char>(bytes[i]);
                if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == 0xEF ||
                    ch == 0xBB || ch == 0xBF) {
                    continue;
                }
                f = ch == '{' ? form::json_body : ch == '[' ? form::json_array : form::sse;
                break;
            }
            if (f == form::sniffing) {
                if (sniffed.size() + bytes.size() <= 4096) {
                    sniffed.append(bytes);
                    return;
                }
                f = form::sse;
            }
            std::string held = std::move(sniffed);
            sniffed.clear();
            route(held);
        }
        route(bytes);
    }

    const llm::call& finish(bool body_complete) {
        if (finished) {
            return c;
        }
        finished = true;
        switch (f) {
            case form::sniffing:
                c.incomplete = true;  // no body
                break;
            case form::json_body: {
                bool parsed = false;
                if (!body_dropped) {
                    auto& parser = thread_parser::get();
                    if (auto j = parser.parse_in_place(body)) {
                        document(*j);
                        parsed = true;
                    }
                    parser.trim();
                    std::string().swap(body);
                }
                c.incomplete = !body_complete || (!parsed && !body_dropped);
                break;
            }
            case form::json_array:
                c.incomplete = !body_complete || !array_closed;
                break;
            case form::sse:
                c.incomplete = !body_complete || !done;
                break;
        }
        return c;
    }
};

response_parser::response_parser(const endpoint& e, const request_facts& r, parser_limits limits)
    : impl_(std::make_unique<impl>(e, r, limits)) {}
response_parser::~response_parser() = default;
response_parser::response_parser(response_parser&&) noexcept = default;
response_parser& response_parser::operator=(response_parser&&) noexcept = default;

void response_parser::feed(std::string_view bytes) {
    impl_->feed(bytes);
}

const llm::call& response_parser::finish(bool body_complete) {
    return impl_->finish(body_complete);
}

const llm::call& response_parser::result() const {
    return impl_->c;
}

llm::call response_parser::take() {
    return std::move(impl_->c);
}

bool response_parser::gave_up() const {
    return impl_->gave_up || impl_->sse.dropped_events() > 0;
}

}  // namespace llm_proxy::llm

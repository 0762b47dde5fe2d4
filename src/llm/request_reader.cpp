// read_request: the facts of an LLM request body that its answer's parser needs.

#include "json_access.hpp"
#include "llm_proxy/llm/parser.hpp"
#include "llm_proxy/util/json_cursor.hpp"

namespace llm_proxy::llm {

using namespace json_access;

namespace {

void read_bool(const json& j, std::string_view key, bool& out) {
    auto m = member(j, key);
    if (m && m->is_bool()) {
        out = m->get_bool().value_unsafe();
    }
}

// Hands each complete top-level member of an object whose text may be cut short (a body
// captured up to a limit) to `fn` as its key and raw value text; stops at the cut or at
// anything that is not JSON.
template <class Fn>
void each_member(std::string_view text, Fn&& fn) {
    json_cursor c(text);
    if (!c.next('{')) {
        return;
    }
    std::string_view key;
    while (c.key(key)) {
        c.space();
        std::size_t value_start = c.pos();
        if (!c.value()) {
            return;
        }
        fn(key, text.substr(value_start, c.pos() - value_start));
        if (!c.next(',')) {
            return;
        }
    }
}

// The members that come before the cut of a body that is not whole JSON (e.g. a request over
// the capture limit, whose "model" often comes first).
void read_prefix(std::string_view body, request_facts& facts) {
    auto& parser = thread_parser::get();
    each_member(body, [&](std::string_view key, std::string_view value) {
        if (key == "model") {
            if (auto v = parser.parse(value)) {
                if (auto text = as_string(*v)) {
                    facts.model.assign(*text);
                }
            }
        } else if (key == "stream") {
            facts.stream = value == "true";
        } else if (key == "stream_options") {
            if (auto v = parser.parse(value)) {
                read_bool(*v, "include_usage", facts.include_usage);
            }
        }
    });
}

}  // namespace

// Picks "model", "stream" and "stream_options.include_usage" from the top-level object.
request_facts read_request(const endpoint& e, std::string_view body) {
    auto& parser = thread_parser::get();
    request_facts facts;
    if (auto root = parser.parse(body)) {
        if (root->is_object()) {
            if (auto model = string_member(*root, "model")) {
                facts.model.assign(*model);
            }
            read_bool(*root, "stream", facts.stream);
            if (auto options = object_member(*root, "stream_options")) {
                read_bool(*options, "include_usage", facts.include_usage);
            }
        }
    } else {
        read_prefix(body, facts);
    }
    parser.trim();
    if (e.provider == provider::google) {
        facts.model = e.path_model;
        facts.stream = e.path_stream;
        facts.include_usage = false;
    }
    return facts;
}

}  // namespace llm_proxy::llm

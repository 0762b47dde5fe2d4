#include "llm_proxy/flow.hpp"

#include <algorithm>

#include "llm_proxy/llm/summary.hpp"

namespace llm_proxy {

std::optional<std::string_view> find_header(const header_list& headers, std::string_view name) {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) {
            return std::string_view(v);
        }
    }
    return std::nullopt;
}

bool is_event_stream(const header_list& headers) {
    auto type = find_header(headers, "Content-Type");
    return type && istarts_with(trim_space(*type), "text/event-stream");
}

void captured_body::append(std::string_view chunk, std::size_t limit) {
    total += chunk.size();
    if (data.size() < limit) {
        std::size_t room = limit - data.size();
        data.append(chunk.substr(0, room));
    }
    truncated = total > data.size();
}

std::string request_head::authority() const {
    std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    bool default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
    if (!default_port && port != 0) {
        out += ":" + std::to_string(port);
    }
    return out;
}

std::string request_head::url() const {
    return scheme + "://" + authority() + target;
}

void flow::reply(response_head head, std::string body, std::vector<std::size_t> pieces) {
    response = std::move(head);
    local_response_body = std::move(body);
    local_response_pieces = std::move(pieces);
    answered_locally = true;
}

void flow::reply(unsigned status, header_list headers, std::string body) {
    reply(response_head{status, {}, 11, std::move(headers)}, std::move(body));
}

namespace {
void note_change(std::map<std::string, std::string>& tags, const char* tag, std::string_view by) {
    auto& v = tags[tag];
    if (!v.empty()) {
        v += ",";
    }
    v += by;
}
}  // namespace

void flow::replace_request_body(std::string body, std::string_view by) {
    request_body_replacement = std::move(body);
    note_change(tags, "request_body_changed_by", by);
}

void flow::transform_request_body(std::shared_ptr<body_transform> t, std::string_view by) {
    request_transforms.push_back(std::move(t));
    note_change(tags, "request_body_changed_by", by);
}

void flow::transform_response_body(std::shared_ptr<body_transform> t, std::string_view by) {
    response_transforms.push_back(std::move(t));
    note_change(tags, "response_body_changed_by", by);
}

void* flow::find_state(const void* slot) const {
    for (const auto& [key, value] : state_) {
        if (key == slot) {
            return value.get();
        }
    }
    return nullptr;
}

void flow::put_state(const void* slot, std::shared_ptr<void> value) {
    for (auto& [key, v] : state_) {
        if (key == slot) {
            v = std::move(value);
            return;
        }
    }
    state_.emplace_back(slot, std::move(value));
}

double flow::duration_ms() const {
    return std::chrono::duration<double, std::milli>(duration).count();
}

namespace {

std::size_t fields_bytes(const header_list& headers) {
    std::size_t n = headers.capacity() * sizeof(header_list::value_type);
    for (const auto& [name, value] : headers) {
        n += name.capacity() + value.capacity();
    }
    return n;
}

}  // namespace

std::size_t flow_footprint(const flow& f) {
    std::size_t n = 2048 + f.request_body.data.capacity() + f.response_body.data.capacity() +
                    f.local_response_body.capacity() + f.request.target.capacity() +
                    f.error.capacity() + fields_bytes(f.request.headers);
    if (f.response) {
        n += fields_bytes(f.response->headers);
    }
    for (const auto& [k, v] : f.tags) {
        n += 64 + k.capacity() + v.capacity();
    }
    if (f.rejected) {
        n += f.rejected->raw_head.capacity() + f.rejected->target.capacity();
    }
    if (f.llm) {
        n += 1024;
        for (const auto& a : f.llm->call.answers) {
            n += 256 + a.content.value_or("").capacity() + a.refusal.value_or("").capacity() +
                 a.reasoning.value_or("").capacity();
            for (const auto& t : a.tool_calls) {
                n += 128 + t.arguments.capacity() + t.name.capacity() + t.id.capacity();
            }
        }
    }
    return n;
}

}  // namespace llm_proxy

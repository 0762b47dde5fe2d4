#include "llm_proxy/llm/sse.hpp"

#include <utility>

namespace llm_proxy::llm {

namespace {
constexpr std::string_view bom = "\xEF\xBB\xBF";
constexpr std::size_t keep_capacity = 64 * 1024;  // larger buffers are released after use
}  // namespace

sse_decoder::sse_decoder(handler on_event, std::size_t max_event_bytes)
    : on_event_(std::move(on_event)), max_(max_event_bytes) {}

void sse_decoder::feed(std::string_view bytes) {
    // A BOM may arrive split: hold its first bytes in line_ until it is known.
    while (!bom_checked_ && !bytes.empty()) {
        line_.push_back(bytes.front());
        bytes.remove_prefix(1);
        if (bom.substr(0, line_.size()) != line_) {
            bom_checked_ = true;
            std::string held = std::move(line_);
            line_.clear();
            feed(held);
        } else if (line_.size() == bom.size()) {
            bom_checked_ = true;
            line_.clear();
        }
    }
    while (!bytes.empty()) {
        if (skip_lf_) {
            skip_lf_ = false;
            if (bytes.front() == '\n') {
                bytes.remove_prefix(1);
                continue;
            }
        }
        auto end = bytes.find_first_of("\r\n");
        if (end == std::string_view::npos) {
            if (!line_too_long_) {
                if (line_.size() + bytes.size() > max_) {
                    line_too_long_ = true;
                    std::string().swap(line_);
                } else {
                    line_.append(bytes);
                }
            }
            return;
        }
        auto l = bytes.substr(0, end);
        skip_lf_ = bytes[end] == '\r';
        bytes.remove_prefix(end + 1);
        if (line_too_long_ || line_.size() + l.size() > max_) {
            line_too_long_ = false;
            std::string().swap(line_);
            event_too_big_ = true;
            continue;
        }
        if (line_.empty()) {
            line(l);
        } else {
            line_.append(l);
            line(line_);
            line_.clear();
            if (line_.capacity() > keep_capacity) {
                std::string().swap(line_);
            }
        }
    }
}

void sse_decoder::line(std::string_view l) {
    if (l.empty()) {
        dispatch();
        return;
    }
    if (l.front() == ':') {
        return;
    }
    std::string_view field = l;
    std::string_view value;
    if (auto colon = l.find(':'); colon != std::string_view::npos) {
        field = l.substr(0, colon);
        value = l.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') {
            value.remove_prefix(1);
        }
    }
    if (field == "data") {
        if (event_too_big_) {
            return;
        }
        if (data_.size() + value.size() + 1 > max_) {
            event_too_big_ = true;
            std::string().swap(data_);
            return;
        }
        data_.append(value);
        data_.push_back('\n');
    } else if (field == "event") {
        event_.assign(value);
    }
}

void sse_decoder::dispatch() {
    if (event_too_big_) {
        ++dropped_;
    } else if (!data_.empty()) {
        data_.pop_back();
        on_event_(event_.empty() ? std::string_view("message") : std::string_view(event_), data_);
    }
    event_too_big_ = false;
    data_.clear();
    event_.clear();
    if (data_.capacity() > keep_capacity) {
        std::string().swap(data_);
    }
}

}  // namespace llm_proxy::llm

#pragma once
// What the fine-tuning writers check alike. Internal to src/export.

#include <optional>
#include <string>

#include "llm_proxy/export/conversation.hpp"

namespace llm_proxy::exporter::detail {

// Why no fine-tuning example can be made of `c` whatever the format, or nullopt.
inline std::optional<std::string> common_skip(const conversation& c) {
    if (!c.server_state.empty()) {
        return "conversation held by the server (" + c.server_state + ")";
    }
    if (c.choices_requested > 1) {
        return std::string("several choices asked for (n > 1)");
    }
    if (!c.answered || c.messages.empty()) {
        return std::string("no answer");
    }
    if (c.messages.size() == 1) {
        return std::string("no messages in the request");
    }
    return std::nullopt;
}

// The message has text or an image.
inline bool has_content(const message& m) {
    for (const auto& p : m.content) {
        if ((p.k == part::kind::text && !p.text.empty()) || p.k == part::kind::image) {
            return true;
        }
    }
    return false;
}

// The message's text parts, one after the other.
inline std::string joined_text(const message& m) {
    std::string out;
    for (const auto& p : m.content) {
        if (p.k == part::kind::text) {
            out += p.text;
        }
    }
    return out;
}

}  // namespace llm_proxy::exporter::detail

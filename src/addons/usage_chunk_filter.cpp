#include "usage_chunk_filter.hpp"

#include <nlohmann/json.hpp>

namespace llm_proxy::addons {

namespace {

// The end of the first event in `s` (just past its blank line), or npos. Lines end with
// CRLF, LF or CR; a CR at the end of `s` may be the first half of a CRLF, so it waits.
std::size_t event_end(std::string_view s) {
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\n' && s[i] != '\r') {
            continue;
        }
        if (s[i] == '\r' && i + 1 == s.size()) {
            return std::string_view::npos;
        }
        std::size_t len = s[i] == '\r' && s[i + 1] == '\n' ? 2 : 1;
        if (i == line_start) {
            return i + len;  // a blank line ends the event
        }
        line_start = i + len;
        i += len - 1;
    }
    return std::string_view::npos;
}

}  // namespace

bool usage_chunk_filter::is_usage_only(std::string_view event) {
    if (event.find("\"usage\"") == std::string_view::npos) {
        return false;
    }
    std::string data;
    std::size_t at = 0;
    while (at < event.size()) {
        std::size_t eol = event.find_first_of("\r\n", at);
        std::string_view line =
            event.substr(at, eol == std::string_view::npos ? event.npos : eol - at);
        if (line.starts_with("data:")) {
            line.remove_prefix(5);
            if (line.starts_with(" ")) {
                line.remove_prefix(1);
            }
            if (!data.empty()) {
                data.push_back('\n');
            }
            data.append(line);
        }
        if (eol == std::string_view::npos) {
            break;
        }
        at = eol + 1;
    }
    auto j = nlohmann::json::parse(data, nullptr, false);
    if (!j.is_object()) {
        return false;
    }
    auto choices = j.find("choices");
    auto usage = j.find("usage");
    return choices != j.end() && choices->is_array() && choices->empty() && usage != j.end() &&
           usage->is_object();
}

void usage_chunk_filter::pass(std::string_view part, std::string& out) {
    seen_(part);
    out.append(part);
}

std::size_t usage_chunk_filter::overlong_end(std::string_view in) {
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (after_cr_) {
            after_cr_ = false;
            if (c == '\n') {
                continue;  // the rest of a CRLF
            }
        }
        if (c != '\n' && c != '\r') {
            line_start_ = false;
            continue;
        }
        if (line_start_) {
            // A blank line ends the event; a CR's LF may come in the next piece.
            std::size_t end = i + 1;
            if (c == '\r') {
                if (end < in.size()) {
                    end += in[end] == '\n' ? 1 : 0;
                } else {
                    lf_may_end_ = true;
                }
            }
            line_start_ = true;
            return end;
        }
        line_start_ = true;
        after_cr_ = c == '\r';
    }
    return std::string_view::npos;
}

void usage_chunk_filter::on_data(std::string_view in, std::string& out) {
    if (lf_may_end_ && !in.empty()) {
        lf_may_end_ = false;
        if (in.starts_with('\n')) {
            pass(in.substr(0, 1), out);  // the LF of the CRLF that ended the last event
            in.remove_prefix(1);
        }
    }
    if (overlong_) {
        // The rest of an overlong event passes as it comes, up to its blank line.
        std::size_t end = overlong_end(in);
        pass(in.substr(0, end), out);
        if (end == std::string_view::npos) {
            return;
        }
        overlong_ = false;
        in.remove_prefix(end);
        if (lf_may_end_) {
            return;  // `in` ended with the CR
        }
    }
    pending_.append(in);
    std::string_view rest = pending_;
    for (;;) {
        std::size_t end = event_end(rest);
        if (end == std::string_view::npos) {
            break;
        }
        std::string_view event = rest.substr(0, end);
        seen_(event);
        if (!is_usage_only(event)) {
            out.append(event);
        }
        rest.remove_prefix(end);
    }
    pending_.erase(0, pending_.size() - rest.size());
    if (pending_.size() > max_pending) {
        // No usage-only chunk is this long: the unfinished event goes on unfiltered, so a
        // stream that never ends an event is not held (nor kept) whole. The scan for its end
        // goes on from where these bytes leave it (an end here can only be a CR last).
        pass(pending_, out);
        line_start_ = true;
        after_cr_ = false;
        overlong_ = overlong_end(pending_) == std::string_view::npos;
        pending_.clear();
    }
}

void usage_chunk_filter::on_end(std::string& out) {
    if (!pending_.empty()) {
        seen_(pending_);
        out.append(pending_);
        pending_.clear();
    }
}

}  // namespace llm_proxy::addons

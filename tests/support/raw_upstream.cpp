#include "support/raw_upstream.hpp"

#include "support/raw_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace llm_proxy::test {

namespace {

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool is_tchar(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_value(std::string_view v) {
    return std::all_of(v.begin(), v.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u == '\t' || (u >= 0x20 && u != 0x7f);
    });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// The CRLF-ended line at `at`; nullopt when incomplete; `problem` set for a bare CR or LF.
std::optional<std::string_view> line_at(std::string_view bytes, std::size_t at,
                                        std::string& problem) {
    auto lf = bytes.find('\n', at);
    auto cr = bytes.find('\r', at);
    if (lf == std::string_view::npos) {
        if (cr != std::string_view::npos && cr + 1 < bytes.size()) {
            problem = "bare CR";
        }
        return std::nullopt;
    }
    if (lf == at || bytes[lf - 1] != '\r' || cr != lf - 1) {
        problem = "bare LF or CR";
        return std::nullopt;
    }
    return bytes.substr(at, lf - 1 - at);
}

}  // namespace

std::optional<strict_request> parse_strict_request(std::string_view bytes, std::size_t& used,
                                                   std::string& problem) {
    problem.clear();
    std::size_t at = 0;
    auto first = line_at(bytes, at, problem);
    if (!first) {
        return std::nullopt;
    }
    at += first->size() + 2;
    strict_request r;
    {
        auto sp1 = first->find(' ');
        auto sp2 = sp1 == std::string_view::npos ? sp1 : first->find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos || first->find(' ', sp2 + 1) != std::string_view::npos) {
            problem = "bad request line: " + std::string(*first);
            return std::nullopt;
        }
        r.method = std::string(first->substr(0, sp1));
        r.target = std::string(first->substr(sp1 + 1, sp2 - sp1 - 1));
        r.version = std::string(first->substr(sp2 + 1));
        if (r.method.empty() || !std::all_of(r.method.begin(), r.method.end(), is_tchar) ||
            r.target.empty() || (r.version != "HTTP/1.1" && r.version != "HTTP/1.0") ||
            !is_value(r.target)) {
            problem = "bad request line: " + std::string(*first);
            return std::nullopt;
        }
    }
    for (;;) {
        auto line = line_at(bytes, at, problem);
        if (!line) {
            return std::nullopt;
        }
        at += line->size() + 2;
        if (line->empty()) {
            break;
        }
        if (line->front() == ' ' || line->front() == '\t') {
            problem = "obs-fold";
            return std::nullopt;
        }
        auto colon = line->find(':');
        if (colon == std::string_view::npos || colon == 0 ||
            !std::all_of(line->begin(), line->begin() + static_cast<long>(colon), is_tchar) ||
            !is_value(line->substr(colon + 1))) {
            problem = "bad field line: " + std::string(*line);
            return std::nullopt;
        }
        r.headers.emplace_back(std::string(line->substr(0, colon)),
                               std::string(trim(line->substr(colon + 1))));
    }
    int lengths = 0;
    int encodings = 0;
    std::string length_value;
    std::string encoding_value;
    for (const auto& [name, value] : r.headers) {
        if (iequal(name, "Content-Length")) {
            ++lengths;
            length_value = value;
        } else if (iequal(name, "Transfer-Encoding")) {
            ++encodings;
            encoding_value = value;
        }
    }
    if (lengths > 1 || encodings > 1 || (lengths == 1 && encodings == 1)) {
        problem = "ambiguous framing: " + std::to_string(lengths) + " Content-Length, " +
                  std::to_string(encodings) + " Transfer-Encoding";
        return std::nullopt;
    }
    if (encodings == 1) {
        if (!iequal(encoding_value, "chunked")) {
            problem = "Transfer-Encoding other than chunked: " + encoding_value;
            return std::nullopt;
        }
        for (;;) {
            auto size_line = line_at(bytes, at, problem);
            if (!size_line) {
                return std::nullopt;
            }
            std::size_t digits = 0;
            std::uint64_t size = 0;
            while (digits < size_line->size() &&
                   std::isxdigit(static_cast<unsigned char>((*size_line)[digits]))) {
                if (digits == 15) {
                    problem = "chunk size too long";
                    return std::nullopt;
                }
                size = size * 16 + static_cast<std::uint64_t>(std::stoi(
                                       std::string(1, (*size_line)[digits]), nullptr, 16));
                ++digits;
            }
            if (digits == 0 || (digits < size_line->size() && (*size_line)[digits] != ';')) {
                problem = "bad chunk size line: " + std::string(*size_line);
                return std::nullopt;
            }
            at += size_line->size() + 2;
            if (size == 0) {
                for (;;) {  // trailers
                    auto t = line_at(bytes, at, problem);
                    if (!t) {
                        return std::nullopt;
                    }
                    at += t->size() + 2;
                    if (t->empty()) {
                        break;
                    }
                }
                break;
            }
            if (bytes.size() < at + size + 2) {
                return std::nullopt;
            }
            r.body.append(bytes.substr(at, size));
            at += size;
            if (bytes.substr(at, 2) != "\r\n") {
                problem = "chunk not followed by CRLF";
                return std::nullopt;
            }
            at += 2;
        }
    } else if (lengths == 1) {
        if (length_value.empty() ||
            !std::all_of(length_value.begin(), length_value.end(),
                         [](char c) { return c >= '0' && c <= '9'; }) ||
            length_value.size() > 15) {
            problem = "bad Content-Length: " + length_value;
            return std::nullopt;
        }
        auto n = std::stoull(length_value);
        if (bytes.size() < at + n) {
            return std::nullopt;
        }
        r.body = std::string(bytes.substr(at, n));
        at += n;
    }
    r.raw = std::string(bytes.substr(0, at));
    used = at;
    return r;
}

raw_upstream::raw_upstream()
    : listener_([this](int fd, std::size_t index) { serve(fd, index); },
                [this](std::size_t) {
                    std::lock_guard lock(mutex_);
                    logs_.emplace_back();
                }) {
    set_responder(echo_response);
}

raw_upstream::~raw_upstream() {
    listener_.stop();
}

void raw_upstream::set_responder(responder r) {
    set_policy([r = std::move(r)](const strict_request& q, std::size_t) { return reply{r(q)}; });
}

void raw_upstream::set_policy(policy p) {
    std::lock_guard lock(mutex_);
    policy_ = std::move(p);
}

std::string raw_upstream::echo_response(const strict_request& r) {
    std::string body = r.method + " " + r.target + " " + std::to_string(r.body.size());
    return "HTTP/1.1 200 OK\r\nX-Echo-Target: " + r.target +
           "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
}

std::vector<raw_upstream::connection_log> raw_upstream::connections() const {
    std::lock_guard lock(mutex_);
    return logs_;
}

std::vector<raw_upstream::connection_log> raw_upstream::wait_for(
    const std::function<bool(const std::vector<connection_log>&)>& pred,
    std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto snapshot = connections();
        if (pred(snapshot) || std::chrono::steady_clock::now() > deadline) {
            return snapshot;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

bool raw_upstream::send_late(std::string_view marker, std::string_view bytes) {
    std::size_t index = 0;
    {
        std::lock_guard lock(mutex_);
        for (index = 0; index < logs_.size(); ++index) {
            const auto& log = logs_[index];
            if (!log.closed_by_peer && !log.closed_here &&
                std::any_of(log.requests.begin(), log.requests.end(), [&](const auto& r) {
                    return r.target.find(marker) != std::string::npos;
                })) {
                break;
            }
        }
        if (index == logs_.size()) {
            return false;
        }
    }
    return listener_.send(index, bytes);
}

void raw_upstream::serve(int fd, std::size_t index) {
    char buf[16384];
    bool closing = false;
    while (!closing && !listener_.stopping()) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) {
            continue;
        }
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        std::string answer;
        {
            std::lock_guard lock(mutex_);
            auto& log = logs_[index];
            if (n <= 0) {
                log.closed_by_peer = true;
                break;
            }
            log.received.append(buf, static_cast<std::size_t>(n));
            if (!log.problem.empty()) {
                continue;  // out of step: keep recording, answer nothing more
            }
            log.pending.append(buf, static_cast<std::size_t>(n));
            for (;;) {
                std::size_t used = 0;
                std::string problem;
                auto r = parse_strict_request(log.pending, used, problem);
                if (!r) {
                    log.problem = problem;
                    break;
                }
                log.pending.erase(0, used);
                reply rep = policy_(*r, log.requests.size());
                answer += rep.bytes;
                log.requests.push_back(std::move(*r));
                if (rep.close) {
                    closing = log.closed_here = true;
                    break;
                }
            }
        }
        if (!answer.empty() && !send_all(fd, answer)) {
            break;
        }
    }
}

}  // namespace llm_proxy::test

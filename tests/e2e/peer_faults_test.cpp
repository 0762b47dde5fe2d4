// Peers failing at every stage, each case under dir_logger so the record is checked too.
//
//  * The upstream resets (SO_LINGER 0) or closes (FIN; over TLS close_notify, then FIN) before
//    any byte of its response head, in the middle of the head, in the middle of a
//    Content-Length body, of a chunked body and of an SSE stream; over plain HTTP
//    (absolute-form) and inside an intercepted CONNECT tunnel (TLS to the upstream).
//  * The client closes (FIN) or resets while the proxy waits for the upstream's head, in the
//    middle of the response body, of an SSE stream, and of its own upload.
//  * The upstream cannot be reached: a name that does not resolve, a refused connection, an
//    upstream that answers the ClientHello with plain text, one that wants a client
//    certificate (TLS 1.2: a handshake alert; TLS 1.3: an alert after the handshake), one
//    whose certificate the proxy does not trust.
//
// Each case checks what the client gets (a 502 with the JSON error and X-Llm_proxy-Error while
// nothing was sent to it; a cut-off connection once the response had started; never a hang:
// every read is bounded), the record (error kind, status, the body relayed so far, the llm
// object's `incomplete`), what the upstream saw (its connection closed by the proxy when the
// client left), that the proxy keeps running, and that a new connection's request through the
// same proxy (one worker, one pool) is then served.
//
// Already covered elsewhere, not repeated here: the error bodies' messages for DNS, refused
// connections and unverified certificates (errors_test.cpp), chunked uploads broken off over
// both schemes (client_abort_test.cpp), malformed response framing (desync_test.cpp).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "framing_fixture.hpp"  // read_records, unique_id
#include "support/proxied_connection.hpp"
#include "support/proxy_process.hpp"
#include "support/raw_socket.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"
#include "support/threaded_listener.hpp"

namespace llm_proxy::test {

namespace {

using namespace std::chrono_literals;
constexpr std::chrono::milliseconds bound = 10s;  // the longest any step may take

enum class fault { rst, fin };
const char* name_of(fault f) {
    return f == fault::rst ? "Rst" : "Fin";
}

// ---- A scripted upstream: plain TCP or TLS, told what to do by the request's `do=` parameter.
//
//   do=ok                answers 200 with "ok <target>" (keep-alive)
//   do=<stage>-<fault>   sends the start of a response (see upstream_prefix), then faults
//   do=hold              reads the request, never answers, waits for the proxy to close
//   do=trickle-length    a 200 with a 10 MB Content-Length, 1 KiB every 20 ms, until the proxy
//                        closes (or 15 s)
//   do=trickle-sse       an SSE stream, one event every 20 ms, the same way
//   do=pause-sse         an SSE stream's head and one event, then nothing until the proxy
//                        closes
//
// A request body is read as its Content-Length says; one that never completes is read until
// the proxy closes the connection.

enum class server_mode {
    plain,
    tls,
    tls12_client_cert,  // TLS 1.2 only, a client certificate required
    tls13_client_cert,  // TLS 1.3 only, a client certificate required
    garbage,            // answers whatever arrives (a ClientHello) with a plain-text HTTP 400
};

struct upstream_conn {
    std::vector<std::string> targets;  // request targets, in order
    std::string received;              // every byte (decrypted)
    bool peer_gone = false;            // a read saw EOF / an error, or a write failed
    std::string handshake_error;       // TLS accept failed
};

std::string openssl_error_text() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out;
}

std::string chunk(std::string_view data) {
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return std::string(size) + std::string(data) + "\r\n";
}

// The answer's pieces for the chat completion the tests ask for.
const std::string json_part1 =
    R"({"id":"chatcmpl-pf","object":"chat.completion","model":"gpt-4o-mini","choices":)";
const std::string json_part2 = R"([{"index":0,"message":{"role":"assistant","content":"Hel)";
const std::string json_rest =
    R"(lo"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}})";

std::string sse_data(std::string_view content) {
    return R"(data: {"id":"chatcmpl-pf","object":"chat.completion.chunk","model":"gpt-4o-mini",)"
           R"("choices":[{"index":0,"delta":{"content":")" +
           std::string(content) + "\"},\"finish_reason\":null}]}\n\n";
}

enum class stage { before_head, mid_head, mid_body_length, mid_body_chunked, mid_sse };
const char* name_of(stage s) {
    switch (s) {
        case stage::before_head:
            return "BeforeHead";
        case stage::mid_head:
            return "MidHead";
        case stage::mid_body_length:
            return "MidBodyLength";
        case stage::mid_body_chunked:
            return "MidBodyChunked";
        case stage::mid_sse:
            return "MidSse";
    }
    return "?";
}

// What the upstream sends before it faults, as pieces written 100 ms apart, and the body
// bytes of it the client is to get (de-chunked).
struct response_prefix {
    std::vector<std::string> pieces;
    std::string body;
};
response_prefix upstream_prefix(stage s) {
    const std::string length_head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(json_part1.size() + json_part2.size() + json_rest.size()) + "\r\n\r\n";
    const std::string chunked_head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string sse_head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    switch (s) {
        case stage::before_head:
            return {};
        case stage::mid_head:
            return {{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Len"}, ""};
        case stage::mid_body_length:
            return {{length_head + json_part1, json_part2}, json_part1 + json_part2};
        case stage::mid_body_chunked:
            return {{chunked_head + chunk(json_part1), chunk(json_part2)}, json_part1 + json_part2};
        case stage::mid_sse:
            return {{sse_head + chunk(sse_data("Hel")), chunk(sse_data("lo"))},
                    sse_data("Hel") + sse_data("lo")};
    }
    return {};
}

class fault_upstream {
  public:
    fault_upstream(server_mode mode, const test_pki* pki) : mode_(mode) {
        if (mode != server_mode::plain && mode != server_mode::garbage) {
            ctx_ = SSL_CTX_new(TLS_server_method());
            if (!ctx_ || SSL_CTX_use_certificate_chain_file(ctx_, pki->server_cert.c_str()) != 1 ||
                SSL_CTX_use_PrivateKey_file(ctx_, pki->server_key.c_str(), SSL_FILETYPE_PEM) != 1) {
                throw std::runtime_error("fault_upstream TLS set-up: " + openssl_error_text());
            }
            if (mode == server_mode::tls12_client_cert) {
                SSL_CTX_set_max_proto_version(ctx_, TLS1_2_VERSION);
            }
            if (mode == server_mode::tls13_client_cert) {
                SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
            }
            if (mode == server_mode::tls12_client_cert || mode == server_mode::tls13_client_cert) {
                SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                                   nullptr);
            }
        }
        // Made last: its threads read ctx_.
        listener_ = std::make_unique<threaded_listener>(
            [this](int fd, std::size_t index) { serve(fd, index); },
            [this](std::size_t) {
                std::lock_guard lock(mutex_);
                logs_.emplace_back();
            });
    }
    ~fault_upstream() {
        listener_->stop();
        if (ctx_) {
            SSL_CTX_free(ctx_);
        }
    }
    fault_upstream(const fault_upstream&) = delete;
    fault_upstream& operator=(const fault_upstream&) = delete;

    std::uint16_t port() const { return listener_->port(); }
    std::vector<upstream_conn> connections() const {
        std::lock_guard lock(mutex_);
        return logs_;
    }
    // Waits until pred(connections()) holds or `bound` passes; returns the last snapshot.
    std::vector<upstream_conn> wait_for(
        const std::function<bool(const std::vector<upstream_conn>&)>& pred) const {
        const auto deadline = std::chrono::steady_clock::now() + bound;
        for (;;) {
            auto snapshot = connections();
            if (pred(snapshot) || std::chrono::steady_clock::now() > deadline) {
                return snapshot;
            }
            std::this_thread::sleep_for(10ms);
        }
    }
    // The connection that got a request whose target contains `marker`.
    std::optional<upstream_conn> connection_with(const std::string& marker) const {
        for (auto& c : connections()) {
            for (auto& t : c.targets) {
                if (t.find(marker) != std::string::npos) {
                    return c;
                }
            }
        }
        return std::nullopt;
    }

  private:
    struct io {
        int fd;
        SSL* ssl;
        const std::atomic<bool>& stopping;
        // Some bytes; 0 at EOF or on an error (or when the server stops).
        std::size_t read(char* buf, std::size_t n) {
            while (!stopping) {
                if (!ssl || SSL_pending(ssl) == 0) {
                    pollfd p{fd, POLLIN, 0};
                    int r = ::poll(&p, 1, 50);
                    if (r == 0) {
                        continue;
                    }
                    if (r < 0) {
                        return 0;
                    }
                }
                if (ssl) {
                    int r = SSL_read(ssl, buf, static_cast<int>(n));
                    if (r > 0) {
                        return static_cast<std::size_t>(r);
                    }
                    if (SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ) {
                        continue;
                    }
                    return 0;
                }
                ssize_t r = ::recv(fd, buf, n, 0);
                return r > 0 ? static_cast<std::size_t>(r) : 0;
            }
            return 0;
        }
        bool write(std::string_view data) {
            while (!data.empty()) {
                long n = ssl ? SSL_write(ssl, data.data(), static_cast<int>(data.size()))
                             : ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
                if (n <= 0) {
                    return false;
                }
                data.remove_prefix(static_cast<std::size_t>(n));
            }
            return true;
        }
    };

    void log(std::size_t index, const std::function<void(upstream_conn&)>& change) {
        std::lock_guard lock(mutex_);
        change(logs_[index]);
    }

    void serve(int fd, std::size_t index) {
        SSL* ssl = nullptr;
        if (mode_ == server_mode::garbage) {
            char buf[4096];
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(bound.count())) > 0 &&
                ::recv(fd, buf, sizeof buf, 0) > 0) {
                const std::string_view answer =
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
            }
        } else if (ctx_) {
            ssl = SSL_new(ctx_);
            SSL_set_fd(ssl, fd);
            if (SSL_accept(ssl) != 1) {
                std::string why = openssl_error_text();
                log(index, [&](upstream_conn& c) { c.handshake_error = why.empty() ? "?" : why; });
                SSL_free(ssl);
                // The alert is sent: a FIN, not a reset that could discard it before the
                // proxy reads it.
                finish_with_fin(fd);
                return;
            }
        }
        if (mode_ != server_mode::garbage) {
            io conn{fd, ssl, listener_->stopping()};
            serve_requests(conn, index);
        }
        if (ssl) {
            SSL_free(ssl);
        }
    }

    // Answers requests until a script ends the connection.
    void serve_requests(io& conn, std::size_t index) {
        std::string pending;
        char buf[16384];
        auto gone = [&] { log(index, [](upstream_conn& c) { c.peer_gone = true; }); };
        for (;;) {
            std::size_t end;
            while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
                auto n = conn.read(buf, sizeof buf);
                if (n == 0) {
                    return gone();
                }
                pending.append(buf, n);
                log(index, [&](upstream_conn& c) { c.received.append(buf, n); });
            }
            std::string head = pending.substr(0, end + 4);
            pending.erase(0, end + 4);
            auto sp1 = head.find(' ');
            std::string target = head.substr(sp1 + 1, head.find(' ', sp1 + 1) - sp1 - 1);
            log(index, [&](upstream_conn& c) { c.targets.push_back(target); });
            std::size_t length = 0;
            for (std::string_view field : {"\r\nContent-Length: ", "\r\ncontent-length: "}) {
                if (auto at = head.find(field); at != std::string::npos) {
                    length = std::stoull(head.substr(at + field.size()));
                }
            }
            while (pending.size() < length) {
                auto n = conn.read(buf, sizeof buf);
                if (n == 0) {
                    return gone();
                }
                pending.append(buf, n);
                log(index, [&](upstream_conn& c) { c.received.append(buf, n); });
            }
            pending.erase(0, length);
            std::string action = target.substr(target.find("do=") + 3);
            action = action.substr(0, action.find('&'));
            if (action == "ok") {
                std::string body = "ok " + target;
                if (!conn.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body)) {
                    return gone();
                }
                continue;
            }
            if (action == "hold" || action == "pause-sse") {
                if (action == "pause-sse" &&
                    !conn.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n" +
                                chunk(sse_data("x")))) {
                    return gone();
                }
                while (conn.read(buf, sizeof buf) > 0) {
                }
                return gone();
            }
            if (action.starts_with("trickle-")) {
                bool sse = action == "trickle-sse";
                std::string head_out =
                    sse ? "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n"
                        : "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Length: 10000000\r\n\r\n";
                if (!conn.write(head_out)) {
                    return gone();
                }
                const auto give_up = std::chrono::steady_clock::now() + 15s;
                while (!conn.stopping && std::chrono::steady_clock::now() < give_up) {
                    if (!conn.write(sse ? chunk(sse_data("x")) : std::string(1024, 'x'))) {
                        return gone();
                    }
                    std::this_thread::sleep_for(20ms);
                }
                return;
            }
            // <stage>-<fault>
            auto dash = action.rfind('-');
            std::string stage_name = action.substr(0, dash);
            fault f = action.substr(dash + 1) == "Rst" ? fault::rst : fault::fin;
            for (stage s : {stage::before_head, stage::mid_head, stage::mid_body_length,
                            stage::mid_body_chunked, stage::mid_sse}) {
                if (stage_name != name_of(s)) {
                    continue;
                }
                for (const auto& piece : upstream_prefix(s).pieces) {
                    if (!conn.write(piece)) {
                        return gone();
                    }
                    std::this_thread::sleep_for(100ms);
                }
                std::this_thread::sleep_for(100ms);  // the proxy relays it all first
                return fault_now(conn, index, f);
            }
            ADD_FAILURE() << "fault_upstream: unknown action " << action;
            return;
        }
    }

    void fault_now(io& conn, std::size_t index, fault f) {
        if (f == fault::rst) {
            listener_->close(index, true);
            return;
        }
        if (conn.ssl) {
            SSL_shutdown(conn.ssl);  // close_notify
        }
        finish_with_fin(conn.fd);
    }

    // Shuts the write side, then drains what the proxy still sends (its close_notify or
    // alert) until it closes, so that the listener's close sends no reset.
    void finish_with_fin(int fd) {
        ::shutdown(fd, SHUT_WR);
        char buf[4096];
        pollfd p{fd, POLLIN, 0};
        const auto give_up = std::chrono::steady_clock::now() + bound;
        while (!listener_->stopping() && std::chrono::steady_clock::now() < give_up) {
            if (::poll(&p, 1, 50) > 0 && ::recv(fd, buf, sizeof buf, 0) <= 0) {
                break;
            }
        }
    }

    server_mode mode_;
    SSL_CTX* ctx_ = nullptr;
    mutable std::mutex mutex_;
    std::vector<upstream_conn> logs_;
    std::unique_ptr<threaded_listener> listener_;
};

const std::string chat_request_body =
    R"({"model":"gpt-4o-mini","stream":false,"messages":[{"role":"user","content":"hi"}]})";
const std::string stream_request_body =
    R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]})";

// The `code` of the proxy's JSON error body, checking its `type`.
std::string code_of(const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.contains("error")) {
        return "(not a JSON error: " + body + ")";
    }
    return j["error"].value("code", "") + (j["error"].value("type", "") == "llm_proxy_error"
                                               ? ""
                                               : " (type is not llm_proxy_error)");
}

// What a client got from reading a response: the response (when it was complete), the body
// bytes that arrived, and how the read ended.
struct client_read {
    std::optional<raw_response> response;
    std::string body;
    std::string ended;  // "" (complete), "closed" or "timeout"
};

client_read read_bounded(proxied_connection& c) {
    client_read out;
    proxied_connection::body_sink sink = [&out](std::string_view piece) { out.body.append(piece); };
    try {
        out.response = c.read_final_response(false, sink);
    } catch (const connection_timeout& e) {
        out.ended = std::string("timeout: ") + e.what();
    } catch (const connection_closed&) {
        out.ended = "closed";
    }
    return out;
}

}  // namespace

// ---- The fixture: the scripted upstreams and a dir_logger proxy in front of them.

class PeerFaults : public ::testing::Test {
  protected:
    void SetUp() override {
        std::signal(SIGPIPE, SIG_IGN);
        const std::vector<std::string> names = {"upstream.test", "garbage.test", "certreq12.test",
                                                "certreq13.test", "untrusted.test"};
        pki_ = make_test_pki(work_ / "pki", names);
        other_pki_ = make_test_pki(work_ / "other-pki", names);  // a CA the proxy does not know
        plain_ = std::make_unique<fault_upstream>(server_mode::plain, nullptr);
        tls_ = std::make_unique<fault_upstream>(server_mode::tls, &pki_);
        garbage_ = std::make_unique<fault_upstream>(server_mode::garbage, nullptr);
        certreq12_ = std::make_unique<fault_upstream>(server_mode::tls12_client_cert, &pki_);
        certreq13_ = std::make_unique<fault_upstream>(server_mode::tls13_client_cert, &pki_);
        untrusted_ = std::make_unique<fault_upstream>(server_mode::tls, &other_pki_);
        dead_port_ = pick_free_port();  // nothing listens on it
        auto to = [](const std::string& host_port, std::uint16_t port) {
            return host_port + ":127.0.0.1:" + std::to_string(port);
        };
        proxy_ = std::make_unique<proxy_process>(
            std::vector<std::string>{"--ca_dir",
                                     (work_ / "ca").string(),
                                     "--upstream-ca",
                                     pki_.ca_cert.string(),
                                     "--connect-to",
                                     to("upstream.test:80", plain_->port()),
                                     "--connect-to",
                                     to("upstream.test:443", tls_->port()),
                                     "--connect-to",
                                     to("garbage.test:443", garbage_->port()),
                                     "--connect-to",
                                     to("certreq12.test:443", certreq12_->port()),
                                     "--connect-to",
                                     to("certreq13.test:443", certreq13_->port()),
                                     "--connect-to",
                                     to("untrusted.test:443", untrusted_->port()),
                                     "--connect-to",
                                     to("refused.test:80", dead_port_),
                                     "--threads",
                                     "1",
                                     "--no-http-upgrader",
                                     "--llm-host",
                                     "upstream.test=openai",
                                     "dir_logger",
                                     "--verbose",
                                     "-o",
                                     log_dir().string()});
    }

    void TearDown() override {
        if (HasFailure() && proxy_) {
            std::cerr << "proxy stderr:\n" << proxy_->stderr_text() << "\n";
        }
    }

    std::filesystem::path log_dir() const { return work_ / "logs"; }
    std::string proxy_ca() const { return (work_ / "ca" / "mitmproxy-ca-cert.pem").string(); }
    fault_upstream& upstream(bool tls) { return tls ? *tls_ : *plain_; }

    proxied_connection connect(std::string_view origin) {
        return proxied_connection(proxy_->host(), proxy_->port(), origin, proxy_ca(), bound);
    }
    static std::string origin(bool tls) {
        return tls ? "https://upstream.test" : "http://upstream.test";
    }

    // The records written (at least `n`, waiting up to `bound`), oldest first.
    std::vector<nlohmann::json> records(std::size_t n) { return read_records(log_dir(), n, bound); }

    // The proxy is alive and two requests on a new connection are served, the second over a
    // pooled upstream connection: each answer is that request's own. Their records are the
    // `n`th and the next.
    void expect_follow_up_served(bool tls, std::size_t n) {
        ASSERT_TRUE(proxy_->running()) << "the proxy died";
        auto c = connect(origin(tls));
        for (int i = 0; i < 2; ++i) {
            const std::string path = "/v1/models?do=ok&id=" + unique_id("follow");
            c.send(make_head("GET", c.target(path), c.host_header()));
            auto got = read_bounded(c);
            ASSERT_TRUE(got.response) << "the follow-up request got no answer: " << got.ended;
            EXPECT_EQ(got.response->status, 200u) << got.body;
            EXPECT_EQ(got.body, "ok " + path) << "the follow-up got another request's answer";
        }
        auto all = records(n + 1);
        ASSERT_EQ(all.size(), n + 1);
        for (std::size_t i = n - 1; i < all.size(); ++i) {
            EXPECT_FALSE(all[i].contains("error")) << all[i].dump(2);
            EXPECT_EQ(all[i]["response"].value("status", 0), 200);
        }
    }

    temp_dir work_{"llm_proxy_peer_faults"};
    test_pki pki_;
    test_pki other_pki_;
    std::unique_ptr<fault_upstream> plain_, tls_, garbage_, certreq12_, certreq13_, untrusted_;
    std::uint16_t dead_port_ = 0;
    std::unique_ptr<proxy_process> proxy_;
};

// ---- The upstream fails: fault x stage, over plain HTTP and inside a TLS tunnel.

struct upstream_row {
    bool tls;
    stage at;
    fault how;
};
std::string row_name(const upstream_row& r) {
    return std::string(r.tls ? "Tls_" : "Plain_") + name_of(r.at) + "_" + name_of(r.how);
}
void PrintTo(const upstream_row& r, std::ostream* os) {
    *os << row_name(r);
}

class PeerFaultsUpstream : public PeerFaults, public ::testing::WithParamInterface<upstream_row> {};

TEST_P(PeerFaultsUpstream, ClientGets502OrACutOffAndTheRecordSaysUpstreamReset) {
    const auto& row = GetParam();
    const bool stream = row.at == stage::mid_sse;
    const bool head_sent = row.at != stage::before_head && row.at != stage::mid_head;
    const auto expected = upstream_prefix(row.at);
    auto c = connect(origin(row.tls));
    const std::string path = "/v1/chat/completions?do=" + std::string(name_of(row.at)) + "-" +
                             name_of(row.how) + "&id=" + unique_id("up");
    const std::string& body = stream ? stream_request_body : chat_request_body;
    c.send(make_head("POST", c.target(path), c.host_header(),
                     {{"Content-Type", "application/json"},
                      {"Content-Length", std::to_string(body.size())}}) +
           body);
    auto got = read_bounded(c);
    ASSERT_EQ(got.ended.find("timeout"), std::string::npos) << "the client hangs";
    if (!head_sent) {
        ASSERT_TRUE(got.response) << "no 502: " << got.ended;
        EXPECT_EQ(got.response->status, 502u);
        EXPECT_EQ(got.response->header("X-Llm_proxy-Error").value_or(""), "upstream_reset");
        EXPECT_EQ(got.response->header("Content-Type").value_or(""), "application/json");
        EXPECT_EQ(code_of(got.body), "upstream_reset");
    } else {
        EXPECT_FALSE(got.response) << "the client got a complete response from a broken one";
        EXPECT_EQ(got.ended, "closed");
        EXPECT_EQ(got.body, expected.body) << "the client did not get what was relayed";
    }

    auto all = records(1);
    ASSERT_EQ(all.size(), 1u);
    const auto& rec = all[0];
    ASSERT_TRUE(rec.contains("error")) << rec.dump(2);
    EXPECT_EQ(rec["error"].value("kind", ""), "upstream_reset") << rec.dump(2);
    EXPECT_EQ(rec["request"].value("url", ""), origin(row.tls) + path);
    EXPECT_EQ(rec["request"].value("body", ""), body) << "the request body sent is the one logged";
    if (!head_sent) {
        EXPECT_FALSE(rec.contains("response")) << rec.dump(2);
    } else {
        ASSERT_TRUE(rec.contains("response")) << rec.dump(2);
        EXPECT_EQ(rec["response"].value("status", 0), 200);
        EXPECT_EQ(rec["response"].value("body", ""), expected.body)
            << "the record's body is not what was relayed";
    }
    if (!head_sent) {
        // The LLM observer reads a call from its response: without one there is no `llm`.
        EXPECT_FALSE(rec.contains("llm")) << rec.dump(2);
    } else {
        ASSERT_TRUE(rec.contains("llm")) << rec.dump(2);
        EXPECT_EQ(rec["llm"].value("incomplete", false), true) << rec["llm"].dump(2);
    }
    if (row.at == stage::mid_sse) {
        EXPECT_EQ(rec["llm"]["output"].value("content", ""), "Hello") << rec["llm"].dump(2);
    }
    expect_follow_up_served(row.tls, 2);
}

std::vector<upstream_row> upstream_rows() {
    std::vector<upstream_row> out;
    for (bool tls : {false, true}) {
        for (stage s : {stage::before_head, stage::mid_head, stage::mid_body_length,
                        stage::mid_body_chunked, stage::mid_sse}) {
            for (fault f : {fault::rst, fault::fin}) {
                out.push_back({tls, s, f});
            }
        }
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(Matrix, PeerFaultsUpstream, ::testing::ValuesIn(upstream_rows()),
                         [](const ::testing::TestParamInfo<upstream_row>& info) {
                             return row_name(info.param);
                         });

// ---- The client goes away: fault x stage, over plain HTTP and inside a TLS tunnel.

enum class client_stage { waiting_for_head, mid_body, mid_sse, mid_sse_paused, mid_upload };
const char* name_of(client_stage s) {
    switch (s) {
        case client_stage::waiting_for_head:
            return "WaitingForHead";
        case client_stage::mid_body:
            return "MidBody";
        case client_stage::mid_sse:
            return "MidSse";
        case client_stage::mid_sse_paused:
            return "MidSsePaused";
        case client_stage::mid_upload:
            return "MidUpload";
    }
    return "?";
}

struct client_row {
    bool tls;
    client_stage at;
    fault how;
};
std::string row_name(const client_row& r) {
    return std::string(r.tls ? "Tls_" : "Plain_") + name_of(r.at) + "_" + name_of(r.how);
}
void PrintTo(const client_row& r, std::ostream* os) {
    *os << row_name(r);
}

class PeerFaultsClient : public PeerFaults, public ::testing::WithParamInterface<client_row> {};

TEST_P(PeerFaultsClient, TheUpstreamConnectionIsClosedAndTheRecordSaysWhy) {
    const auto& row = GetParam();
    auto& up = upstream(row.tls);
    auto c = connect(origin(row.tls));
    const std::string id = unique_id("client");
    std::string path;
    std::string body;
    std::string expected_kind = "client_disconnected";
    switch (row.at) {
        case client_stage::waiting_for_head:
            path = "/v1/chat/completions?do=hold&id=" + id;
            body = chat_request_body;
            break;
        case client_stage::mid_body:
            path = "/v1/files/download?do=trickle-length&id=" + id;
            break;
        case client_stage::mid_sse:
            path = "/v1/chat/completions?do=trickle-sse&id=" + id;
            body = stream_request_body;
            break;
        case client_stage::mid_sse_paused:
            path = "/v1/chat/completions?do=pause-sse&id=" + id;
            body = stream_request_body;
            break;
        case client_stage::mid_upload:
            path = "/v1/chat/completions?do=hold&id=" + id;
            body = std::string(64 * 1024, 'u');  // of a 1 MiB Content-Length
            expected_kind = "client_aborted";
            break;
    }
    const std::uint64_t length = row.at == client_stage::mid_upload ? 1024 * 1024 : body.size();
    header_list fields = {{"Content-Length", std::to_string(length)}};
    c.send(make_head(body.empty() ? "GET" : "POST", c.target(path), c.host_header(),
                     body.empty() ? header_list{} : fields) +
           body);
    // The request (or that much of the upload) has reached the upstream.
    up.wait_for([&](const std::vector<upstream_conn>& all) {
        for (const auto& conn : all) {
            if (conn.received.find(id) != std::string::npos &&
                (row.at != client_stage::mid_upload || conn.received.size() > 32 * 1024)) {
                return true;
            }
        }
        return false;
    });
    ASSERT_TRUE(up.connection_with(id)) << "the request never reached the upstream";
    const bool paused = row.at == client_stage::mid_sse_paused;
    const bool streamed = row.at == client_stage::mid_sse || paused;
    const std::size_t enough_bytes = paused ? sse_data("x").size() : 2048;
    if (row.at == client_stage::mid_body || streamed) {
        // Part of the response has reached the client.
        std::string part;
        struct enough {};
        proxied_connection::body_sink sink = [&part, enough_bytes](std::string_view piece) {
            part.append(piece);
            if (part.size() >= enough_bytes) {
                throw enough{};
            }
        };
        try {
            c.read_final_response(false, sink);
            FAIL() << "the endless response ended";
        } catch (const enough&) {
        } catch (const std::exception& e) {
            FAIL() << "the response did not arrive: " << e.what();
        }
    }
    if (row.at == client_stage::waiting_for_head) {
        // The proxy is waiting by now (a FIN already there when it starts to wait is a
        // half-close after the request: that client still wants its answer).
        std::this_thread::sleep_for(300ms);
    }
    if (row.how == fault::rst) {
        c.reset();
    } else {
        c.half_close();  // the FIN alone: with unread bytes pending a close would reset
    }

    // The proxy closes the upstream connection: the upstream stops working for nobody.
    up.wait_for([&](const std::vector<upstream_conn>& all) {
        for (const auto& conn : all) {
            for (const auto& t : conn.targets) {
                if (t.find(id) != std::string::npos) {
                    return conn.peer_gone;
                }
            }
        }
        return false;
    });
    auto conn = up.connection_with(id);
    ASSERT_TRUE(conn);
    EXPECT_TRUE(conn->peer_gone) << "the proxy keeps the upstream connection of a client that "
                                    "went away";
    if (row.at == client_stage::mid_upload) {
        EXPECT_LT(conn->received.size(), length) << "the upload completed upstream";
    }

    auto all = records(1);
    ASSERT_EQ(all.size(), 1u);
    const auto& rec = all[0];
    ASSERT_TRUE(rec.contains("error")) << rec.dump(2);
    EXPECT_EQ(rec["error"].value("kind", ""), expected_kind) << rec.dump(2);
    EXPECT_EQ(rec["request"].value("url", ""), origin(row.tls) + path);
    switch (row.at) {
        case client_stage::waiting_for_head:
        case client_stage::mid_upload:
            EXPECT_FALSE(rec.contains("response")) << rec.dump(2);
            break;
        case client_stage::mid_body:
        case client_stage::mid_sse:
        case client_stage::mid_sse_paused: {
            ASSERT_TRUE(rec.contains("response")) << rec.dump(2);
            EXPECT_EQ(rec["response"].value("status", 0), 200);
            const std::string logged = rec["response"].value("body", "");
            EXPECT_GE(logged.size(), enough_bytes) << "less than the client got is logged";
            const std::string piece = streamed ? sse_data("x") : std::string(1024, 'x');
            EXPECT_EQ(logged.size() % piece.size(), 0u);
            EXPECT_EQ(logged.substr(0, piece.size()), piece);
            break;
        }
    }
    if (streamed) {
        ASSERT_TRUE(rec.contains("llm")) << rec.dump(2);
        EXPECT_EQ(rec["llm"].value("incomplete", false), true) << rec["llm"].dump(2);
    }
    expect_follow_up_served(row.tls, 2);
}

std::vector<client_row> client_rows() {
    std::vector<client_row> out;
    for (bool tls : {false, true}) {
        for (client_stage s :
             {client_stage::waiting_for_head, client_stage::mid_body, client_stage::mid_sse,
              client_stage::mid_sse_paused, client_stage::mid_upload}) {
            for (fault f : {fault::rst, fault::fin}) {
                out.push_back({tls, s, f});
            }
        }
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(Matrix, PeerFaultsClient, ::testing::ValuesIn(client_rows()),
                         [](const ::testing::TestParamInfo<client_row>& info) {
                             return row_name(info.param);
                         });

// ---- The upstream cannot be reached.

struct reach_row {
    std::string name;
    std::string origin;
    std::string kind;
};
void PrintTo(const reach_row& r, std::ostream* os) {
    *os << r.name;
}

class PeerFaultsReach : public PeerFaults, public ::testing::WithParamInterface<reach_row> {};

TEST_P(PeerFaultsReach, ClientGets502WithTheKindAndTheRecordSaysIt) {
    const auto& row = GetParam();
    auto c = connect(row.origin);
    const std::string path = "/v1/chat/completions?id=" + unique_id("reach");
    c.send(make_head("POST", c.target(path), c.host_header(),
                     {{"Content-Type", "application/json"},
                      {"Content-Length", std::to_string(chat_request_body.size())}}) +
           chat_request_body);
    auto got = read_bounded(c);
    ASSERT_TRUE(got.response) << "no answer: " << got.ended;
    EXPECT_EQ(got.response->status, 502u);
    EXPECT_EQ(got.response->header("X-Llm_proxy-Error").value_or(""), row.kind);
    EXPECT_EQ(code_of(got.body), row.kind) << got.body;

    auto all = records(1);
    ASSERT_EQ(all.size(), 1u);
    const auto& rec = all[0];
    ASSERT_TRUE(rec.contains("error")) << rec.dump(2);
    EXPECT_EQ(rec["error"].value("kind", ""), row.kind) << rec.dump(2);
    EXPECT_FALSE(rec.contains("response")) << rec.dump(2);
    EXPECT_EQ(rec["request"].value("url", ""), row.origin + path);
    expect_follow_up_served(false, 2);
    if (row.origin.starts_with("https")) {
        // The TLS pool is not poisoned either.
        auto d = connect(origin(true));
        const std::string follow = "/v1/models?do=ok&id=" + unique_id("follow-tls");
        d.send(make_head("GET", d.target(follow), d.host_header()));
        auto ok = read_bounded(d);
        ASSERT_TRUE(ok.response) << ok.ended;
        EXPECT_EQ(ok.body, "ok " + follow);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, PeerFaultsReach,
    ::testing::Values(reach_row{"DnsFails", "http://nonexistent.invalid", "dns"},
                      reach_row{"ConnectionRefused", "http://refused.test", "connect"},
                      reach_row{"PlainTextWhereTlsIsExpected", "https://garbage.test", "tls"},
                      reach_row{"ClientCertificateRequiredTls12", "https://certreq12.test", "tls"},
                      reach_row{"ClientCertificateRequiredTls13", "https://certreq13.test", "tls"},
                      reach_row{"UntrustedCertificate", "https://untrusted.test",
                                "tls_verification"}),
    [](const ::testing::TestParamInfo<reach_row>& info) { return info.param.name; });

}  // namespace llm_proxy::test

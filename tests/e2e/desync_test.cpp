// Request smuggling and desync, checked byte for byte. Each classic vector goes to the proxy as
// raw bytes (plain-HTTP absolute-form) with a raw-socket upstream behind it that records every
// byte it receives and parses it strictly (support/raw_upstream.hpp). The proxy either answers
// 400 (or 501) and closes, and the upstream gets nothing of that request; or it forwards
// exactly one unambiguous message (one framing field, no bytes left over) whose body is the
// proxy's reading of the client's. After every vector a new client's request must get its own
// answer: no pooled upstream connection is left out of step. The response side: an upstream
// answer with ambiguous framing is a 502, and that connection is not used again; bytes an
// upstream sends after its response never reach another client.
//
// A subset of the request vectors runs through an intercepted TLS tunnel too (the framing
// fixture's fake upstream, which counts what it parsed).
#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "framing_fixture.hpp"
#include "support/raw_upstream.hpp"

namespace llm_proxy::test {

namespace {

enum class verdict {
    refused,          // 400/501 at once, connection closed, nothing reaches the upstream
    refused_in_body,  // 400 on the body: what was relayed never completes and is closed
    forwarded,        // exactly one unambiguous message with `body`
    pipelined,        // the body ends where the proxy says; the rest is the client's next request
};

struct request_vector {
    std::string name;
    // {T}: the request target, {T2}: another one, {H}: the Host value.
    std::string raw;
    verdict expect;
    unsigned status = 0;    // refused: 400 or 501
    std::string body = {};  // forwarded, pipelined: what the upstream must get as the body
};

void PrintTo(const request_vector& v, std::ostream* os) {
    *os << v.name;
}

const std::string head = "POST {T} HTTP/1.1\r\nHost: {H}\r\n";

std::vector<request_vector> request_vectors() {
    const std::string hello_chunked = "5\r\nhello\r\n0\r\n\r\n";
    const std::string smuggled = "GET {T2} HTTP/1.1\r\nHost: {H}\r\n\r\n";
    const std::string inner = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string nul(1, '\0');
    return {
        // TE and CL together (both orders, and with the TE unknown).
        {"teAndCl", head + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
         verdict::refused, 400},
        {"clAndTe", head + "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX",
         verdict::refused, 400},
        {"xchunkedAndCl", head + "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello",
         verdict::refused, 400},
        // Obfuscated TE.
        {"teXchunked", head + "Transfer-Encoding: xchunked\r\n\r\n" + hello_chunked,
         verdict::refused, 400},
        {"teChunkedIdentity", head + "Transfer-Encoding: chunked, identity\r\n\r\n" + hello_chunked,
         verdict::refused, 400},
        {"teIdentityChunked", head + "Transfer-Encoding: identity, chunked\r\n\r\n" + hello_chunked,
         verdict::refused, 501},
        {"teGzipChunked", head + "Transfer-Encoding: gzip, chunked\r\n\r\n" + hello_chunked,
         verdict::refused, 501},
        {"teChunkedTwice", head + "Transfer-Encoding: chunked, chunked\r\n\r\n" + hello_chunked,
         verdict::refused, 400},
        {"twoTeHeaders",
         head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + hello_chunked,
         verdict::refused, 400},
        {"twoTeHeadersChunkedLast",
         head + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n" + hello_chunked,
         verdict::refused, 501},
        {"teTabsAroundValue", head + "Transfer-Encoding:\tchunked\t\r\n\r\n" + hello_chunked,
         verdict::forwarded, 0, "hello"},
        {"teTabBeforeColon", head + "Transfer-Encoding\t: chunked\r\n\r\n" + hello_chunked,
         verdict::refused, 400},
        {"teSpaceBeforeColon", head + "Transfer-Encoding : chunked\r\n\r\n" + hello_chunked,
         verdict::refused, 400},
        {"teVerticalTab",
         head +
             "Transfer-Encoding: \x0b"
             "chunked\r\n\r\n" +
             hello_chunked,
         verdict::refused, 400},
        {"teInHttp10",
         "POST {T} HTTP/1.0\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n" + hello_chunked,
         verdict::refused, 400},
        // Content-Length: duplicate, signed, malformed.
        {"clDuplicateDiffering", head + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
         verdict::refused, 400},
        {"clDuplicateEqual", head + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
         verdict::forwarded, 0, "hello"},
        {"clListEqual", head + "Content-Length: 5, 5\r\n\r\nhello", verdict::forwarded, 0, "hello"},
        {"clListDiffering", head + "Content-Length: 5, 6\r\n\r\nhello!", verdict::refused, 400},
        {"clPlusSign", head + "Content-Length: +5\r\n\r\nhello", verdict::refused, 400},
        {"clMinusSign", head + "Content-Length: -5\r\n\r\nhello", verdict::refused, 400},
        {"clHex", head + "Content-Length: 0x5\r\n\r\nhello", verdict::refused, 400},
        {"clOverflow", head + "Content-Length: 18446744073709551621\r\n\r\nhello", verdict::refused,
         400},
        {"clSpaceBeforeColon", head + "Content-Length : 5\r\n\r\nhello", verdict::refused, 400},
        // Chunk-size overflow: 2^64 + 5 would be 5 once wrapped.
        {"chunkSizeOverflow",
         head + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" +
             smuggled,
         verdict::refused_in_body, 400},
        // Line endings, folding, NUL.
        {"bareLfHead", "POST {T} HTTP/1.1\nHost: {H}\nContent-Length: 5\n\nhello", verdict::refused,
         400},
        {"bareLfField", head + "X-A: 1\nContent-Length: 5\r\n\r\nhello", verdict::refused, 400},
        {"bareCrField", head + "X-A: 1\rContent-Length: 5\r\n\r\nhello", verdict::refused, 400},
        {"obsFold", head + "X-Folded: a\r\n b\r\nContent-Length: 5\r\n\r\nhello", verdict::refused,
         400},
        {"obsFoldTe", head + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello",
         verdict::refused, 400},
        {"whitespaceLineAfterRequestLine",
         "POST {T} HTTP/1.1\r\n Content-Length: 10\r\nHost: {H}\r\nContent-Length: 5\r\n\r\nhello",
         verdict::refused, 400},
        {"nulInValue", head + "X-A: a" + nul + "b\r\nContent-Length: 5\r\n\r\nhello",
         verdict::refused, 400},
        {"nulInName", head + "X-" + nul + "A: 1\r\nContent-Length: 5\r\n\r\nhello",
         verdict::refused, 400},
        // A body that carries a second request: data of the first, or (after the end the
        // framing says) the client's next request, answered in turn.
        {"clBodyCarriesRequest",
         head + "Content-Length: " + std::to_string(inner.size()) + "\r\n\r\n" + inner,
         verdict::forwarded, 0, inner},
        {"clBodyThenRequest", head + "Content-Length: 5\r\n\r\nhello" + smuggled,
         verdict::pipelined, 0, "hello"},
        {"chunkedThenRequest", head + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
         verdict::pipelined, 0, ""},
    };
}

std::string fill(std::string raw, const std::string& t, const std::string& t2,
                 const std::string& h) {
    for (const auto& [key, value] :
         {std::pair<std::string, std::string>{"{T2}", t2}, {"{T}", t}, {"{H}", h}}) {
        for (auto at = raw.find(key); at != std::string::npos; at = raw.find(key, at)) {
            raw.replace(at, key.size(), value);
            at += value.size();
        }
    }
    return raw;
}

// Requests the upstream parsed whose target contains `marker`.
std::vector<strict_request> requests_with(const std::vector<raw_upstream::connection_log>& logs,
                                          const std::string& marker) {
    std::vector<strict_request> out;
    for (const auto& log : logs) {
        for (const auto& r : log.requests) {
            if (r.target.find(marker) != std::string::npos) {
                out.push_back(r);
            }
        }
    }
    return out;
}

std::size_t count_fields(const header_list& headers, std::string_view name) {
    return static_cast<std::size_t>(std::count_if(headers.begin(), headers.end(), [&](auto& kv) {
        return kv.first.size() == name.size() &&
               std::equal(kv.first.begin(), kv.first.end(), name.begin(), [](char a, char b) {
                   return std::tolower(static_cast<unsigned char>(a)) ==
                          std::tolower(static_cast<unsigned char>(b));
               });
    }));
}

// One unambiguous message for `path`: one framing field at most, the body as expected.
void expect_one_message(const std::vector<raw_upstream::connection_log>& logs,
                        const std::string& path, const std::string& body) {
    auto got = requests_with(logs, path);
    ASSERT_EQ(got.size(), 1u) << "the upstream parsed " << got.size() << " requests for " << path;
    const auto& r = got[0];
    EXPECT_EQ(r.body, body);
    EXPECT_LE(
        count_fields(r.headers, "Content-Length") + count_fields(r.headers, "Transfer-Encoding"),
        1u)
        << r.raw;
    if (!body.empty()) {
        EXPECT_EQ(count_fields(r.headers, "Content-Length") +
                      count_fields(r.headers, "Transfer-Encoding"),
                  1u)
            << r.raw;
    }
}

// No connection the upstream saw is out of step: everything it received parsed strictly.
void expect_upstream_in_step(const std::vector<raw_upstream::connection_log>& logs) {
    for (const auto& log : logs) {
        EXPECT_EQ(log.problem, "") << "the upstream could not parse what the proxy sent:\n"
                                   << log.received;
    }
}

}  // namespace

// The raw upstream and a proxy in front of it, shared by the rows of a suite.
class desync_suite : public framing_suite {
  public:
    static void TearDownTestSuite() {
        proxy_.reset();
        upstream_.reset();
        framing_suite::TearDownTestSuite();
    }

  protected:
    void TearDown() override {
        if (HasFailure()) {
            proxy_.reset();  // a proxy a failed row left out of step fails no other row
        }
        if (upstream_) {
            upstream_->set_responder(raw_upstream::echo_response);
        }
        framing_suite::TearDown();
    }
    static raw_upstream& upstream() {
        if (!upstream_) {
            upstream_ = std::make_unique<raw_upstream>();
        }
        return *upstream_;
    }
    static proxy_process& proxy() {
        upstream();
        if (!proxy_) {
            proxy_ = env().start_proxy({"--no-http-upgrader", "simple"});
        }
        return *proxy_;
    }
    proxied_connection connect_raw_upstream() {
        return proxied_connection(proxy().host(), proxy().port(),
                                  "http://127.0.0.1:" + std::to_string(upstream().port()),
                                  env().proxy_ca(), std::chrono::seconds(30));
    }
    // A new client's request gets its own answer (the upstream echoes the target).
    void expect_follow_up_served() {
        auto c = connect_raw_upstream();
        const std::string path = "/follow?id=" + unique_id("follow");
        c.send(make_head("GET", c.target(path), c.host_header()));
        raw_response r = c.read_final_response();
        EXPECT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.header("X-Echo-Target").value_or(""), path)
            << "the follow-up request got another request's answer: " << r.body;
        EXPECT_FALSE(r.header("X-Smuggled").has_value()) << "a smuggled answer reached a client";
        EXPECT_EQ(r.body, "GET " + path + " 0");
    }

  private:
    static std::unique_ptr<raw_upstream> upstream_;
    static std::unique_ptr<proxy_process> proxy_;
};

std::unique_ptr<raw_upstream> desync_suite::upstream_;
std::unique_ptr<proxy_process> desync_suite::proxy_;

class DesyncRequest : public desync_suite, public ::testing::WithParamInterface<request_vector> {};

TEST_P(DesyncRequest, RefusedOrForwardedAsOneUnambiguousMessage) {
    const auto& v = GetParam();
    auto& up = upstream();
    auto c = connect_raw_upstream();
    const std::string id = unique_id(v.name) + "x";  // no id is a prefix of another
    const std::string path = "/v?id=" + id;
    const std::string path2 = "/smuggled?id=" + id;
    c.try_send(fill(v.raw, c.target(path), c.target(path2), c.host_header()));
    raw_response r;
    try {
        r = c.read_final_response();
    } catch (const std::exception& e) {
        FAIL() << "no answer: " << e.what();
    }
    switch (v.expect) {
        case verdict::refused:
        case verdict::refused_in_body: {
            EXPECT_EQ(r.status, v.status) << r.body;
            EXPECT_TRUE(r.header("X-Llm_proxy-Error").has_value());
            EXPECT_TRUE(c.peer_closed(std::chrono::seconds(30)))
                << "the connection stays open after the " << r.status;
            EXPECT_EQ(c.pending(), "") << "more answers after the " << r.status;
            auto logs = up.connections();
            if (v.expect == verdict::refused) {
                for (const auto& log : logs) {
                    EXPECT_EQ(log.received.find(id), std::string::npos)
                        << "the upstream received bytes of the refused request:\n"
                        << log.received;
                }
            } else {
                // The head may have gone ahead of the body; the message never completes and
                // its connection is closed.
                logs = up.wait_for([&](const auto& all) {
                    return std::all_of(all.begin(), all.end(), [&](const auto& log) {
                        return log.received.find(id) == std::string::npos || log.closed_by_peer;
                    });
                });
                for (const auto& log : logs) {
                    if (log.received.find(id) != std::string::npos) {
                        EXPECT_TRUE(log.closed_by_peer)
                            << "the connection that got part of the refused request stays open";
                    }
                }
                EXPECT_TRUE(requests_with(logs, id).empty())
                    << "the upstream parsed a complete request from the refused one";
            }
            expect_upstream_in_step(logs);
            break;
        }
        case verdict::forwarded: {
            EXPECT_EQ(r.status, 200u) << r.body;
            EXPECT_EQ(r.header("X-Echo-Target").value_or(""), path);
            EXPECT_EQ(r.body, "POST " + path + " " + std::to_string(v.body.size()));
            auto logs =
                up.wait_for([&](const auto& all) { return !requests_with(all, id).empty(); });
            expect_one_message(logs, path, v.body);
            EXPECT_TRUE(requests_with(logs, path2).empty());
            expect_upstream_in_step(logs);
            break;
        }
        case verdict::pipelined: {
            EXPECT_EQ(r.status, 200u) << r.body;
            EXPECT_EQ(r.header("X-Echo-Target").value_or(""), path);
            raw_response second;
            try {
                second = c.read_final_response();
            } catch (const std::exception& e) {
                FAIL() << "no answer to the pipelined request: " << e.what();
            }
            EXPECT_EQ(second.status, 200u) << second.body;
            EXPECT_EQ(second.header("X-Echo-Target").value_or(""), path2);
            auto logs =
                up.wait_for([&](const auto& all) { return requests_with(all, id).size() >= 2; });
            expect_one_message(logs, path, v.body);
            expect_one_message(logs, path2, "");
            expect_upstream_in_step(logs);
            break;
        }
    }
    expect_follow_up_served();
}

INSTANTIATE_TEST_SUITE_P(Vectors, DesyncRequest, ::testing::ValuesIn(request_vectors()),
                         [](const ::testing::TestParamInfo<request_vector>& info) {
                             return info.param.name;
                         });

// ---- The response side.

struct response_vector {
    std::string name;
    std::string raw;        // what the upstream answers
    bool bad_gateway;       // true: 502 (or a response cut off); false: the first message relayed
    std::string late = {};  // bytes the upstream sends after the client got its answer
};

void PrintTo(const response_vector& v, std::ostream* os) {
    *os << v.name;
}

std::vector<response_vector> response_vectors() {
    const std::string smuggled = "HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\nContent-Length: 3\r\n\r\nbad";
    return {
        {"teAndCl",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
             smuggled,
         true},
        {"clAndTe",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" +
             smuggled,
         true},
        {"clDuplicateDiffering",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 8\r\n\r\nhello" + smuggled, true},
        {"clPlusSign", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", true},
        {"clSpaceBeforeColon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello", true},
        {"bareLf", "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", true},
        {"nulInValue",
         "HTTP/1.1 200 OK\r\nX-A: a" + std::string(1, '\0') + "b\r\nContent-Length: 5\r\n\r\nhello",
         true},
        {"chunkSizeOverflow",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
         "chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" +
             smuggled,
         true},
        {"secondResponseInTheSameWrite",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + smuggled, false},
        {"secondResponseLate", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false,
         smuggled},
    };
}

class DesyncResponse : public desync_suite,
                       public ::testing::WithParamInterface<response_vector> {};

TEST_P(DesyncResponse, AmbiguousAnswersAre502AndNoAnswerReachesAnotherClient) {
    const auto& v = GetParam();
    auto& up = upstream();
    const std::string id = unique_id(v.name) + "x";  // no id is a prefix of another
    up.set_responder([id, raw = v.raw](const strict_request& r) {
        return r.target.find(id) != std::string::npos ? raw : raw_upstream::echo_response(r);
    });
    auto c = connect_raw_upstream();
    const std::string path = "/r?id=" + id;
    c.send(make_head("GET", c.target(path), c.host_header()));
    std::optional<raw_response> r;
    std::string broken;
    try {
        r = c.read_final_response();
    } catch (const std::exception& e) {
        broken = e.what();
    }
    if (v.bad_gateway) {
        // A 502, or (once the head was relayed) a body cut off by closing the connection.
        if (r) {
            EXPECT_EQ(r->status, 502u) << r->body;
        }
        EXPECT_TRUE(r || !broken.empty());
    } else {
        ASSERT_TRUE(r) << broken;
        EXPECT_EQ(r->status, 200u);
        EXPECT_EQ(r->body, "hello");
        EXPECT_FALSE(r->header("X-Smuggled").has_value());
    }
    if (!v.late.empty()) {
        ASSERT_TRUE(up.send_late(id, v.late)) << "the upstream connection is gone";
    }
    expect_follow_up_served();
    if (v.bad_gateway || !v.late.empty() || v.raw.find("X-Smuggled") != std::string::npos) {
        // That connection is not used again: the proxy closes it.
        auto logs = up.wait_for([&](const auto& all) {
            return std::all_of(all.begin(), all.end(), [&](const auto& log) {
                return requests_with({log}, id).empty() || log.closed_by_peer;
            });
        });
        for (const auto& log : logs) {
            if (!requests_with({log}, id).empty()) {
                EXPECT_TRUE(log.closed_by_peer)
                    << "the connection that sent the ambiguous answer is still open";
                EXPECT_NE(log.requests.back().target.find(id), std::string::npos)
                    << "the connection that sent the ambiguous answer served another request";
            }
        }
    }
    expect_upstream_in_step(up.connections());
}

INSTANTIATE_TEST_SUITE_P(Vectors, DesyncResponse, ::testing::ValuesIn(response_vectors()),
                         [](const ::testing::TestParamInfo<response_vector>& info) {
                             return info.param.name;
                         });

// ---- Head size bounds (proxy_config::max_header_bytes, 64 KiB): a head counts every byte from
// the request or status line to the empty line that ends it, CRLF included.

namespace {

constexpr std::size_t max_head = 64 * 1024;

// `head_start` ("GET ... HTTP/1.1\r\nHost: ...\r\n"), an X-Pad field and the empty line: a head
// of exactly `size` bytes.
std::string padded_head(const std::string& head_start, std::size_t size) {
    const std::string name = "X-Pad: ";
    EXPECT_GT(size, head_start.size() + name.size() + 4);
    std::string out = head_start + name +
                      std::string(size - head_start.size() - name.size() - 4, 'p') + "\r\n\r\n";
    EXPECT_EQ(out.size(), size);
    return out;
}

// The X-Pad field's value in a head made by padded_head().
std::size_t pad_value_size(const std::string& head) {
    return head.size() - head.find("X-Pad: ") - 7 - 4;
}

}  // namespace

class HeadBound : public desync_suite {
  protected:
    // Sends a GET whose head is `size` bytes; returns the answer, the path and the head.
    raw_response send_padded_request(proxied_connection& c, std::size_t size,
                                     const std::string& path, std::string& head) {
        head = padded_head(
            "GET " + c.target(path) + " HTTP/1.1\r\nHost: " + c.host_header() + "\r\n", size);
        c.send(head);
        return c.read_final_response();
    }
    // Makes the upstream answer requests for `id` with a response head of `size` bytes and the
    // body "hello"; returns the head.
    std::string answer_with_padded_head(const std::string& id, std::size_t size) {
        const std::string head = padded_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", size);
        upstream().set_responder([id, answer = head + "hello"](const strict_request& r) {
            return r.target.find(id) != std::string::npos ? answer : raw_upstream::echo_response(r);
        });
        return head;
    }
};

TEST_F(HeadBound, RequestHeadUpToTheBoundIsRelayedAndTheConnectionServesTheNext) {
    for (std::size_t size : {max_head - 1, max_head}) {
        SCOPED_TRACE("request head of " + std::to_string(size) + " bytes");
        auto c = connect_raw_upstream();
        const std::string id = unique_id("reqhead" + std::to_string(size)) + "x";
        const std::string path = "/h?id=" + id;
        std::string head;
        raw_response r = send_padded_request(c, size, path, head);
        EXPECT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.header("X-Echo-Target").value_or(""), path);
        auto logs =
            upstream().wait_for([&](const auto& all) { return !requests_with(all, id).empty(); });
        auto got = requests_with(logs, id);
        ASSERT_EQ(got.size(), 1u);
        std::size_t pad = 0;
        for (const auto& [name, value] : got[0].headers) {
            if (name == "X-Pad") {
                pad = value.size();
            }
        }
        EXPECT_EQ(pad, pad_value_size(head)) << "the padding did not reach the upstream whole";
        // The same connection serves the next request.
        const std::string path2 = "/h2?id=" + id;
        c.send(make_head("GET", c.target(path2), c.host_header()));
        raw_response second = c.read_final_response();
        EXPECT_EQ(second.status, 200u) << second.body;
        EXPECT_EQ(second.header("X-Echo-Target").value_or(""), path2);
        EXPECT_EQ(second.body, "GET " + path2 + " 0");
        expect_upstream_in_step(upstream().connections());
    }
}

// One byte past the bound: 431, closed, nothing sent upstream. (Beast's header_limit does not
// count the request line: checking only with it let heads of up to 65,583 bytes through.)
TEST_F(HeadBound, RequestHeadOnePastTheBoundIs431AndClosed) {
    auto c = connect_raw_upstream();
    const std::string id = unique_id("reqhead-over") + "x";
    std::string head;
    raw_response r = send_padded_request(c, max_head + 1, "/h?id=" + id, head);
    EXPECT_EQ(r.status, 431u) << r.body;
    EXPECT_EQ(r.header("Content-Type").value_or(""), "application/json");
    if (r.status == 431u) {
        EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "request_header_fields_too_large")
            << r.body;
    }
    EXPECT_TRUE(c.peer_closed(std::chrono::seconds(10))) << "the connection stays open";
    EXPECT_EQ(c.pending(), "");
    for (const auto& log : upstream().connections()) {
        EXPECT_EQ(log.received.find(id), std::string::npos)
            << "the upstream received bytes of the refused request";
    }
    expect_follow_up_served();
}

TEST_F(HeadBound, ResponseHeadUpToTheBoundIsRelayed) {
    for (std::size_t size : {max_head - 1, max_head}) {
        SCOPED_TRACE("response head of " + std::to_string(size) + " bytes");
        const std::string id = unique_id("resphead" + std::to_string(size)) + "x";
        const std::string head = answer_with_padded_head(id, size);
        auto c = connect_raw_upstream();
        c.send(make_head("GET", c.target("/r?id=" + id), c.host_header()));
        raw_response r = c.read_final_response();
        EXPECT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.body, "hello");
        EXPECT_EQ(r.header("X-Pad").value_or("").size(), pad_value_size(head));
        // The same client connection serves the next request, from the upstream's echo.
        const std::string path2 = "/r2?id=" + unique_id("next") + "x";
        c.send(make_head("GET", c.target(path2), c.host_header()));
        raw_response second = c.read_final_response();
        EXPECT_EQ(second.status, 200u) << second.body;
        EXPECT_EQ(second.header("X-Echo-Target").value_or(""), path2);
        expect_upstream_in_step(upstream().connections());
    }
}

// One byte past the bound: 502 and the upstream connection closed. (Beast's header_limit does
// not count the status line: checking only with it let heads of up to 65,572 bytes through.)
TEST_F(HeadBound, ResponseHeadOnePastTheBoundIs502AndNotReused) {
    const std::string id = unique_id("resphead-over") + "x";
    answer_with_padded_head(id, max_head + 1);
    auto c = connect_raw_upstream();
    c.send(make_head("GET", c.target("/r?id=" + id), c.host_header()));
    raw_response r = c.read_final_response();
    EXPECT_EQ(r.status, 502u) << r.body;
    if (r.status == 502u) {
        EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "bad_upstream_response")
            << r.body;
    }
    // The upstream connection that sent it is closed, not used again.
    auto logs = upstream().wait_for([&](const auto& all) {
        return std::all_of(all.begin(), all.end(), [&](const auto& log) {
            return requests_with({log}, id).empty() || log.closed_by_peer;
        });
    });
    for (const auto& log : logs) {
        if (!requests_with({log}, id).empty()) {
            EXPECT_TRUE(log.closed_by_peer) << "the upstream connection stays open";
            EXPECT_NE(log.requests.back().target.find(id), std::string::npos)
                << "the upstream connection served another request";
        }
    }
    expect_follow_up_served();
}

// ---- A subset of the refused request vectors inside an intercepted TLS tunnel.

class DesyncTls : public framing_suite, public ::testing::WithParamInterface<request_vector> {};

TEST_P(DesyncTls, RefusedAndNothingReachesTheUpstream) {
    const auto& v = GetParam();
    auto& proxy = env().shared_proxy(proxy_kind::simple);
    auto& up = env().upstream();
    up.reset_stats();
    auto c = connect(proxy, "https://api.openai.com");
    const std::string id = unique_id(v.name) + "x";  // no id is a prefix of another
    const std::string path = "/echo?id=" + id;
    const std::string path2 = "/echo?id=" + id + "-smuggled";
    c.try_send(fill(v.raw, c.target(path), c.target(path2), c.host_header()));
    raw_response r;
    try {
        r = c.read_final_response();
    } catch (const std::exception& e) {
        FAIL() << "no answer: " << e.what();
    }
    EXPECT_EQ(r.status, v.status) << r.body;
    EXPECT_TRUE(c.peer_closed(std::chrono::seconds(30)));
    EXPECT_EQ(c.pending(), "");
    const auto stats = up.stats();
    for (const auto& seen : sorted_requests_seen(stats)) {
        EXPECT_EQ(seen.find(id), std::string::npos) << "the upstream got " << seen;
    }
    EXPECT_EQ(stats.value("bad_requests", -1), 0) << stats.value("last_bad_request", "");
    auto follow = connect(proxy, "https://api.openai.com");
    expect_own_echo(follow, unique_id("after-" + v.name));
}

std::vector<request_vector> tls_subset() {
    std::vector<request_vector> out;
    for (auto& v : request_vectors()) {
        for (const char* name :
             {"teAndCl", "teIdentityChunked", "twoTeHeaders", "teSpaceBeforeColon", "teInHttp10",
              "clDuplicateDiffering", "clPlusSign", "bareLfField", "obsFold", "nulInValue"}) {
            if (v.name == name) {
                out.push_back(v);
            }
        }
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(Vectors, DesyncTls, ::testing::ValuesIn(tls_subset()),
                         [](const ::testing::TestParamInfo<request_vector>& info) {
                             return info.param.name;
                         });

}  // namespace llm_proxy::test

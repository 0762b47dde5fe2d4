// dir_logger's flags and record content, end to end.
#include <sys/stat.h>

#include <map>

#include "e2e_fixture.hpp"
#include "llm_proxy/record/body_decoder.hpp"
#include "llm_proxy/util/text.hpp"
#include "support/body_stream.hpp"
#include "support/fake_upstream/pattern.hpp"
#include "support/proxied_connection.hpp"
#include "support/raw_socket.hpp"

namespace llm_proxy::test {

class DirLogger : public e2e_test {
  protected:
    void post_chat(const header_list& extra = {}) {
        auto client = proxied_client();
        header_list h = {{"Content-Type", "application/json"},
                         {"Authorization", "Bearer sk-secret"},
                         {"X-Custom", "visible"}};
        h.insert(h.end(), extra.begin(), extra.end());
        auto r = client.post(
            "https://api.openai.com/v1/chat/completions",
            R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})", h);
        ASSERT_EQ(r.status, 200u);
    }
};

TEST_F(DirLogger, RecordMatchesTheSchemaAndIsPrivate) {
    start_dir_logger();
    post_chat();
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    auto& rec = records[0];
    EXPECT_EQ(rec["schema"], "v2");
    EXPECT_EQ(rec["request"]["proto"], "HTTP/1.1");
    EXPECT_EQ(rec["request"]["header"]["X-Custom"][0], "visible");
    EXPECT_FALSE(rec["request"]["header"].contains("Authorization"));
    EXPECT_EQ(nlohmann::json::parse(rec["request"]["body"].get<std::string>())["model"],
              "gpt-4o-mini");
    auto resp = nlohmann::json::parse(rec["response"]["body"].get<std::string>());
    EXPECT_EQ(resp["object"], "chat.completion");
    EXPECT_TRUE(rec["connection_stats"].contains("proxy_id"));
    EXPECT_TRUE(rec["connection_stats"]["duration_ms"].is_number());
    // Files are named <flow-id>.json and readable by the owner only.
    for (const auto& e : std::filesystem::directory_iterator(log_dir())) {
        struct stat st {};
        ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600) << e.path();
        EXPECT_EQ(e.path().stem().string().size(), 36u) << e.path();
    }
}

// -o/--output and the record flags belong to every proxying subcommand, not only dir_logger.
TEST_F(DirLogger, SimpleWritesRecordsWithOutputAndNoneWithout) {
    start_proxy({"simple"});
    post_chat();
    EXPECT_FALSE(std::filesystem::exists(log_dir()));
    proxy_->stop();
    start_proxy({"simple", "-o", log_dir().string(), "--max-body-log", "10"});
    post_chat();
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["request"]["body"].get<std::string>().size(), 10u);
    EXPECT_EQ(records[0]["request"]["body_truncated"], true);
}

TEST_F(DirLogger, NoLogFlagsLeaveOutWhatTheySay) {
    start_dir_logger({"--no-log-connection-stats", "--no-log-req-headers", "--no-log-req-body",
                      "--no-log-resp-headers", "--no-log-resp-body"});
    post_chat();
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    auto& rec = records[0];
    EXPECT_FALSE(rec.contains("connection_stats"));
    EXPECT_TRUE(rec["request"]["header"].is_null());
    EXPECT_EQ(rec["request"]["body"], "");
    EXPECT_TRUE(rec["response"]["header"].is_null());
    EXPECT_EQ(rec["response"]["body"], "");
    EXPECT_EQ(rec["response"]["status"], 200);
}

TEST_F(DirLogger, FilterListsReplaceTheDefaults) {
    start_dir_logger({"--filter-req-headers", "X-Custom,Content-Type", "--filter-resp-headers",
                      "X-Fake-Upstream"});
    post_chat();
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    auto& req_headers = records[0]["request"]["header"];
    EXPECT_FALSE(req_headers.contains("X-Custom"));
    EXPECT_FALSE(req_headers.contains("Content-Type"));
    EXPECT_TRUE(req_headers.contains("Authorization"));  // no longer in the (replaced) list
    EXPECT_FALSE(records[0]["response"]["header"].contains("X-Fake-Upstream"));
    EXPECT_TRUE(records[0]["response"]["header"].contains("Content-Type"));
}

TEST_F(DirLogger, CompressedBodiesAreLoggedDecodedAndClientGetsThemAsSent) {
    start_dir_logger();
    auto client = proxied_client();
    auto r = client.get("https://api.openai.com/gzip", {{"Accept-Encoding", "gzip"}});
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.header("Content-Encoding").value_or(""), "gzip");
    EXPECT_EQ(static_cast<unsigned char>(r.body[0]), 0x1f);  // still gzip on the wire
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    auto body = nlohmann::json::parse(records[0]["response"]["body"].get<std::string>());
    EXPECT_EQ(body["gzipped"], true);
}

TEST_F(DirLogger, BinaryBodiesAreBase64AndLongOnesTruncated) {
    start_dir_logger({"--max-body-log", "1K"});
    auto client = proxied_client();
    auto r = client.get("https://api.openai.com/download?bytes=5000");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body.size(), 5000u);  // the client gets everything
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    auto& resp = records[0]["response"];
    EXPECT_EQ(resp["body_encoding"], "base64");
    EXPECT_EQ(resp["body_truncated"], true);
    EXPECT_EQ(resp["body_size"], 5000);
    EXPECT_LE(resp["body"].get<std::string>().size(), 4 * 1024 / 3 + 4);
}

namespace {

// Records by their request URL.
std::map<std::string, nlohmann::json> records_by_url(const std::vector<nlohmann::json>& records) {
    std::map<std::string, nlohmann::json> out;
    for (const auto& rec : records) {
        out[rec["request"]["url"].get<std::string>()] = rec;
    }
    return out;
}

}  // namespace

// --max-body-log at its edge, request bodies: 999 and 1,000 bytes are recorded whole, 1,001 is
// cut to 1,000 with body_truncated and body_size, in Content-Length and chunked framing; the
// upstream gets every byte each time, and all six go over one intercepted client connection.
TEST_F(DirLogger, RequestBodyIsLoggedWholeUpToMaxBodyLogAndCutPastIt) {
    start_dir_logger({"--max-body-log", "1000"});
    proxied_connection c(proxy_->host(), proxy_->port(), "https://api.openai.com",
                         proxy_ca_cert().string(), std::chrono::seconds(10));
    std::map<std::string, std::string> sent;  // url -> body
    for (bool chunked : {false, true}) {
        for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
            const std::string tag =
                std::string(chunked ? "chunked-" : "length-") + std::to_string(size);
            std::string body(size, '\0');
            for (std::size_t i = 0; i < size; ++i) {
                body[i] = static_cast<char>('a' + (i * 7 + size + chunked) % 26);
            }
            body.back() = '!';  // the byte past the bound, for 1,001
            const std::string path = "/echo?id=" + tag;
            header_list h = {{"Content-Type", "text/plain"}};
            if (chunked) {
                h.emplace_back("Transfer-Encoding", "chunked");
            } else {
                h.emplace_back("Content-Length", std::to_string(size));
            }
            c.send(make_head("POST", c.target(path), c.host_header(), h) +
                   (chunked ? encode_chunked(body, 300) : body));
            const raw_response r = c.read_final_response();
            ASSERT_EQ(r.status, 200u) << tag;
            ASSERT_TRUE(r.keep_alive()) << tag;
            const auto echo = nlohmann::json::parse(r.body);
            EXPECT_EQ(echo["body"].get<std::string>(), body) << tag << ": upstream got other bytes";
            sent["https://api.openai.com" + path] = body;
        }
    }
    auto records = wait_for_records(sent.size());
    ASSERT_EQ(records.size(), sent.size());
    auto by_url = records_by_url(records);
    for (const auto& [url, body] : sent) {
        ASSERT_TRUE(by_url.contains(url)) << url;
        const auto& req = by_url[url]["request"];
        if (body.size() <= 1000) {
            EXPECT_EQ(req["body"].get<std::string>(), body) << url;
            EXPECT_FALSE(req.contains("body_truncated")) << url;
            EXPECT_FALSE(req.contains("body_size")) << url;
        } else {
            EXPECT_EQ(req["body"].get<std::string>(), body.substr(0, 1000)) << url;
            EXPECT_EQ(req["body_truncated"], true) << url;
            EXPECT_EQ(req["body_size"], body.size()) << url;
        }
        EXPECT_FALSE(req.contains("body_encoding")) << url;
    }
}

// --max-body-log at its edge, response bodies (binary, so base64 in the record): 999 and 1,000
// bytes whole, 1,001 cut to 1,000 with body_truncated and body_size, with the upstream's
// Content-Length and chunked framing (written 300 bytes at a time); the client gets every byte,
// and all six go over one intercepted client connection.
TEST_F(DirLogger, ResponseBodyIsLoggedWholeUpToMaxBodyLogAndCutPastIt) {
    start_dir_logger({"--max-body-log", "1000"});
    proxied_connection c(proxy_->host(), proxy_->port(), "https://api.openai.com",
                         proxy_ca_cert().string(), std::chrono::seconds(10));
    std::map<std::string, std::size_t> sizes;  // url -> size
    for (const char* framing : {"length", "chunked"}) {
        for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
            const std::string path =
                "/download?bytes=" + std::to_string(size) + "&framing=" + framing + "&piece=300";
            c.send(make_head("GET", c.target(path), c.host_header()));
            const raw_response r = c.read_final_response();
            ASSERT_EQ(r.status, 200u) << path;
            ASSERT_TRUE(r.keep_alive()) << path;
            EXPECT_EQ(r.framing, std::string_view(framing) == "length"
                                     ? raw_response::body_framing::length
                                     : raw_response::body_framing::chunked)
                << path;
            ASSERT_EQ(r.body.size(), size) << path;
            EXPECT_TRUE(check_pattern(r.body.data(), r.body.size(), 0)) << path;
            sizes["https://api.openai.com" + path] = size;
        }
    }
    auto records = wait_for_records(sizes.size());
    ASSERT_EQ(records.size(), sizes.size());
    auto by_url = records_by_url(records);
    for (const auto& [url, size] : sizes) {
        ASSERT_TRUE(by_url.contains(url)) << url;
        const auto& resp = by_url[url]["response"];
        EXPECT_EQ(resp["body_encoding"], "base64") << url;
        auto logged = base64_decode(resp["body"].get<std::string>());
        ASSERT_TRUE(logged.has_value()) << url;
        const std::size_t kept = std::min<std::size_t>(size, 1000);
        ASSERT_EQ(logged->size(), kept) << url;
        EXPECT_TRUE(check_pattern(logged->data(), logged->size(), 0)) << url;
        if (size <= 1000) {
            EXPECT_FALSE(resp.contains("body_truncated")) << url;
            EXPECT_FALSE(resp.contains("body_size")) << url;
        } else {
            EXPECT_EQ(resp["body_truncated"], true) << url;
            EXPECT_EQ(resp["body_size"], size) << url;
        }
    }
}

// --max-body-log bounds the decoded body of a compressed response: gzip bodies decoding to 999
// and 1,000 bytes are recorded whole, one decoding to 1,001 is cut to 1,000 with body_truncated,
// although all three are far below the bound as sent; the client gets them compressed, whole.
TEST_F(DirLogger, CompressedResponseIsLoggedDecodedUpToMaxBodyLog) {
    for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
        const std::string name = "text" + std::to_string(size);
        work_.write_file("replay/" + name + "/meta.json",
                         R"({"status":200,"content_type":"text/plain"})");
        work_.write_file("replay/" + name + "/response.bin", std::string(size - 1, 'r') + "!");
    }
    upstream_ = std::make_unique<fake_upstream>(
        pki_, std::vector<std::string>{"--replay-dir", (work_ / "replay").string()});
    start_dir_logger({"--max-body-log", "1000"});
    auto client = proxied_client();
    std::map<std::size_t, std::size_t> wire;  // decoded size -> bytes on the wire
    for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
        const std::string name = "text" + std::to_string(size);
        auto r = client.get(
            "https://api.openai.com/replay/" + name,
            {{"X-Fake-Replay", name}, {"X-Fake-Replay-Gzip", "1"}, {"Accept-Encoding", "gzip"}});
        ASSERT_EQ(r.status, 200u) << name;
        EXPECT_EQ(r.header("Content-Encoding").value_or(""), "gzip") << name;
        EXPECT_LT(r.body.size(), 200u) << name;
        const auto decoded = record::decode_body("gzip", r.body, 1 << 20);
        ASSERT_TRUE(decoded.ok) << name;
        EXPECT_EQ(decoded.data, std::string(size - 1, 'r') + "!") << name;
        wire[size] = r.body.size();
    }
    auto records = wait_for_records(3);
    ASSERT_EQ(records.size(), 3u);
    auto by_url = records_by_url(records);
    for (std::size_t size : {std::size_t{999}, std::size_t{1000}, std::size_t{1001}}) {
        const std::string url = "https://api.openai.com/replay/text" + std::to_string(size);
        ASSERT_TRUE(by_url.contains(url)) << url;
        const auto& resp = by_url[url]["response"];
        const std::string whole = std::string(size - 1, 'r') + "!";
        EXPECT_FALSE(resp.contains("body_encoding")) << url;
        if (size <= 1000) {
            EXPECT_EQ(resp["body"].get<std::string>(), whole) << url;
            EXPECT_FALSE(resp.contains("body_truncated")) << url;
        } else {
            EXPECT_EQ(resp["body"].get<std::string>(), whole.substr(0, 1000)) << url;
            EXPECT_EQ(resp["body_truncated"], true) << url;
            EXPECT_EQ(resp["body_size"], wire[size]) << url << ": the bytes on the wire";
        }
    }
}

// Requests refused before they are relayed leave a record: the status sent, the error kind,
// the client, and what was parsed (the fields as received) or, when the head could not be
// parsed, its first bytes (filtered like headers, valid UTF-8).
TEST_F(DirLogger, RejectedRequestsAreRecorded) {
    start_dir_logger();
    auto status_of = [&](std::string raw) {
        return raw_exchange(proxy_->host(), proxy_->port(), std::move(raw),
                            std::chrono::seconds(10))
            .substr(0, 12);
    };
    const std::string folded =
        "GET http://api.openai.com/v1/models HTTP/1.1\r\nHost: api.openai.com\r\n"
        "Authorization: Bearer sk-secret\r\nX-Bin: \xff\r\nX-Folded: a\r\n b\r\n\r\n";
    EXPECT_EQ(status_of(folded), "HTTP/1.1 400");
    EXPECT_EQ(status_of("POST http://api.openai.com/v1/chat/completions HTTP/1.1\r\n"
                        "Host: api.openai.com\r\nTransfer-Encoding: gzip, chunked\r\n"
                        "X-Marker: two\r\n\r\n0\r\n\r\n"),
              "HTTP/1.1 501");
    EXPECT_EQ(status_of("GET http://api.openai.com/ HTTP/1.1\r\nX-Big: " +
                        std::string(70 * 1024, 'a') + "\r\n\r\n"),
              "HTTP/1.1 431");
    EXPECT_EQ(status_of("GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n"), "HTTP/1.1 400");
    auto records = wait_for_records(4);
    ASSERT_EQ(records.size(), 4u);
    std::map<std::string, nlohmann::json> by_marker;
    for (auto& rec : records) {
        ASSERT_TRUE(rec.contains("rejected")) << rec.dump(2);
        EXPECT_FALSE(rec.contains("response")) << rec.dump(2);
        EXPECT_EQ(rec["schema"], "v2");
        EXPECT_TRUE(
            rec["connection_stats"]["client_address"].get<std::string>().starts_with("127.0.0.1:"));
        by_marker[std::to_string(rec["rejected"]["status"].get<int>()) + " " +
                  rec["error"]["kind"].get<std::string>() +
                  (rec["rejected"].contains("target") ? " parsed" : " raw")] = rec;
    }

    auto& fold = by_marker["400 bad_request raw"];
    ASSERT_TRUE(fold.is_object()) << nlohmann::json(records).dump(2);
    EXPECT_NE(fold["error"]["message"].get<std::string>().find("obsolete line folding"),
              std::string::npos);
    const auto raw = fold["rejected"]["raw_head"].get<std::string>();
    EXPECT_TRUE(raw.starts_with("GET http://api.openai.com/v1/models HTTP/1.1\r\n")) << raw;
    EXPECT_NE(raw.find("X-Folded: a\r\n b\r\n"), std::string::npos) << raw;
    EXPECT_NE(raw.find("Authorization: [filtered]\r\n"), std::string::npos) << raw;
    EXPECT_EQ(raw.find("sk-secret"), std::string::npos) << raw;
    EXPECT_NE(raw.find("X-Bin: \xef\xbf\xbd"), std::string::npos) << "invalid UTF-8 not replaced";
    EXPECT_FALSE(fold["rejected"].contains("raw_head_truncated"));

    auto& coding = by_marker["501 not_implemented parsed"];
    ASSERT_TRUE(coding.is_object()) << nlohmann::json(records).dump(2);
    EXPECT_EQ(coding["rejected"]["target"], "http://api.openai.com/v1/chat/completions");
    EXPECT_EQ(coding["request"]["method"], "POST");
    EXPECT_EQ(coding["request"]["url"], "http://api.openai.com/v1/chat/completions");
    EXPECT_EQ(coding["request"]["header"]["Transfer-Encoding"][0], "gzip, chunked");
    EXPECT_EQ(coding["request"]["header"]["X-Marker"][0], "two");
    EXPECT_FALSE(coding["rejected"].contains("raw_head"));

    auto& big = by_marker["431 request_header_fields_too_large raw"];
    ASSERT_TRUE(big.is_object()) << nlohmann::json(records).dump(2);
    EXPECT_EQ(big["rejected"]["raw_head_truncated"], true);
    const auto big_raw = big["rejected"]["raw_head"].get<std::string>();
    EXPECT_EQ(big_raw.size(), 2048u);
    EXPECT_TRUE(big_raw.starts_with("GET http://api.openai.com/ HTTP/1.1\r\nX-Big: aaa"));

    auto& origin = by_marker["400 bad_request parsed"];
    ASSERT_TRUE(origin.is_object()) << nlohmann::json(records).dump(2);
    EXPECT_EQ(origin["rejected"]["target"], "/v1/models");
    EXPECT_EQ(origin["request"]["method"], "GET");
    EXPECT_FALSE(origin["request"].contains("url"));
    EXPECT_EQ(origin["request"]["header"]["Host"][0], "api.openai.com");
}

// The raw head of a refused request is kept up to rejection::max_raw_head (2,048) bytes:
// raw_head_truncated only past it.
TEST_F(DirLogger, RefusedRawHeadIsKeptUpToItsBound) {
    start_dir_logger();
    std::map<std::string, std::string> sent;  // marker -> head
    for (std::size_t size : {std::size_t{2047}, std::size_t{2048}, std::size_t{2049}}) {
        const std::string marker = "n" + std::to_string(size);
        // An obs-fold makes the head unparseable: 400, recorded with its raw bytes.
        std::string head = "GET http://api.openai.com/ HTTP/1.1\r\nX-Marker: " + marker +
                           "\r\nX-Folded: a\r\n b\r\nX-Pad: ";
        head += std::string(size - head.size() - 4, 'p') + "\r\n\r\n";
        ASSERT_EQ(head.size(), size);
        EXPECT_EQ(raw_exchange(proxy_->host(), proxy_->port(), head, std::chrono::seconds(10))
                      .substr(0, 12),
                  "HTTP/1.1 400");
        sent[marker] = head;
    }
    auto records = wait_for_records(3);
    ASSERT_EQ(records.size(), 3u);
    std::size_t checked = 0;
    for (const auto& [marker, head] : sent) {
        for (const auto& rec : records) {
            const auto raw = rec["rejected"].value("raw_head", std::string());
            if (raw.find("X-Marker: " + marker + "\r\n") == std::string::npos) {
                continue;
            }
            SCOPED_TRACE(marker);
            ++checked;
            const bool over = head.size() > 2048;
            EXPECT_EQ(raw.size(), over ? 2048u : head.size());
            EXPECT_TRUE(raw == head.substr(0, 2048)) << "the raw head is not the head's start";
            if (over) {
                EXPECT_EQ(rec["rejected"]["raw_head_truncated"], true);
            } else {
                EXPECT_FALSE(rec["rejected"].contains("raw_head_truncated")) << rec.dump(2);
            }
        }
    }
    EXPECT_EQ(checked, 3u) << nlohmann::json(records).dump(2);
}

// A 407 is recorded without the credentials that were sent, whatever the filter lists say;
// so is a malformed head that carries them.
TEST_F(DirLogger, RejectedProxyAuthIsRecordedWithoutCredentials) {
    start_dir_logger({"--proxy-auth", "alice:s3cret", "--filter-req-headers", "X-Nothing"});
    const std::string wrong = base64_encode("alice:wrong-password");
    auto status_of = [&](std::string raw) {
        return raw_exchange(proxy_->host(), proxy_->port(), std::move(raw),
                            std::chrono::seconds(10))
            .substr(0, 12);
    };
    EXPECT_EQ(status_of("GET http://api.openai.com/echo HTTP/1.1\r\nHost: api.openai.com\r\n"
                        "Proxy-Authorization: Basic " +
                        wrong + "\r\nX-Marker: wrong\r\n\r\n"),
              "HTTP/1.1 407");
    EXPECT_EQ(status_of("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
                        "X-Marker: missing\r\n\r\n"),
              "HTTP/1.1 407");
    EXPECT_EQ(status_of("GET http://api.openai.com/echo HTTP/1.1\r\nHost: api.openai.com\r\n"
                        "Proxy-Authorization: Basic " +
                        wrong + "\r\n  folded\r\nX-Marker: malformed\r\n\r\n"),
              "HTTP/1.1 400");
    auto records = wait_for_records(3);
    ASSERT_EQ(records.size(), 3u);
    int auth = 0;
    for (auto& rec : records) {
        const auto text = rec.dump();
        EXPECT_EQ(text.find(wrong), std::string::npos) << rec.dump(2);
        EXPECT_EQ(text.find("folded"), std::string::npos) << "a folded credential line was kept";
        if (rec["rejected"]["status"] == 407) {
            ++auth;
            EXPECT_EQ(rec["error"]["kind"], "proxy_auth_required");
            EXPECT_FALSE(rec["request"]["header"].contains("Proxy-Authorization"));
            EXPECT_TRUE(rec["request"]["header"].contains("X-Marker")) << rec.dump(2);
        } else {
            EXPECT_EQ(rec["error"]["kind"], "bad_request");
            EXPECT_NE(rec["rejected"]["raw_head"].get<std::string>().find(
                          "Proxy-Authorization: [filtered]\r\nX-Marker: malformed"),
                      std::string::npos)
                << rec.dump(2);
        }
    }
    EXPECT_EQ(auth, 2);
}

// A head that stops arriving gets a 408 and a record of what had come.
TEST_F(DirLogger, RequestTimeoutIsRecorded) {
    start_dir_logger({"--idle-timeout", "1"});
    unique_fd fd(connect_raw(proxy_->host(), proxy_->port()));
    const std::string partial = "GET http://api.openai.com/v1/models HTTP/1.1\r\nHo";
    ASSERT_TRUE(send_all(fd.get(), partial));
    EXPECT_EQ(recv_until_close(fd.get(), std::chrono::seconds(10)).substr(0, 12), "HTTP/1.1 408");
    auto records = wait_for_records(1);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["error"]["kind"], "request_timeout");
    EXPECT_EQ(records[0]["rejected"]["status"], 408);
    EXPECT_EQ(records[0]["rejected"]["raw_head"], partial);
}

TEST_F(DirLogger, UnwritableOutputIsAClearStartupError) {
    auto file = work_.write_file("not-a-dir", "x");
    auto all = base_args();
    all.insert(all.end(),
               {"dir_logger", "-o", (file / "logs").string(), "--listen", "127.0.0.1:0"});
    all.insert(all.begin(), LLM_PROXY_BINARY);
    auto r = run_command(all, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("output directory"), std::string::npos) << r.err;
}

}  // namespace llm_proxy::test

#include "llm_proxy/record/flow_record.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "llm_proxy/llm/summary.hpp"
#include "llm_proxy/record/body_decoder.hpp"
#include "record_reference.hpp"

namespace llm_proxy::record {
namespace {

using nlohmann::json;

const std::string request_json =
    R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})";
const std::string response_json = R"({"id":"chatcmpl-1","choices":[{"message":{"content":"hé"}}]})";

captured_body capture(std::string_view data, std::size_t limit = 1 << 20) {
    captured_body b;
    b.append(data, limit);
    return b;
}

flow sample_flow() {
    flow f;
    f.id = "0b7e6c1a-5d2f-4a8e-9c3b-1f2e3d4c5b6a";
    f.client_address = "127.0.0.1:53122";
    // 2026-11-27T05:23:07.123456Z
    f.started_at = std::chrono::system_clock::time_point(std::chrono::seconds(1795756987)) +
                   std::chrono::microseconds(123456);
    f.duration = std::chrono::microseconds(812499);
    f.request.method = "POST";
    f.request.scheme = "https";
    f.request.host = "api.openai.com";
    f.request.port = 443;
    f.request.target = "/v1/chat/completions";
    f.request.version = 11;
    f.request.headers = {{"content-type", "application/json"},
                         {"Authorization", "Bearer sk-secret"},
                         {"accept", "text/event-stream"},
                         {"Accept", "application/json"}};
    f.request_body = capture(request_json);
    response_head r;
    r.status = 200;
    r.reason = "OK";
    r.headers = {{"Content-Type", "application/json"}, {"set-cookie", "session=abc"}};
    f.response = r;
    f.response_body = capture(response_json);
    return f;
}

TEST(flow_record, full_record_field_by_field) {
    flow f = sample_flow();
    json rec = make_record(f, record_options{}, "proxy-1");

    EXPECT_EQ(rec["object_type"], "llm_proxy_traffic_log");
    EXPECT_EQ(rec["schema"], "v2");
    EXPECT_EQ(rec["timestamp"], "2026-11-27T05:23:07.123456Z");

    const json& cs = rec["connection_stats"];
    EXPECT_EQ(cs["client_address"], "127.0.0.1:53122");
    EXPECT_EQ(cs["url"], "https://api.openai.com/v1/chat/completions");
    EXPECT_TRUE(cs["duration_ms"].is_number_integer());
    EXPECT_EQ(cs["duration_ms"], 812);
    EXPECT_EQ(cs["proxy_id"], "proxy-1");
    EXPECT_EQ(cs.size(), 4u);

    const json& req = rec["request"];
    EXPECT_EQ(req["method"], "POST");
    EXPECT_EQ(req["url"], "https://api.openai.com/v1/chat/completions");
    EXPECT_EQ(req["proto"], "HTTP/1.1");
    EXPECT_EQ(req["header"], json::parse(R"({"Content-Type": ["application/json"],
                                             "Accept": ["text/event-stream", "application/json"]})"));
    EXPECT_EQ(req["body"], request_json);
    EXPECT_EQ(req.size(), 5u);

    const json& resp = rec["response"];
    EXPECT_EQ(resp["status"], 200);
    EXPECT_EQ(resp["header"], json::parse(R"({"Content-Type": ["application/json"]})"));
    EXPECT_EQ(resp["body"], response_json);
    EXPECT_EQ(resp.size(), 3u);

    EXPECT_FALSE(rec.contains("error"));
    EXPECT_FALSE(rec.contains("tags"));
    EXPECT_EQ(rec.size(), 6u);
    EXPECT_NO_THROW((void)rec.dump());
}

TEST(flow_record, http_1_0_and_non_default_port) {
    flow f = sample_flow();
    f.request.version = 10;
    f.request.scheme = "http";
    f.request.port = 8080;
    json rec = make_record(f, record_options{}, "p");
    EXPECT_EQ(rec["request"]["proto"], "HTTP/1.0");
    EXPECT_EQ(rec["request"]["url"], "http://api.openai.com:8080/v1/chat/completions");
}

TEST(flow_record, empty_fields_are_omitted_but_header_and_body_stay) {
    flow f = sample_flow();
    f.client_address.clear();
    f.request.headers.clear();
    f.request_body = {};
    f.response_body = {};
    json rec = make_record(f, record_options{}, "");
    EXPECT_FALSE(rec["connection_stats"].contains("client_address"));
    EXPECT_FALSE(rec["connection_stats"].contains("proxy_id"));
    EXPECT_EQ(rec["request"]["header"], json::object());
    EXPECT_EQ(rec["request"]["body"], "");
    EXPECT_EQ(rec["response"]["body"], "");
    EXPECT_FALSE(rec["request"].contains("body_truncated"));
}

// The "header" member of the request as the record logs `headers`.
json logged_request_headers(const header_list& headers, const std::vector<std::string>& filter) {
    flow f = sample_flow();
    f.request.headers = headers;
    record_options o;
    o.filter_request_headers = filter;
    return make_record(f, o, "p")["request"]["header"];
}

TEST(flow_record, default_filter_removes_credentials_case_insensitively) {
    header_list headers = {{"authorization", "Bearer x"},
                           {"COOKIE", "a=b"},
                           {"Set-Cookie", "c=d"},
                           {"x-api-key", "k"},
                           {"X-GOOG-API-KEY", "g"},
                           {"openai-organization", "org"},
                           {"content-type", "application/json"},
                           {"X-Request-Id", "r1"}};
    json h = logged_request_headers(headers, default_filtered_headers());
    EXPECT_EQ(h, json::parse(R"({"Content-Type": ["application/json"], "X-Request-Id": ["r1"]})"));
}

TEST(flow_record, default_filter_list_contents) {
    const auto& list = default_filtered_headers();
    EXPECT_EQ(list.size(), 24u);
    for (const char* name : {"Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "Api-Key",
                             "Openai-Project", "WWW-Authenticate", "X-CSRF-Token"}) {
        EXPECT_NE(std::find(list.begin(), list.end(), name), list.end()) << name;
    }
}

TEST(flow_record, custom_filter_lists) {
    flow f = sample_flow();
    record_options o;
    o.filter_request_headers = {"content-TYPE"};
    o.filter_response_headers = {};
    json rec = make_record(f, o, "p");
    // Request: only Content-Type filtered, so Authorization now shows up.
    EXPECT_FALSE(rec["request"]["header"].contains("Content-Type"));
    EXPECT_EQ(rec["request"]["header"]["Authorization"], json::array({"Bearer sk-secret"}));
    // Response: nothing filtered.
    EXPECT_EQ(rec["response"]["header"]["Set-Cookie"], json::array({"session=abc"}));
}

TEST(flow_record, no_log_flags) {
    flow f = sample_flow();
    {
        record_options o;
        o.log_request_headers = false;
        json rec = make_record(f, o, "p");
        EXPECT_TRUE(rec["request"]["header"].is_null());
        EXPECT_FALSE(rec["response"]["header"].is_null());
    }
    {
        record_options o;
        o.log_response_headers = false;
        json rec = make_record(f, o, "p");
        EXPECT_TRUE(rec["request"].contains("header"));
        EXPECT_FALSE(rec["request"]["header"].is_null());
        ASSERT_TRUE(rec["response"].contains("header"));
        EXPECT_TRUE(rec["response"]["header"].is_null());
    }
    {
        record_options o;
        o.log_request_body = false;
        json rec = make_record(f, o, "p");
        EXPECT_EQ(rec["request"]["body"], "");
        EXPECT_EQ(rec["response"]["body"], response_json);
    }
    {
        record_options o;
        o.log_response_body = false;
        f.response_body.truncated = true;  // no body annotations either
        json rec = make_record(f, o, "p");
        EXPECT_EQ(rec["request"]["body"], request_json);
        EXPECT_EQ(rec["response"]["body"], "");
        EXPECT_FALSE(rec["response"].contains("body_truncated"));
    }
    {
        record_options o;
        o.log_connection_stats = false;
        json rec = make_record(f, o, "p");
        EXPECT_FALSE(rec.contains("connection_stats"));
    }
}

TEST(flow_record, canonical_names) {
    EXPECT_EQ(canonical_header_name("content-type"), "Content-Type");
    EXPECT_EQ(canonical_header_name("CONTENT-TYPE"), "Content-Type");
    EXPECT_EQ(canonical_header_name("x-api-key"), "X-Api-Key");
    EXPECT_EQ(canonical_header_name("www-authenticate"), "Www-Authenticate");
    EXPECT_EQ(canonical_header_name("x-csrf-token"), "X-Csrf-Token");
    EXPECT_EQ(canonical_header_name("accept"), "Accept");
    EXPECT_EQ(canonical_header_name("-foo--bar"), "-Foo--Bar");
    EXPECT_EQ(canonical_header_name("x_forwarded_for"), "X_forwarded_for");
    EXPECT_EQ(canonical_header_name("1abc-2def"), "1abc-2def");
    EXPECT_EQ(canonical_header_name(""), "");
    // Not a token: returned unchanged.
    EXPECT_EQ(canonical_header_name("bad header"), "bad header");
    EXPECT_EQ(canonical_header_name("foo:bar"), "foo:bar");
}

TEST(flow_record, headers_with_different_case_merge_in_order) {
    header_list headers = {{"x-a", "1"}, {"X-A", "2"}, {"x-A", "3"}};
    EXPECT_EQ(logged_request_headers(headers, {}), json::parse(R"({"X-A": ["1", "2", "3"]})"));
}

TEST(flow_record, gzip_response_body_is_decoded) {
    flow f = sample_flow();
    f.response->headers.emplace_back("Content-Encoding", "gzip");
    f.response_body = capture(encode_body("gzip", response_json));
    json rec = make_record(f, record_options{}, "p");
    EXPECT_EQ(rec["response"]["body"], response_json);
    EXPECT_FALSE(rec["response"].contains("body_encoding"));
    EXPECT_FALSE(rec["response"].contains("body_truncated"));
    EXPECT_FALSE(rec["response"].contains("body_decode_error"));
    // The header itself is still logged as received.
    EXPECT_EQ(rec["response"]["header"]["Content-Encoding"], json::array({"gzip"}));
}

TEST(flow_record, stacked_encodings_in_request_body) {
    flow f = sample_flow();
    f.request.headers.emplace_back("content-encoding", "gzip, br");
    f.request_body = capture(encode_body("br", encode_body("gzip", request_json)));
    json rec = make_record(f, record_options{}, "p");
    EXPECT_EQ(rec["request"]["body"], request_json);
}

TEST(flow_record, binary_body_is_base64) {
    flow f = sample_flow();
    f.response->headers = {{"Content-Type", "application/octet-stream"}};
    f.response_body = capture(std::string("\x00\xff\xfe\x01\x80", 5));
    json rec = make_record(f, record_options{}, "p");
    EXPECT_EQ(rec["response"]["body"], "AP/+AYA=");
    EXPECT_EQ(rec["response"]["body_encoding"], "base64");

    f.response_body = capture(std::string("\xff", 1));
    EXPECT_EQ(make_record(f, record_options{}, "p")["response"]["body"], "/w==");
    f.response_body = capture(std::string("\xff\xfe\xfd", 3));
    EXPECT_EQ(make_record(f, record_options{}, "p")["response"]["body"], "//79");
}

TEST(flow_record, truncated_capture_is_marked) {
    flow f = sample_flow();
    std::string big(5000, 'x');
    f.response_body = capture(big, 1000);
    ASSERT_TRUE(f.response_body.truncated);
    json rec = make_record(f, record_options{}, "p");
    EXPECT_EQ(rec["response"]["body"], std::string(1000, 'x'));
    EXPECT_EQ(rec["response"]["body_truncated"], true);
    EXPECT_EQ(rec["response"]["body_size"], 5000);
}

TEST(flow_record, body_over_max_body_log_is_marked) {
    flow f = sample_flow();
    record_options o;
    o.max_body_log = 10;
    json rec = make_record(f, o, "p");
    EXPECT_EQ(rec["request"]["body"], request_json.substr(0, 10));
    EXPECT_EQ(rec["request"]["body_truncated"], true);
    EXPECT_EQ(rec["request"]["body_size"], request_json.size());
}

TEST(flow_record, truncated_gzip_capture_decodes_a_prefix) {
    flow f = sample_flow();
    std::string text;
    for (int i = 0; i < 5000; ++i) {
        text += "line " + std::to_string(i) + "\n";
    }
    std::string gz = encode_body("gzip", text);
    f.response->headers = {{"Content-Encoding", "gzip"}};
    f.response_body = capture(gz, gz.size() / 2);
    json rec = make_record(f, record_options{}, "p");
    std::string body = rec["response"]["body"];
    EXPECT_FALSE(body.empty());
    EXPECT_EQ(body, text.substr(0, body.size()));
    EXPECT_EQ(rec["response"]["body_truncated"], true);
    EXPECT_EQ(rec["response"]["body_size"], gz.size());
    EXPECT_FALSE(rec["response"].contains("body_decode_error"));
}

TEST(flow_record, truncation_inside_a_utf8_character_stays_text) {
    flow f = sample_flow();
    std::string text = "héllo wörld";
    // Cut in the middle of the two-byte "ö".
    std::size_t cut = text.find("ö") + 1;
    f.response_body = capture(text, cut);
    json rec = make_record(f, record_options{}, "p");
    EXPECT_EQ(rec["response"]["body"], text.substr(0, cut - 1));
    EXPECT_FALSE(rec["response"].contains("body_encoding"));
    EXPECT_EQ(rec["response"]["body_truncated"], true);
}

TEST(flow_record, corrupt_encoded_body_logs_raw_bytes_and_error) {
    flow f = sample_flow();
    f.response->headers = {{"Content-Encoding", "gzip"}};
    f.response_body = capture("not gzip at all");
    json rec = make_record(f, record_options{}, "p");
    EXPECT_EQ(rec["response"]["body"], "not gzip at all");
    EXPECT_TRUE(rec["response"]["body_decode_error"].is_string());
    EXPECT_FALSE(rec["response"].contains("body_truncated"));

    f.response->headers = {{"Content-Encoding", "snappy"}};
    f.response_body = capture(std::string("\x01\xff", 2));
    rec = make_record(f, record_options{}, "p");
    EXPECT_EQ(rec["response"]["body"], "Af8=");
    EXPECT_EQ(rec["response"]["body_encoding"], "base64");
    EXPECT_NE(rec["response"]["body_decode_error"].get<std::string>().find("snappy"),
              std::string::npos);
}

TEST(flow_record, sse_body_is_logged_as_text) {
    flow f = sample_flow();
    std::string sse = "data: {\"a\":1}\n\ndata: [DONE]\n\n";
    f.response->headers = {{"Content-Type", "text/event-stream"}};
    f.response_body = capture(sse);
    EXPECT_EQ(make_record(f, record_options{}, "p")["response"]["body"], sse);
}

TEST(flow_record, failed_flow_has_error_and_no_response) {
    flow f = sample_flow();
    f.response.reset();
    f.response_body = {};
    f.error_kind = flow_error::connect;
    f.error = "connection refused";
    json rec = make_record(f, record_options{}, "p");
    EXPECT_FALSE(rec.contains("response"));
    EXPECT_EQ(rec["error"], json::parse(R"({"kind": "connect", "message": "connection refused"})"));
    EXPECT_EQ(rec["request"]["method"], "POST");
}

TEST(flow_record, tags_are_logged) {
    flow f = sample_flow();
    f.tags["cache"] = "HIT";
    f.tags["scheme_upgraded"] = "true";
    json rec = make_record(f, record_options{}, "p");
    EXPECT_EQ(rec["tags"], json::parse(R"({"cache": "HIT", "scheme_upgraded": "true"})"));
}

TEST(flow_record, invalid_utf8_in_headers_does_not_throw) {
    flow f = sample_flow();
    f.request.headers.emplace_back("X-Weird", std::string("a\xff\xc3(b\xed\xa0\x80", 8));
    f.response->headers.emplace_back(std::string("X-\xff", 3), "v");
    f.request.target = std::string("/p\xfe", 3);
    f.tags[std::string("t\xff", 2)] = std::string("\xc3", 1);
    f.error_kind = flow_error::dns;
    f.error = std::string("bad \xff", 5);
    json rec;
    ASSERT_NO_THROW(rec = make_record(f, record_options{}, "p"));
    std::string dumped;
    ASSERT_NO_THROW(dumped = rec.dump());
    EXPECT_EQ(rec["request"]["header"]["X-Weird"],
              json::array({"a\xef\xbf\xbd\xef\xbf\xbd(b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}));
    EXPECT_TRUE(rec["response"]["header"].contains("X-\xef\xbf\xbd"));
    EXPECT_TRUE(json::accept(dumped));
}

TEST(flow_record, failed_flow_before_request_parsed) {
    flow f;
    f.client_address = "10.0.0.1:1234";
    f.error_kind = flow_error::tls;
    f.error = "handshake failed";
    json rec = make_record(f, record_options{}, "p");
    EXPECT_FALSE(rec["request"].contains("url"));
    EXPECT_FALSE(rec["connection_stats"].contains("url"));
    EXPECT_TRUE(rec["request"].contains("header"));
    EXPECT_EQ(rec["request"]["body"], "");
    EXPECT_EQ(rec["error"]["kind"], "tls");
    EXPECT_NO_THROW((void)rec.dump());
}

// render_record must write exactly what dumping the reference tree writes.
std::string dumped(const flow& f, const record_options& o, const std::string& proxy_id) {
    return test::reference_text(f, o, proxy_id);
}

TEST(render_record, sample_record_bytes) {
    std::string expected = R"({
  "connection_stats": {
    "client_address": "127.0.0.1:53122",
    "duration_ms": 812,
    "proxy_id": "proxy-1",
    "url": "https://api.openai.com/v1/chat/completions"
  },
  "object_type": "llm_proxy_traffic_log",
  "request": {
    "body": "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
    "header": {
      "Accept": [
        "text/event-stream",
        "application/json"
      ],
      "Content-Type": [
        "application/json"
      ]
    },
    "method": "POST",
    "proto": "HTTP/1.1",
    "url": "https://api.openai.com/v1/chat/completions"
  },
  "response": {
    "body": "{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"hé\"}}]}",
    "header": {
      "Content-Type": [
        "application/json"
      ]
    },
    "status": 200
  },
  "schema": "v2",
  "timestamp": "2026-11-27T05:23:07.123456Z"
}
)";
    EXPECT_EQ(render_record(sample_flow(), record_options{}, "proxy-1"), expected);
}

TEST(render_record, make_record_is_the_rendered_text_parsed) {
    flow f = sample_flow();
    f.tags["k"] = "v";
    EXPECT_EQ(make_record(f, record_options{}, "p"),
              json::parse(render_record(f, record_options{}, "p")));
    EXPECT_EQ(make_record(f, record_options{}, "p").dump(2) + "\n",
              render_record(f, record_options{}, "p"));
}

TEST(render_record, same_bytes_as_the_json_tree_for_edge_cases) {
    std::vector<std::pair<std::string, flow>> cases;
    cases.emplace_back("sample", sample_flow());
    {
        flow f = sample_flow();
        f.response.reset();
        f.error_kind = flow_error::connect;
        f.error = "cannot connect to api.openai.com:443: Connection refused";
        cases.emplace_back("no response", f);
    }
    {
        flow f;
        f.id = "x";
        f.error_kind = flow_error::bad_request;
        f.error = "malformed \"request\"\tline\n";
        cases.emplace_back("nothing parsed", f);
    }
    {
        flow f = sample_flow();
        f.error_kind = flow_error::upstream_reset;
        f.error = "reset mid-body";
        f.response_body = capture(std::string("\x00\x01\xff\xfe binary", 11));
        cases.emplace_back("broken off, binary body", f);
    }
    {
        flow f = sample_flow();
        f.response->headers.push_back({"Content-Encoding", "gzip"});
        f.response_body = capture("not gzip at all");
        cases.emplace_back("undecodable body", f);
    }
    {
        flow f = sample_flow();
        f.response->headers.push_back({"Content-Encoding", "gzip"});
        f.response_body = capture(encode_body("gzip", response_json + response_json));
        cases.emplace_back("gzip body", f);
    }
    {
        flow f = sample_flow();
        f.request_body = capture("caf\xc3\xa9 \xe2\x82\xac tail", 8);  // cut inside the euro sign
        cases.emplace_back("truncated multibyte", f);
    }
    {
        flow f = sample_flow();
        f.request.version = 10;
        f.request.headers = {{"x-weird name", "v"},
                             {"X-CTRL", std::string("a\x01\x1f\x7f\"\\/\b\f\r\n\tz", 14)},
                             {"x-bad-utf8", "\xc3\x28\xed\xa0\x80\xf4\x90\x80\x80"},
                             {"X-Multi", "1"},
                             {"x-multi", "2"}};
        f.request_body = capture("{\"k\":\"\\u0000\"}\x02");
        f.tags = {{"cache", "HIT"}, {"a\xff", "b\xfe"}, {"z", ""}};
        cases.emplace_back("escapes and tags", f);
    }
    {
        flow f = sample_flow();
        f.request.headers.clear();
        f.response->headers = {{"Authorization", "x"}};  // filtered away: empty object
        cases.emplace_back("empty headers", f);
    }
    for (const auto& [name, f] : cases) {
        for (int variant = 0; variant < 4; ++variant) {
            record_options o;
            std::string proxy_id = "proxy-1";
            if (variant == 1) {
                o.log_connection_stats = false;
                o.log_request_headers = false;
                o.log_response_body = false;
                proxy_id.clear();
            } else if (variant == 2) {
                o.log_request_body = false;
                o.log_response_headers = false;
                o.max_body_log = 7;
            } else if (variant == 3) {
                o.filter_request_headers.clear();
                o.filter_response_headers = {"content-type"};
                o.max_body_log = 1;
            }
            EXPECT_EQ(render_record(f, o, proxy_id), dumped(f, o, proxy_id))
                << name << ", options variant " << variant;
        }
    }
}

TEST(render_record, same_bytes_as_the_json_tree_for_random_fields) {
    std::mt19937 rng(20261127);
    auto random_bytes = [&](std::size_t max_len) {
        std::string s(rng() % (max_len + 1), '\0');
        for (char& c : s) {
            // Mostly printable ASCII, with control bytes, quotes and high bytes mixed in.
            unsigned r = rng() % 100;
            c = static_cast<char>(r < 70   ? 0x20 + rng() % 95
                                  : r < 80 ? rng() % 0x20
                                  : r < 85 ? '"'
                                  : r < 88 ? '\\'
                                           : 0x80 + rng() % 0x80);
        }
        return s;
    };
    for (int i = 0; i < 300; ++i) {
        flow f = sample_flow();
        f.client_address = random_bytes(20);
        f.request.method = random_bytes(8);
        f.request.target = "/" + random_bytes(30);
        f.request.headers.clear();
        for (unsigned h = rng() % 6; h > 0; --h) {
            f.request.headers.push_back({random_bytes(12), random_bytes(40)});
        }
        f.request_body = capture(random_bytes(200), rng() % 250);
        if (rng() % 4 == 0) {
            f.response.reset();
        } else {
            f.response->status = rng() % 600;
            f.response->headers = {{random_bytes(10), random_bytes(30)}};
        }
        f.response_body = capture(random_bytes(300));
        f.error_kind = rng() % 3 == 0 ? static_cast<flow_error>(1 + rng() % 14) : flow_error::none;
        f.error = random_bytes(40);
        f.duration = std::chrono::microseconds(rng() % 100000000);
        f.tags.clear();
        for (unsigned t = rng() % 3; t > 0; --t) {
            f.tags[random_bytes(6)] = random_bytes(10);
        }
        record_options o;
        o.max_body_log = rng() % 2 ? 4 * 1024 * 1024 : rng() % 100;
        std::string proxy_id = random_bytes(10);
        ASSERT_EQ(render_record(f, o, proxy_id), dumped(f, o, proxy_id)) << "iteration " << i;
    }
}

// The "llm" object is written straight into the text: the same bytes as the summary's JSON
// tree (llm::to_json) dumped, in both layouts, for summaries with every field present or not.
TEST(render_record, llm_object_same_bytes_as_the_json_tree) {
    std::mt19937 rng(20261202);
    auto random_text = [&](std::size_t max_len) {
        std::string s(rng() % (max_len + 1), '\0');
        for (char& c : s) {
            unsigned r = rng() % 100;
            c = static_cast<char>(r < 75   ? 0x20 + rng() % 95
                                  : r < 85 ? rng() % 0x20
                                  : r < 90 ? '"'
                                  : r < 93 ? '\\'
                                           : 0x80 + rng() % 0x80);
        }
        if (rng() % 4 == 0) {
            s += "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";  // valid multi-byte text
        }
        return s;
    };
    auto maybe = [&](std::size_t max_len) -> std::optional<std::string> {
        if (rng() % 3 == 0) {
            return std::nullopt;
        }
        return random_text(max_len);
    };
    // Amounts as prices make them: 0, whole dollars, up to 12 decimals, and large ones.
    auto random_money = [&]() {
        static const char* const amounts[] = {
            "0",       "1",     "0.5", "0.0000234",  "0.000123",  "0.000000000001",
            "1234567", "12.25", "0.1", "0.30000001", "99999.999", "0.000185"};
        std::string text = amounts[rng() % std::size(amounts)];
        if (rng() % 2 == 0) {
            text = std::to_string(rng() % 1000) + "." + std::to_string(rng() % 1000000000);
            while (text.back() == '0') {
                text.pop_back();
            }
            if (text.back() == '.') {
                text.pop_back();
            }
        }
        return *llm::money::parse(text);
    };
    for (int i = 0; i < 400; ++i) {
        llm::summary s;
        auto& c = s.call;
        c.provider = static_cast<llm::provider>(rng() % 3);
        c.api = static_cast<llm::api>(rng() % 6);
        c.request_model = random_text(20);
        c.response_model = random_text(20);
        c.response_id = rng() % 3 == 0 ? "" : random_text(30);
        c.stream = rng() % 2;
        c.incomplete = rng() % 4 == 0;
        c.error = rng() % 5 == 0 ? maybe(40) : std::nullopt;
        for (const auto& [name, field] : llm::usage_fields) {
            if (rng() % 2) {
                c.usage.*field = rng() % 3 == 0 ? std::uint64_t{1} << 40 : rng() % 100000;
            }
        }
        for (unsigned n = rng() % 4; n > 0; --n) {
            llm::answer a;
            if (rng() % 5 == 0) {
                a.role = random_text(10);
            }
            a.content = maybe(200);
            a.refusal = rng() % 4 == 0 ? maybe(30) : std::nullopt;
            a.reasoning = rng() % 4 == 0 ? maybe(60) : std::nullopt;
            a.finish_reason = maybe(12);
            a.truncated = rng() % 6 == 0;
            for (unsigned t = rng() % 3; t > 0; --t) {
                llm::tool_call call;
                call.id = random_text(12);
                call.name = random_text(12);
                call.arguments = random_text(80);
                if (rng() % 4 == 0) {
                    call.type = random_text(8);
                }
                a.tool_calls.push_back(std::move(call));
            }
            c.answers.push_back(std::move(a));
        }
        if (rng() % 4 != 0) {
            s.cost_usd = llm::cost{random_money(), random_money(), random_money()};
            s.priced_as = random_text(20);
        }
        if (rng() % 5 == 0) {
            s.saved_usd = random_money();
        }
        if (rng() % 2) {
            s.first_token_ms = (rng() % 100000) / 7.0;
        }
        s.usage_injected = rng() % 5 == 0;

        flow f = sample_flow();
        f.llm = std::make_shared<const llm::summary>(s);
        const record_options o;
        ASSERT_EQ(render_record(f, o, "p"), dumped(f, o, "p")) << "iteration " << i;
        auto line = test::reference_record(f, o, "p");
        line["id"] = f.id;
        ASSERT_EQ(render_record(f, o, "p", record_layout::line), line.dump() + "\n")
            << "iteration " << i;
    }
}

}  // namespace
}  // namespace llm_proxy::record

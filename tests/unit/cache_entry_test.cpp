// Cache entries, keys and the HTTP rules the cache follows.
#include <gtest/gtest.h>

#include "llm_proxy/cache/entry.hpp"
#include "llm_proxy/cache/http_rules.hpp"

namespace llm_proxy::cache {

TEST(CacheEntry, RoundTripsEveryField) {
    entry e;
    e.status = 201;
    e.reason = "Created";
    e.headers = {
        {"Content-Type", "text/event-stream"}, {"X-Empty", ""}, {"X-Dup", "1"}, {"X-Dup", "2"}};
    e.content_encoding = "gzip";
    e.body = std::string("data: a\n\n\0binary\xff", 17);
    e.streamed = true;
    e.head_content_length = 0;
    e.created_ms = 1'790'000'000'123;
    auto back = deserialize(serialize(e));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->status, 201u);
    EXPECT_EQ(back->reason, "Created");
    EXPECT_EQ(back->headers, e.headers);
    EXPECT_EQ(back->content_encoding, "gzip");
    EXPECT_EQ(back->body, e.body);
    EXPECT_TRUE(back->streamed);
    EXPECT_EQ(back->head_content_length, std::optional<std::uint64_t>(0));
    EXPECT_EQ(back->created_ms, e.created_ms);

    entry plain;
    plain.status = 200;
    auto p = deserialize(serialize(plain));
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->streamed);
    EXPECT_FALSE(p->head_content_length);
}

TEST(CacheEntry, RejectsMalformedData) {
    entry e;
    e.status = 200;
    e.body = "hello";
    auto bytes = serialize(e);
    EXPECT_FALSE(deserialize(""));
    EXPECT_FALSE(deserialize("XXXX" + bytes.substr(4)));           // other format
    EXPECT_FALSE(deserialize(bytes.substr(0, bytes.size() - 1)));  // cut short
    EXPECT_FALSE(deserialize(bytes + "x"));                        // trailing bytes
    auto huge = bytes;
    huge[huge.size() - 5 - 1] = '\x7f';  // body length's top byte: an absurd length
    EXPECT_FALSE(deserialize(huge));
}

TEST(CacheKey, CoversMethodUrlBodyAndKeyHeaders) {
    using kh = std::vector<std::pair<std::string, std::optional<std::string>>>;
    auto k = make_key("POST", "https://api.openai.com/v1/chat/completions", "{}", {});
    EXPECT_EQ(k.size(), 64u);
    EXPECT_EQ(k.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(k, make_key("POST", "https://api.openai.com/v1/chat/completions", "{}", {}));
    EXPECT_NE(k, make_key("GET", "https://api.openai.com/v1/chat/completions", "{}", {}));
    EXPECT_NE(k, make_key("POST", "https://api.openai.com/v1/chat/completions?x", "{}", {}));
    EXPECT_NE(k, make_key("POST", "https://api.openai.com/v1/chat/completions", "{ }", {}));
    // Field boundaries matter: moving bytes between fields changes the key.
    EXPECT_NE(make_key("POS", "Thttps://a/", "", {}), make_key("POST", "https://a/", "", {}));
    auto a = make_key("GET", "https://a/", "", kh{{"Authorization", "Bearer A"}});
    EXPECT_EQ(a, make_key("GET", "https://a/", "", kh{{"authorization", "Bearer A"}}));
    EXPECT_NE(a, make_key("GET", "https://a/", "", kh{{"Authorization", "Bearer B"}}));
    EXPECT_NE(make_key("GET", "https://a/", "", kh{{"X", std::nullopt}}),
              make_key("GET", "https://a/", "", kh{{"X", ""}}));
    EXPECT_EQ(a.find("Bearer"), std::string::npos);
}

TEST(CacheRules, RequestDirectives) {
    EXPECT_FALSE(parse_request_directives({}).no_cache);
    auto d = parse_request_directives({{"cache-control", "max-age=0, No-Cache"}});
    EXPECT_TRUE(d.no_cache);
    EXPECT_FALSE(d.no_store);
    d = parse_request_directives({{"Cache-Control", "no-store"}});
    EXPECT_TRUE(d.no_store);
    EXPECT_TRUE(parse_request_directives({{"Pragma", "no-cache"}}).no_cache);
    // Cache-Control wins over Pragma.
    EXPECT_FALSE(parse_request_directives({{"Pragma", "no-cache"}, {"Cache-Control", "max-age=5"}})
                     .no_cache);
    EXPECT_FALSE(parse_request_directives({{"Cache-Control", "no-cachex"}}).no_cache);
    EXPECT_TRUE(response_forbids_storing({{"Cache-Control", "private, no-store"}}));
    EXPECT_FALSE(response_forbids_storing({{"Cache-Control", "no-cache"}}));
}

TEST(CacheRules, AcceptEncoding) {
    std::string_view ae = "gzip, deflate;q=0.5, br;q=0";
    EXPECT_TRUE(accepts_encoding(&ae, "gzip"));
    EXPECT_TRUE(accepts_encoding(&ae, "GZIP"));
    EXPECT_TRUE(accepts_encoding(&ae, "deflate"));
    EXPECT_FALSE(accepts_encoding(&ae, "br"));
    EXPECT_FALSE(accepts_encoding(&ae, "zstd"));
    EXPECT_TRUE(accepts_encoding(&ae, "identity"));
    EXPECT_FALSE(accepts_encoding(nullptr, "gzip"));
    std::string_view star = "*;q=0.1, gzip;q=0";
    EXPECT_TRUE(accepts_encoding(&star, "br"));
    EXPECT_FALSE(accepts_encoding(&star, "gzip"));
}

TEST(CacheRules, AcceptEncodingTrickyLists) {
    // Spaces around commas, semicolons and equals signs; empty elements.
    std::string_view spaced = " ,, gzip ;  q = 0.5 ,\t, br ; q=0 ,";
    EXPECT_TRUE(accepts_encoding(&spaced, "gzip"));
    EXPECT_FALSE(accepts_encoding(&spaced, "br"));
    EXPECT_FALSE(accepts_encoding(&spaced, "zstd"));
    // q=0 in any spelling refuses; q above 0 accepts; the parameter name ignores case.
    for (std::string_view zero : {"gzip;q=0", "gzip;Q=0", "gzip;q=0.0", "gzip;q=0.000"}) {
        EXPECT_FALSE(accepts_encoding(&zero, "gzip")) << zero;
    }
    for (std::string_view some : {"gzip;q=1", "gzip;Q=0.001", "gzip;level=1;q=0.5"}) {
        EXPECT_TRUE(accepts_encoding(&some, "gzip")) << some;
    }
    // Only a parameter named q counts.
    std::string_view other = "gzip;xq=0";
    EXPECT_TRUE(accepts_encoding(&other, "gzip"));
    // Coding names ignore case, on both sides.
    std::string_view upper = "GZip, BR;q=0";
    EXPECT_TRUE(accepts_encoding(&upper, "gzip"));
    EXPECT_FALSE(accepts_encoding(&upper, "br"));
    EXPECT_FALSE(accepts_encoding(&upper, "Br"));
    // A named coding wins over "*", whichever comes first.
    std::string_view star_first = "*, br;q=0";
    EXPECT_FALSE(accepts_encoding(&star_first, "br"));
    EXPECT_TRUE(accepts_encoding(&star_first, "zstd"));
    std::string_view star_refused = "gzip, *;q=0";
    EXPECT_TRUE(accepts_encoding(&star_refused, "gzip"));
    EXPECT_FALSE(accepts_encoding(&star_refused, "br"));
    // Empty and blank headers accept nothing but identity.
    for (std::string_view none : {"", " ", ",", " , ,"}) {
        EXPECT_FALSE(accepts_encoding(&none, "gzip")) << '"' << none << '"';
        EXPECT_TRUE(accepts_encoding(&none, "identity"));
        EXPECT_TRUE(accepts_encoding(&none, ""));
    }
}

TEST(CacheRules, ContentCodings) {
    using list = std::vector<std::string>;
    EXPECT_EQ(content_codings(""), list{});
    EXPECT_EQ(content_codings("identity"), list{});
    EXPECT_EQ(content_codings("gzip"), list{"gzip"});
    EXPECT_EQ(content_codings("gzip, br"), (list{"gzip", "br"}));
    EXPECT_EQ(content_codings("GZIP,Br"), (list{"gzip", "br"}));
    EXPECT_EQ(content_codings(" ,gzip ,, identity,\tzstd , "), (list{"gzip", "zstd"}));
    EXPECT_EQ(content_codings("IDENTITY, deflate"), list{"deflate"});
    EXPECT_EQ(content_codings(" , ,"), list{});
    // A malformed list is read up to where it stops being a list of tokens.
    EXPECT_EQ(content_codings("gzip, x y, br"), (list{"gzip", "x"}));
    EXPECT_EQ(content_codings("gzip; q=1, br"), list{"gzip"});
}

TEST(CacheRules, SseEventEnds) {
    EXPECT_TRUE(sse_event_ends("").empty());
    EXPECT_EQ(sse_event_ends("data: a\n\ndata: b\n\n"), (std::vector<std::size_t>{9, 18}));
    EXPECT_EQ(sse_event_ends("data: a\r\n\r\ndata: b"), (std::vector<std::size_t>{11}));
    EXPECT_EQ(sse_event_ends("event: x\ndata: a\n\n"), (std::vector<std::size_t>{18}));
    EXPECT_EQ(sse_event_ends("a\r\rb\n\n"), (std::vector<std::size_t>{3, 6}));
}

TEST(CacheRules, CacheableMethods) {
    EXPECT_TRUE(cacheable_method("GET"));
    EXPECT_TRUE(cacheable_method("HEAD"));
    EXPECT_TRUE(cacheable_method("POST"));
    EXPECT_FALSE(cacheable_method("PUT"));
    EXPECT_FALSE(cacheable_method("DELETE"));
}

}  // namespace llm_proxy::cache

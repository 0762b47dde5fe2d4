// dir_logger's flags and record content, end to end.
#include <sys/stat.h>

#include "e2e_fixture.hpp"

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

// dir_logger --fsync: with `record`, a response's last bytes reach the client only once its
// record is on disk, so a proxy killed with SIGKILL has a record of every response a client got
// whole; `interval` syncs in the background; no mode ever leaves a partial record.
#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <future>
#include <mutex>
#include <set>

#include "addon_api_fixture.hpp"
#include "e2e_fixture.hpp"
#include "llm_proxy/addons/dir_logger.hpp"
#include "llm_proxy/record/record_writer.hpp"
#include "support/gated_writer.hpp"
#include "support/process.hpp"

namespace llm_proxy::test {
namespace {

namespace fs = std::filesystem;

struct record_files {
    std::vector<fs::path> records;  // *.json
    std::vector<std::string> others;
};

record_files list_records(const fs::path& dir) {
    record_files out;
    for (const auto& e : fs::directory_iterator(dir)) {
        auto name = e.path().filename().string();
        if (e.path().extension() == ".json" && name.front() != '.') {
            out.records.push_back(e.path());
        } else {
            out.others.push_back(name);
        }
    }
    return out;
}

std::string chat_request(bool stream) {
    std::string body = std::string(R"({"model":"gpt-4o-mini","stream":)") +
                       (stream ? "true" : "false") +
                       R"(,"messages":[{"role":"user","content":"hi"}]})";
    return make_head("POST", "/v1/chat/completions", "api.openai.com",
                     {{"Content-Type", "application/json"},
                      {"Content-Length", std::to_string(body.size())},
                      {"X-Fake-Events", "3"},
                      {"X-Fake-Interval-Ms", "0"}}) +
           body;
}

// A streamed answer goes out as it comes, except its end, which waits for the record; a JSON
// answer (one read: head, body and end together) waits whole. Each record is written once.
TEST_F(addon_api_test, FsyncRecordHoldsTheResponseEndUntilTheRecordIsOnDisk) {
    temp_dir logs("durability_test");
    auto writer = std::make_shared<gated_writer>(
        logs.path(), record::record_options{}, "proxy-1", 0,
        record::durability_options{record::fsync_mode::record, std::chrono::milliseconds(1000)});
    start({std::make_shared<addons::dir_logger>(writer, 1 << 20)});
    auto c = proxy().connect(openai);

    std::mutex m;
    std::string received;
    c->send(chat_request(true));
    auto streamed = std::async(std::launch::async, [&] {
        return c->read_final_response(false, [&](std::string_view piece) {
            std::lock_guard lock(m);
            received.append(piece);
        });
    });
    auto events_seen = [&] {
        std::lock_guard lock(m);
        return received.find("data: {") != std::string::npos;
    };
    for (int i = 0; i < 1000 && !events_seen(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(events_seen()) << "the stream's events must not wait for the record";
    EXPECT_EQ(streamed.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
        << "the response ended before its record was written";
    EXPECT_TRUE(list_records(logs.path()).records.empty());

    writer->open();
    ASSERT_EQ(streamed.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    auto r = streamed.get();
    EXPECT_EQ(r.status, 200u);
    EXPECT_NE(received.find("[DONE]"), std::string::npos);
    // The client has the whole response: its record is there already.
    auto files = list_records(logs.path());
    ASSERT_EQ(files.records.size(), 1u);
    std::ifstream in(files.records[0]);
    auto record = nlohmann::json::parse(in);
    EXPECT_NE(record.dump().find("[DONE]"), std::string::npos) << "the record has the whole stream";

    // Keep-alive: a JSON answer on the same connection, its record written before its end too.
    c->send(chat_request(false));
    auto plain = c->read_final_response();
    EXPECT_EQ(plain.status, 200u);
    EXPECT_EQ(list_records(logs.path()).records.size(), 2u);

    proxy_.reset();  // every flow done: nothing more is written
    EXPECT_EQ(writer->written(), 2u);
    EXPECT_EQ(writer->failed(), 0u);
    files = list_records(logs.path());
    EXPECT_EQ(files.records.size(), 2u);
    EXPECT_TRUE(files.others.empty()) << files.others.front();
}

class Durability : public e2e_test {
  protected:
    // n chat completions (every second one streamed, question "q<i>"), each answered whole;
    // then SIGKILL.
    void ask_then_kill(int n) {
        auto client = proxied_client();
        for (int i = 0; i < n; ++i) {
            bool stream = i % 2 == 1;
            std::string body =
                std::string(R"({"model":"gpt-4o-mini","stream":)") + (stream ? "true" : "false") +
                R"(,"messages":[{"role":"user","content":"q)" + std::to_string(i) + R"("}]})";
            auto r =
                client.post("https://api.openai.com/v1/chat/completions", body,
                            {{"Content-Type", "application/json"}, {"X-Fake-Interval-Ms", "0"}});
            ASSERT_EQ(r.status, 200u) << "request " << i;
        }
        ASSERT_EQ(proxy_->stop(SIGKILL), 128 + SIGKILL);
    }
};

// Every response the client got whole has its record after SIGKILL, and no file is partial.
TEST_F(Durability, FsyncRecordKeepsEveryAnsweredFlowThroughSigkill) {
    start_dir_logger({"--fsync", "record"});
    const int n = 24;
    ask_then_kill(n);
    if (HasFatalFailure()) {
        return;
    }

    auto files = list_records(log_dir());
    EXPECT_EQ(files.records.size(), static_cast<std::size_t>(n));
    EXPECT_TRUE(files.others.empty()) << files.others.front();
    std::set<std::string> questions;
    for (const auto& path : files.records) {
        std::ifstream in(path);
        auto record = nlohmann::json::parse(in, nullptr, false);
        ASSERT_FALSE(record.is_discarded()) << path << " is not whole JSON";
        auto text = record.dump();
        for (int i = 0; i < n; ++i) {
            if (text.find("\\\"q" + std::to_string(i) + "\\\"") != std::string::npos) {
                questions.insert(std::to_string(i));
            }
        }
    }
    EXPECT_EQ(questions.size(), static_cast<std::size_t>(n)) << "each request has its record";
}

// --format jsonl: after SIGKILL the segments hold a whole line for every answered request,
// and report and export read them.
TEST_F(Durability, JsonlSegmentsKeepEveryAnsweredFlowThroughSigkill) {
    start_dir_logger({"--format", "jsonl", "--fsync", "record", "--rotate-mib", "1"});
    const int n = 16;
    ask_then_kill(n);
    if (HasFatalFailure()) {
        return;
    }

    auto records = wait_for_records(n, std::chrono::milliseconds(0));  // every line whole
    ASSERT_EQ(records.size(), static_cast<std::size_t>(n));
    std::set<std::string> ids;
    for (const auto& r : records) {
        ids.insert(r.value("id", ""));
    }
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(n));
    auto files = list_records(log_dir());
    EXPECT_TRUE(files.records.empty());  // no one-file records beside the segments

    auto report = run_command({LLM_PROXY_BINARY, "report", log_dir().string(), "--format", "json"},
                              std::chrono::seconds(30));
    ASSERT_EQ(report.exit_code, 0) << report.err;
    auto totals = nlohmann::json::parse(report.out, nullptr, false);
    ASSERT_FALSE(totals.is_discarded()) << report.out;
    EXPECT_EQ(totals["total"]["requests"], n) << report.out;
    EXPECT_EQ(totals["total"]["llm_calls"], n) << report.out;

    auto out = work_ / "calls.jsonl";
    auto exported = run_command({LLM_PROXY_BINARY, "export", log_dir().string(), "--format",
                                 "jsonl", "-o", out.string(), "--no-progress"},
                                std::chrono::seconds(30));
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    std::string text = read_file(out);
    EXPECT_EQ(static_cast<int>(std::count(text.begin(), text.end(), '\n')), n) << exported.err;
}

TEST_F(Durability, FsyncIntervalWritesAndSyncsRecords) {
    start_dir_logger({"--fsync", "interval", "--fsync-interval", "0.05"});
    auto client = proxied_client();
    for (int i = 0; i < 3; ++i) {
        auto r =
            client.post("https://api.openai.com/v1/chat/completions",
                        R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})",
                        {{"Content-Type", "application/json"}});
        ASSERT_EQ(r.status, 200u);
    }
    EXPECT_EQ(wait_for_records(3).size(), 3u);
}

TEST_F(Durability, AnUnknownFsyncModeIsAClearCliError) {
    for (std::vector<std::string> bad : {std::vector<std::string>{"--fsync", "always"},
                                         std::vector<std::string>{"--fsync-interval", "0"}}) {
        std::vector<std::string> argv = {LLM_PROXY_BINARY, "dir_logger", "--listen",
                                         "127.0.0.1:0",    "-o",         log_dir().string()};
        argv.insert(argv.end(), bad.begin(), bad.end());
        auto r = run_command(argv, std::chrono::seconds(20));
        EXPECT_EQ(r.exit_code, 2) << bad[0];
        EXPECT_NE(r.err.find(bad[0]), std::string::npos) << r.err;
    }
}

}  // namespace
}  // namespace llm_proxy::test

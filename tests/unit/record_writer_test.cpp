#include "llm_proxy/record/record_writer.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "llm_proxy/util/ids.hpp"
#include "support/gated_writer.hpp"
#include "support/temp_dir.hpp"

namespace llm_proxy::record {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

flow make_flow(int n) {
    flow f;
    f.id = make_uuid();
    f.client_address = "127.0.0.1:" + std::to_string(40000 + n);
    f.started_at = std::chrono::system_clock::now();
    f.request.method = "POST";
    f.request.scheme = "https";
    f.request.host = "api.example.com";
    f.request.port = 443;
    f.request.target = "/v1/chat/completions?n=" + std::to_string(n);
    f.request.headers = {{"Content-Type", "application/json"}};
    f.request_body.append(R"({"n":)" + std::to_string(n) + "}", 1 << 20);
    response_head r;
    r.status = 200;
    f.response = r;
    f.response_body.append("ok " + std::to_string(n), 1 << 20);
    return f;
}

struct dir_listing {
    std::set<std::string> json_files;
    std::vector<std::string> others;
};

dir_listing list(const fs::path& dir) {
    dir_listing out;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::string name = e.path().filename().string();
        if (e.path().extension() == ".json" && name.front() != '.') {
            out.json_files.insert(name);
        } else {
            out.others.push_back(name);
        }
    }
    return out;
}

TEST(record_writer, writes_flows_from_many_threads) {
    test::temp_dir tmp("record_writer_test");
    constexpr int threads = 4;
    constexpr int per_thread = 50;
    std::set<std::string> expected;
    std::mutex expected_mutex;
    {
        record_writer writer(tmp.path(), record_options{}, "proxy-1");
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                for (int i = 0; i < per_thread; ++i) {
                    flow f = make_flow(t * per_thread + i);
                    {
                        std::lock_guard lock(expected_mutex);
                        expected.insert(f.id + ".json");
                    }
                    writer.submit(std::make_shared<flow>(std::move(f)));
                }
            });
        }
        for (auto& th : pool) {
            th.join();
        }
        writer.close();
        EXPECT_EQ(writer.written(), static_cast<std::uint64_t>(threads * per_thread));
        EXPECT_EQ(writer.failed(), 0u);
    }

    dir_listing l = list(tmp.path());
    EXPECT_TRUE(l.others.empty()) << "leftover: " << l.others.front();
    EXPECT_EQ(l.json_files, expected);
    std::set<std::string> bodies;
    for (const auto& name : l.json_files) {
        fs::path p = tmp.path() / name;
        struct stat st {};
        ASSERT_EQ(::stat(p.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
        std::string text = test::read_file(p);
        ASSERT_TRUE(json::accept(text)) << name;
        json rec = json::parse(text);
        EXPECT_EQ(rec["schema"], "v2");
        EXPECT_EQ(rec["connection_stats"]["proxy_id"], "proxy-1");
        EXPECT_EQ(rec["response"]["status"], 200);
        bodies.insert(rec["request"]["body"].get<std::string>());
    }
    EXPECT_EQ(bodies.size(), static_cast<std::size_t>(threads * per_thread));
}

TEST(record_writer, creates_missing_directory) {
    test::temp_dir tmp("record_writer_test");
    fs::path dir = tmp.path() / "a" / "b" / "logs";
    record_writer writer(dir, record_options{}, "p");
    EXPECT_TRUE(fs::is_directory(dir));
    EXPECT_EQ(writer.directory(), dir);
    flow f = make_flow(1);
    std::string id = f.id;
    writer.submit(std::make_shared<flow>(std::move(f)));
    writer.close();
    EXPECT_TRUE(fs::exists(dir / (id + ".json")));
    // The writability probe leaves nothing behind.
    EXPECT_TRUE(list(dir).others.empty());
}

TEST(record_writer, unwritable_directory_throws_a_clear_error) {
    test::temp_dir tmp("record_writer_test");
    fs::path file = tmp.write_file("plain_file", "x");
    fs::path dir = file / "logs";
    try {
        record_writer writer(dir, record_options{}, "p");
        FAIL() << "expected an exception";
    } catch (const std::runtime_error& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("cannot write to output directory"), std::string::npos) << what;
        EXPECT_NE(what.find(dir.string()), std::string::npos) << what;
    }

    // The path itself is a regular file.
    EXPECT_THROW(record_writer(file, record_options{}, "p"), std::runtime_error);
}

TEST(record_writer, close_drains_everything_submitted) {
    test::temp_dir tmp("record_writer_test");
    record_writer writer(tmp.path(), record_options{}, "p");
    constexpr int n = 300;
    for (int i = 0; i < n; ++i) {
        writer.submit(std::make_shared<flow>(make_flow(i)));
    }
    writer.close();
    EXPECT_EQ(writer.written(), static_cast<std::uint64_t>(n));
    EXPECT_EQ(writer.queued(), 0u);
    EXPECT_EQ(list(tmp.path()).json_files.size(), static_cast<std::size_t>(n));
    writer.close();  // idempotent
}

TEST(record_writer, close_while_other_threads_submit_loses_nothing) {
    test::temp_dir tmp("record_writer_test");
    constexpr int threads = 3;
    constexpr int per_thread = 40;
    record_writer writer(tmp.path(), record_options{}, "p");
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&writer, t] {
            for (int i = 0; i < per_thread; ++i) {
                writer.submit(std::make_shared<flow>(make_flow(t * per_thread + i)));
            }
        });
    }
    writer.close();  // races with the submitters: late flows are written on their threads
    for (auto& th : pool) {
        th.join();
    }
    EXPECT_EQ(writer.written(), static_cast<std::uint64_t>(threads * per_thread));
    EXPECT_EQ(writer.queued(), 0u);
    EXPECT_EQ(list(tmp.path()).json_files.size(), static_cast<std::size_t>(threads * per_thread));
}

TEST(record_writer, destructor_drains_too) {
    test::temp_dir tmp("record_writer_test");
    {
        record_writer writer(tmp.path(), record_options{}, "p");
        for (int i = 0; i < 20; ++i) {
            writer.submit(std::make_shared<flow>(make_flow(i)));
        }
    }
    EXPECT_EQ(list(tmp.path()).json_files.size(), 20u);
}

TEST(record_writer, submit_after_close_writes_synchronously) {
    test::temp_dir tmp("record_writer_test");
    record_writer writer(tmp.path(), record_options{}, "p");
    writer.close();
    flow f = make_flow(1);
    std::string id = f.id;
    writer.submit(std::make_shared<flow>(std::move(f)));
    EXPECT_EQ(writer.written(), 1u);
    EXPECT_TRUE(fs::exists(tmp.path() / (id + ".json")));
}

TEST(record_writer, unsafe_ids_do_not_escape_the_directory) {
    test::temp_dir tmp("record_writer_test");
    fs::create_directory(tmp.path() / "logs");
    record_writer writer(tmp.path() / "logs", record_options{}, "p");
    flow f = make_flow(1);
    f.id = "../escaped";
    writer.submit(std::make_shared<flow>(std::move(f)));
    f = make_flow(2);
    f.id = "";
    writer.submit(std::make_shared<flow>(std::move(f)));
    writer.close();
    EXPECT_FALSE(fs::exists(tmp.path() / "escaped.json"));
    EXPECT_EQ(list(tmp.path() / "logs").json_files.size(), 2u);
}

TEST(record_writer, failures_are_counted_and_leave_no_temporary) {
    test::temp_dir tmp("record_writer_test");
    record_writer writer(tmp.path(), record_options{}, "p");
    flow f = make_flow(1);
    // A directory where the record should go makes the final rename fail.
    fs::create_directory(tmp.path() / (f.id + ".json"));
    writer.submit(std::make_shared<flow>(std::move(f)));
    writer.submit(std::make_shared<flow>(make_flow(2)));
    writer.close();
    EXPECT_EQ(writer.failed(), 1u);
    EXPECT_EQ(writer.written(), 1u);
    EXPECT_TRUE(list(tmp.path()).others.empty());
}

TEST(record_writer, records_are_pretty_printed_with_a_trailing_newline) {
    test::temp_dir tmp("record_writer_test");
    record_writer writer(tmp.path(), record_options{}, "p");
    flow f = make_flow(1);
    f.response->headers.emplace_back("X-Bad", std::string("\xff\xfe", 2));
    std::string id = f.id;
    writer.submit(std::make_shared<flow>(std::move(f)));
    writer.close();
    std::string text = test::read_file(tmp.path() / (id + ".json"));
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    EXPECT_NE(text.find("\n  \"object_type\""), std::string::npos);
    EXPECT_TRUE(json::accept(text));
}

}  // namespace
}  // namespace llm_proxy::record

namespace llm_proxy::record {
namespace {

using test::gated_writer;

// Runs wait_for_room() as a coroutine on `ioc`; `done` turns true when it returns.
void spawn_wait(boost::asio::io_context& ioc, record_writer& w, bool& done) {
    boost::asio::co_spawn(
        ioc,
        [&w, &done]() -> boost::asio::awaitable<void> {
            co_await w.wait_for_room();
            done = true;
        },
        boost::asio::detached);
}

TEST(record_writer, a_full_queue_holds_new_requests_until_the_writer_catches_up) {
    test::temp_dir tmp("record_writer_test");
    gated_writer writer(tmp.path(), record_options{}, "proxy-1", 64 * 1024);
    EXPECT_EQ(writer.max_queue_bytes(), 64u * 1024);

    // Below the bound: no wait.
    boost::asio::io_context ioc;
    auto small = std::make_shared<flow>(make_flow(1));
    writer.submit(small);
    EXPECT_GT(writer.queued_bytes(), 0u);
    EXPECT_LT(writer.queued_bytes(), 64u * 1024);
    bool done = false;
    spawn_wait(ioc, writer, done);
    ioc.run_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(done);
    EXPECT_EQ(writer.waits(), 0u);

    // A flow with a 100 KiB body fills it: the next request waits as long as the writer is
    // held, and goes on once the records are written.
    auto big = std::make_shared<flow>(make_flow(2));
    big->response_body.append(std::string(100 * 1024, 'x'), 1 << 20);
    writer.submit(big);
    EXPECT_GE(writer.queued_bytes(), 64u * 1024);
    done = false;
    ioc.restart();
    spawn_wait(ioc, writer, done);
    ioc.run_for(std::chrono::milliseconds(300));
    EXPECT_FALSE(done);  // the writer is held: nothing can have been written
    EXPECT_EQ(writer.written(), 0u);
    EXPECT_EQ(writer.waits(), 1u);

    writer.open();
    for (int i = 0; i < 1000 && !done; ++i) {
        ioc.run_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(done);
    writer.close();
    EXPECT_EQ(writer.written(), 2u);
    EXPECT_EQ(writer.queued_bytes(), 0u);
    EXPECT_EQ(list(tmp.path()).json_files.size(), 2u);
}

// The queue's bound at its edges: with F bytes queued (one held flow), a bound of F + 1 lets
// the next request go on at once; a bound of exactly F (the queue is full) or F - 1 makes it
// wait until the writer has written the flow.
TEST(record_writer, the_queue_bound_at_its_edges) {
    auto f = std::make_shared<const flow>(make_flow(1));
    std::size_t footprint = 0;
    {
        test::temp_dir tmp("record_writer_test");
        gated_writer probe(tmp.path(), record_options{}, "proxy-1", 0);
        probe.submit(f);
        footprint = probe.queued_bytes();  // the same flow counts the same in every writer
    }
    ASSERT_GT(footprint, 2048u);  // the fixed allowance and the flow's strings
    for (std::size_t bound : {footprint + 1, footprint, footprint - 1}) {
        SCOPED_TRACE("bound " + std::to_string(bound) + ", footprint " + std::to_string(footprint));
        test::temp_dir tmp("record_writer_test");
        gated_writer writer(tmp.path(), record_options{}, "proxy-1", bound);
        boost::asio::io_context ioc;
        bool done = false;
        spawn_wait(ioc, writer, done);  // an empty queue: no wait
        ioc.poll();
        EXPECT_TRUE(done);
        writer.submit(f);
        EXPECT_EQ(writer.queued_bytes(), footprint);
        done = false;
        ioc.restart();
        spawn_wait(ioc, writer, done);
        ioc.poll();  // runs the coroutine up to its first timer wait, if it waits
        const bool waits = bound <= footprint;
        EXPECT_EQ(done, !waits);
        EXPECT_EQ(writer.waits(), waits ? 1u : 0u);
        writer.open();
        for (int i = 0; i < 1000 && !done; ++i) {
            ioc.run_for(std::chrono::milliseconds(10));
        }
        EXPECT_TRUE(done);
        writer.close();
        EXPECT_EQ(writer.written(), 1u);
        EXPECT_EQ(writer.queued_bytes(), 0u);
    }
}

TEST(record_writer, zero_bound_never_waits) {
    test::temp_dir tmp("record_writer_test");
    gated_writer writer(tmp.path(), record_options{}, "proxy-1", 0);
    auto big = std::make_shared<flow>(make_flow(1));
    big->response_body.append(std::string(1 << 20, 'x'), 1 << 20);
    writer.submit(big);
    boost::asio::io_context ioc;
    bool done = false;
    spawn_wait(ioc, writer, done);
    ioc.run_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(done);
    EXPECT_EQ(writer.waits(), 0u);
}

// --- Durability (--fsync)

TEST(record_writer, fsync_modes_parse) {
    EXPECT_EQ(parse_fsync_mode("none"), fsync_mode::none);
    EXPECT_EQ(parse_fsync_mode("record"), fsync_mode::record);
    EXPECT_EQ(parse_fsync_mode("interval"), fsync_mode::interval);
    EXPECT_FALSE(parse_fsync_mode("always"));
    EXPECT_FALSE(parse_fsync_mode(""));
}

TEST(record_writer, write_now_returns_once_the_record_is_written_and_it_is_not_written_twice) {
    test::temp_dir tmp("record_writer_test");
    durability_options durable{fsync_mode::record, std::chrono::milliseconds(1000)};
    gated_writer writer(tmp.path(), record_options{}, "proxy-1", 0, durable);
    EXPECT_EQ(writer.fsync(), fsync_mode::record);
    auto good = std::make_shared<flow>(make_flow(1));
    auto failed = std::make_shared<flow>(make_flow(2));

    boost::asio::io_context ioc;
    bool done = false;
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> {
            co_await writer.write_now(*good);
            co_await writer.write_now(*failed);
            done = true;
        },
        boost::asio::detached);
    ioc.run_for(std::chrono::milliseconds(300));
    EXPECT_FALSE(done);  // the writer thread is held: the caller waits
    EXPECT_TRUE(list(tmp.path()).json_files.empty());
    writer.open();
    for (int i = 0; i < 1000 && !done; ++i) {
        ioc.run_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(done);
    // On disk the moment write_now returned.
    EXPECT_EQ(list(tmp.path()).json_files.size(), 2u);
    EXPECT_EQ(writer.written(), 2u);

    // The flow that ended well is not written again; the one whose client left during the
    // last write is, with its error.
    failed->error_kind = flow_error::client_disconnected;
    failed->error = "client went away during the response";
    writer.submit(good);
    writer.submit(failed);
    writer.close();
    EXPECT_EQ(writer.written(), 3u);
    EXPECT_EQ(writer.queued(), 0u);
    auto files = list(tmp.path());
    EXPECT_EQ(files.json_files.size(), 2u);
    EXPECT_TRUE(files.others.empty());
    std::ifstream in(tmp.path() / (failed->id + ".json"));
    auto record = json::parse(in);
    EXPECT_EQ(record.dump().find("client_disconnected") != std::string::npos, true)
        << record.dump();
}

TEST(record_writer, interval_mode_syncs_the_file_system_after_writes) {
    test::temp_dir tmp("record_writer_test");
    durability_options every_50ms{fsync_mode::interval, std::chrono::milliseconds(50)};
    record_writer writer(tmp.path(), record_options{}, "proxy-1", 0, every_50ms);
    EXPECT_EQ(writer.syncs(), 0u);  // nothing written, nothing to sync
    for (int i = 0; i < 3; ++i) {
        writer.submit(std::make_shared<flow>(make_flow(i)));
    }
    for (int i = 0; i < 500 && writer.syncs() == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GE(writer.syncs(), 1u);
    writer.close();  // does not wait for a pending timer
    EXPECT_EQ(writer.written(), 3u);
    EXPECT_EQ(list(tmp.path()).json_files.size(), 3u);
}

TEST(record_writer, temporaries_left_by_an_interrupted_proxy_are_removed_at_start) {
    test::temp_dir tmp("record_writer_test");
    auto write = [](const fs::path& p) { std::ofstream(p) << "{\"half"; };
    auto old = tmp.path() / ".0b1c.json.tmp";
    auto fresh = tmp.path() / ".77aa.json.tmp";  // maybe another proxy's, being written
    auto other = tmp.path() / ".notes.tmp";
    auto record = tmp.path() / "5e5e.json";
    for (const auto& p : {old, fresh, other, record}) {
        write(p);
    }
    auto two_minutes_ago = fs::file_time_type::clock::now() - std::chrono::minutes(2);
    fs::last_write_time(old, two_minutes_ago);
    fs::last_write_time(other, two_minutes_ago);
    fs::last_write_time(record, two_minutes_ago);

    record_writer writer(tmp.path(), record_options{}, "proxy-1");
    EXPECT_FALSE(fs::exists(old));
    EXPECT_TRUE(fs::exists(fresh));
    EXPECT_TRUE(fs::exists(other));
    EXPECT_TRUE(fs::exists(record));
}

}  // namespace
}  // namespace llm_proxy::record

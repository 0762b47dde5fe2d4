// dir_logger --format jsonl: segments of whole lines, rotated by size and age, a cut last line
// repaired at start, and records that are the one-file records as single lines with their id.
#include "../../src/record/segment_writer.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/record/record_writer.hpp"
#include "llm_proxy/util/ids.hpp"
#include "support/gated_writer.hpp"
#include "support/temp_dir.hpp"

namespace llm_proxy::record {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<fs::path> segments(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() == ".jsonl") {
            out.push_back(e.path());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> lines_of(const fs::path& p) {
    std::vector<std::string> out;
    std::istringstream in(read_all(p));
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

flow sample_flow(int n) {
    flow f;
    f.id = make_uuid();
    f.client_address = "127.0.0.1:4000" + std::to_string(n);
    f.started_at = std::chrono::system_clock::now();
    f.request.method = "POST";
    f.request.scheme = "https";
    f.request.host = "api.openai.com";
    f.request.port = 443;
    f.request.target = "/v1/chat/completions";
    f.request.headers = {{"Content-Type", "application/json"}};
    f.request_body.append("{\"n\":" + std::to_string(n) + ",\"text\":\"a\\nb \\u00e9\"}", 1 << 20);
    response_head r;
    r.status = 200;
    r.headers = {{"Content-Type", "application/json"}};
    f.response = r;
    f.response_body.append("{\"ok\":true}", 1 << 20);
    f.tags["cache"] = "MISS";
    return f;
}

TEST(segment_writer, a_record_line_is_the_file_record_on_one_line_with_its_id) {
    flow f = sample_flow(1);
    record_options o;
    std::string file = render_record(f, o, "proxy-1");
    std::string line = render_record(f, o, "proxy-1", record_layout::line);
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
    auto from_line = json::parse(line);
    auto from_file = json::parse(file);
    EXPECT_EQ(from_line["id"], f.id);
    from_line.erase("id");
    EXPECT_EQ(from_line, from_file);
}

TEST(segment_writer, lines_go_whole_into_segments_rotated_by_size) {
    test::temp_dir tmp("segment_writer_test");
    segment_options o;
    o.jsonl = true;
    o.rotate_bytes = 1000;
    segment_writer w(tmp.path(), "0123456789abcdef", o, false);
    std::string line = std::string(300, 'x') + "\n";
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(w.append(line), "");
    }
    w.close();
    auto files = segments(tmp.path());
    ASSERT_EQ(files.size(), 4u);  // 3 lines (900 bytes) per segment
    std::size_t total = 0;
    for (const auto& p : files) {
        EXPECT_NE(p.filename().string().find("-01234567-"), std::string::npos) << p;
        auto lines = lines_of(p);
        total += lines.size();
        EXPECT_LE(lines.size(), 3u);
        auto text = read_all(p);
        EXPECT_EQ(text.back(), '\n');
        EXPECT_EQ(fs::status(p).permissions() & fs::perms::all,
                  fs::perms::owner_read | fs::perms::owner_write);
    }
    EXPECT_EQ(total, 10u);
}

TEST(segment_writer, a_line_longer_than_the_size_bound_still_gets_a_segment_of_its_own) {
    test::temp_dir tmp("segment_writer_test");
    segment_options o;
    o.rotate_bytes = 100;
    segment_writer w(tmp.path(), "p", o, true);
    ASSERT_EQ(w.append(std::string(500, 'y') + "\n"), "");
    ASSERT_EQ(w.append("short\n"), "");
    w.close();
    auto files = segments(tmp.path());
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(lines_of(files[0]).size(), 1u);
    EXPECT_EQ(lines_of(files[1]), std::vector<std::string>{"short"});
}

TEST(segment_writer, rotated_by_age) {
    test::temp_dir tmp("segment_writer_test");
    segment_options o;
    o.rotate_interval = std::chrono::seconds(0);  // every line starts a new segment
    segment_writer w(tmp.path(), "p", o, false);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(w.append("{}\n"), "");
    }
    EXPECT_EQ(segments(tmp.path()).size(), 3u);
}

TEST(segment_writer, a_removed_directory_is_made_again_and_lines_are_not_lost_in_it) {
    test::temp_dir tmp("segment_writer_test");
    auto dir = tmp.path() / "logs";
    fs::create_directories(dir);
    segment_writer w(dir, "p", segment_options{}, false);
    ASSERT_EQ(w.append("{\"a\":1}\n"), "");
    fs::remove_all(dir);
    ASSERT_EQ(w.append("{\"a\":2}\n"), "");
    auto files = segments(dir);
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(lines_of(files[0]), std::vector<std::string>{"{\"a\":2}"});
}

TEST(segment_writer, a_cut_last_line_of_a_quiet_segment_is_removed_at_start) {
    test::temp_dir tmp("segment_writer_test");
    auto cut = tmp.path() / "llm_proxy-a.jsonl";
    auto whole = tmp.path() / "llm_proxy-b.jsonl";
    auto young = tmp.path() / "llm_proxy-c.jsonl";
    auto only_cut = tmp.path() / "llm_proxy-d.jsonl";
    std::string big(100000, 'z');  // longer than the repair's read block
    std::ofstream(cut) << "{\"a\":1}\n{\"a\":2}\n{\"a\":\"" << big;
    std::ofstream(whole) << "{\"b\":1}\n";
    std::ofstream(young) << "{\"c\":1}\n{\"c\":";
    std::ofstream(only_cut) << "{\"d\":";
    auto old = fs::file_time_type::clock::now() - std::chrono::minutes(5);
    for (const auto& p : {cut, whole, only_cut}) {
        fs::last_write_time(p, old);
    }
    EXPECT_EQ(repair_segments(tmp.path()), 2u);
    EXPECT_EQ(read_all(cut), "{\"a\":1}\n{\"a\":2}\n");
    EXPECT_EQ(read_all(whole), "{\"b\":1}\n");
    EXPECT_EQ(read_all(young), "{\"c\":1}\n{\"c\":");  // maybe being written: left alone
    EXPECT_EQ(read_all(only_cut), "");
}

TEST(segment_writer, the_record_writer_appends_one_line_per_flow) {
    test::temp_dir tmp("segment_writer_test");
    segment_options o;
    o.jsonl = true;
    std::vector<std::string> ids;
    {
        record_writer w(tmp.path(), record_options{}, "proxy-1", 0, durability_options{}, o);
        for (int i = 0; i < 5; ++i) {
            auto f = std::make_shared<flow>(sample_flow(i));
            ids.push_back(f->id);
            w.submit(f);
        }
        w.close();
        EXPECT_EQ(w.written(), 5u);
    }
    auto files = segments(tmp.path());
    ASSERT_EQ(files.size(), 1u);
    auto lines = lines_of(files[0]);
    ASSERT_EQ(lines.size(), 5u);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        auto j = json::parse(lines[i]);
        EXPECT_EQ(j["id"], ids[i]);
        EXPECT_EQ(j["object_type"], "llm_proxy_traffic_log");
    }
    // No one-file records beside the segment.
    std::size_t others = 0;
    for (const auto& e : fs::directory_iterator(tmp.path())) {
        others += e.path().extension() != ".jsonl";
    }
    EXPECT_EQ(others, 0u);
}

// A flow whose record has a response body of `body` bytes ('r': nothing to escape).
std::shared_ptr<flow> flow_with_body(int n, std::size_t body) {
    auto f = std::make_shared<flow>(sample_flow(n));
    f->response_body = captured_body{};
    f->response_body.append(std::string(body, 'r'), 4 << 20);
    return f;
}

// Writes one flow, holds the writer at its gate, then submits flows with these response body
// sizes, so that they all make one batch. Checks that every record is written, in order and
// whole, and that a segment holds more than `o.rotate_bytes` only as a single line.
void expect_one_batch_written_whole(const std::vector<std::size_t>& body_sizes, segment_options o) {
    test::temp_dir tmp("segment_writer_test");
    o.jsonl = true;
    std::vector<std::string> ids;
    std::vector<std::size_t> sizes;
    {
        test::gated_writer w(tmp.path(), record_options{}, "proxy-1", 0, durability_options{}, o);
        auto submit = [&](std::size_t body) {
            auto f = flow_with_body(static_cast<int>(ids.size()), body);
            ids.push_back(f->id);
            sizes.push_back(body);
            w.submit(f);
        };
        submit(10);  // the writer takes this one alone and waits at the gate
        for (int i = 0; i < 1000 && !w.held(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ASSERT_TRUE(w.held());
        for (auto body : body_sizes) {
            submit(body);
        }
        w.open();
        w.close();
        EXPECT_EQ(w.written(), ids.size());
        EXPECT_EQ(w.failed(), 0u);
    }
    std::vector<std::string> all;
    for (const auto& p : segments(tmp.path())) {
        auto text = read_all(p);
        ASSERT_FALSE(text.empty());
        EXPECT_EQ(text.back(), '\n') << p;
        auto lines = lines_of(p);
        EXPECT_TRUE(text.size() <= o.rotate_bytes || lines.size() == 1u)
            << p << ": " << text.size() << " bytes in " << lines.size() << " lines";
        all.insert(all.end(), lines.begin(), lines.end());
    }
    ASSERT_EQ(all.size(), ids.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
        auto j = json::parse(all[i]);
        EXPECT_EQ(j["id"], ids[i]) << "line " << i;
        EXPECT_EQ(j["response"]["body"].get<std::string>().size(), sizes[i]) << "line " << i;
    }
}

// Records that gather while the writer is busy go out in appends of at most max_append_bytes
// of whole lines; a line longer than that goes alone, so a segment passes --rotate-mib only
// when one line does.
TEST(segment_writer, a_batch_is_appended_in_pieces_of_whole_lines_within_the_size_bound) {
    std::vector<std::size_t> sizes(30, 20 * 1024);  // small lines,
    sizes.push_back(1536 * 1024);                   // one longer than the bound,
    sizes.insert(sizes.end(), 30, 20 * 1024);       // small lines again
    segment_options o;
    o.rotate_bytes = 1 << 20;
    expect_one_batch_written_whole(sizes, o);
}

// Lines that add up to one byte less than max_append_bytes, exactly it, and one byte more
// (then a small line), with segments rotated at that same size.
TEST(segment_writer, a_batch_at_the_append_bound_and_one_byte_either_side) {
    const std::size_t bound = record_writer::max_append_bytes;
    const std::size_t overhead =
        render_record(*flow_with_body(1, 0), record_options{}, "proxy-1", record_layout::line)
            .size();
    for (int delta : {-1, 0, 1}) {
        SCOPED_TRACE("lines of max_append_bytes " + std::to_string(delta) + " bytes");
        const std::size_t first = 100 * 1024;
        const std::size_t second = bound - first - 2 * overhead + static_cast<std::size_t>(delta);
        segment_options o;
        o.rotate_bytes = bound;
        expect_one_batch_written_whole({first, second, 10}, o);
    }
}

}  // namespace
}  // namespace llm_proxy::record

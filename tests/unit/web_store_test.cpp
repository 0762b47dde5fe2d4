// web::flow_store: the web view's ring. It keeps at most its capacity, oldest out first; the
// finished flows' bodies stay within the budget (older flows give up their detail, keep their
// summary); a flow goes from in flight to finished under one id; changed_since hands out only
// what changed.

#include <gtest/gtest.h>

#include "llm_proxy/record/flow_record.hpp"
#include "llm_proxy/web/flow_detail.hpp"
#include "llm_proxy/web/flow_store.hpp"
#include "support/temp_dir.hpp"

namespace llm_proxy::web {
namespace {

std::shared_ptr<flow> make_flow(const std::string& id, std::size_t body = 0) {
    auto f = std::make_shared<flow>();
    f->id = id;
    f->request.method = "POST";
    f->request.scheme = "https";
    f->request.host = "api.openai.com";
    f->request.port = 443;
    f->request.target = "/v1/chat/completions";
    f->request_body.append(std::string(body, 'x'), body);
    return f;
}

TEST(WebStore, KeepsAtMostItsCapacityOldestOutFirst) {
    flow_store store(3);
    for (int i = 0; i < 5; ++i) {
        store.finished(make_flow("f" + std::to_string(i)));
    }
    EXPECT_EQ(store.size(), 3u);
    EXPECT_FALSE(store.find("f0"));
    EXPECT_FALSE(store.find("f1"));
    ASSERT_TRUE(store.find("f4"));
    std::uint64_t now = 0;
    auto all = store.changed_since(0, now);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all.front().id, "f2");
    EXPECT_EQ(all.back().id, "f4");
}

// The ring at capacity - 1, capacity and capacity + 1 entries, and after wrapping around
// several times: the newest `capacity` in order, each findable, the oldest gone.
TEST(WebStore, TheRingKeepsTheNewestInOrderAcrossWrapArounds) {
    constexpr int capacity = 4;
    for (int total : {capacity - 1, capacity, capacity + 1, 3 * capacity + 2}) {
        flow_store store(capacity);
        for (int i = 0; i < total; ++i) {
            store.finished(make_flow("f" + std::to_string(i)));
        }
        int kept = std::min(total, capacity);
        EXPECT_EQ(store.size(), static_cast<std::size_t>(kept)) << total;
        std::uint64_t now = 0;
        auto all = store.changed_since(0, now);
        ASSERT_EQ(all.size(), static_cast<std::size_t>(kept)) << total;
        for (int k = 0; k < kept; ++k) {
            EXPECT_EQ(all[k].id, "f" + std::to_string(total - kept + k)) << total;
            EXPECT_TRUE(store.find(all[k].id)) << total;
        }
        if (total > capacity) {
            EXPECT_FALSE(store.find("f" + std::to_string(total - capacity - 1))) << total;
        }
    }
}

// A flow in flight while newer ones fill the ring: finished in place while its entry is kept;
// once overwritten, its finish makes a new entry (the newest) with its request fields.
TEST(WebStore, AFlowFinishingAfterTheRingWrappedIsStillListed) {
    flow_store store(3);
    auto slow = make_flow("slow");
    store.started(*slow);
    store.started(*make_flow("a"));
    store.started(*make_flow("b"));
    store.finished(slow);
    ASSERT_TRUE(store.find("slow"));
    EXPECT_TRUE(store.find("slow")->done);
    EXPECT_EQ(store.size(), 3u);

    auto late = make_flow("late");
    store.started(*late);  // in the slot "slow" had
    // A reused slot carries nothing of the entry it held before.
    ASSERT_TRUE(store.find("late"));
    EXPECT_FALSE(store.find("late")->done);
    EXPECT_FALSE(store.find("late")->live);
    EXPECT_FALSE(store.find("slow"));
    store.started(*make_flow("c"));
    store.started(*make_flow("d"));
    store.started(*make_flow("e"));  // "late" is overwritten
    EXPECT_FALSE(store.find("late"));
    store.finished(late);
    auto e = store.find("late");
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->done);
    EXPECT_EQ(e->method, "POST");
    EXPECT_EQ(e->path, "/v1/chat/completions");
    EXPECT_TRUE(e->live);
    std::uint64_t now = 0;
    auto all = store.changed_since(0, now);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].id, "d");
    EXPECT_EQ(all[1].id, "e");
    EXPECT_EQ(all[2].id, "late");
}

// The body budget after wrap-arounds, and a flow older than those given up finishing later.
TEST(WebStore, TheBodyBudgetHoldsAcrossWrapArounds) {
    flow_store store(3, 250);
    auto old = make_flow("old", 100);
    store.started(*old);
    for (int i = 0; i < 7; ++i) {
        store.finished(make_flow("f" + std::to_string(i), 100));
    }
    // f4, f5, f6 kept; 300 bytes > 250: f4 gave up its detail.
    EXPECT_FALSE(store.find("f4")->live);
    EXPECT_TRUE(store.find("f5")->live);
    EXPECT_TRUE(store.find("f6")->live);

    flow_store again(4, 250);
    auto slow = make_flow("slow", 100);
    again.started(*slow);
    again.finished(make_flow("a", 100));
    again.finished(make_flow("b", 100));
    again.finished(make_flow("c", 100));  // a gives up its detail
    EXPECT_FALSE(again.find("a")->live);
    again.finished(slow);  // the oldest entry: it gives up its detail at once
    EXPECT_FALSE(again.find("slow")->live);
    EXPECT_TRUE(again.find("slow")->done);
    EXPECT_TRUE(again.find("b")->live);
    EXPECT_TRUE(again.find("c")->live);
}

TEST(WebStore, OlderFlowsGiveUpTheirDetailBeyondTheBodyBudget) {
    flow_store store(10, 250);
    store.finished(make_flow("a", 100));
    store.finished(make_flow("b", 100));
    store.finished(make_flow("c", 100));  // 300 > 250: a's detail goes
    auto a = store.find("a");
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->live);
    EXPECT_EQ(a->method, "POST");  // the summary stays
    EXPECT_TRUE(store.find("b")->live);
    EXPECT_TRUE(store.find("c")->live);
}

TEST(WebStore, AFlowGoesFromInFlightToFinishedUnderOneId) {
    flow_store store(10);
    auto f = make_flow("x");
    store.started(*f);
    auto started = store.find("x");
    ASSERT_TRUE(started);
    EXPECT_FALSE(started->done);
    EXPECT_EQ(summary_json(*started)["state"], "in_flight");

    f->response = response_head{};
    f->response->status = 200;
    store.response_started(*f);
    EXPECT_EQ(store.find("x")->status, 200u);
    EXPECT_FALSE(store.find("x")->done);

    std::uint64_t before = 0;
    store.changed_since(0, before);
    store.finished(f);
    std::uint64_t now = 0;
    auto changed = store.changed_since(before, now);
    ASSERT_EQ(changed.size(), 1u);
    EXPECT_EQ(changed[0].id, "x");
    EXPECT_TRUE(changed[0].done);
    EXPECT_EQ(summary_json(changed[0])["state"], "done");
    EXPECT_EQ(store.size(), 1u);
    EXPECT_TRUE(store.changed_since(now, now).empty());
}

TEST(WebStore, AFailedFlowIsAnError) {
    flow_store store(10);
    auto f = make_flow("e");
    f->error_kind = flow_error::connect;
    store.finished(f);
    auto j = summary_json(*store.find("e"));
    EXPECT_EQ(j["state"], "error");
    EXPECT_NE(j["error"], "");
    EXPECT_EQ(j["status"], 0);
}

TEST(WebStore, AFlowThatLeftTheRingIsReadFromTheRecordsDirectory) {
    test::temp_dir dir("web_store");
    auto f = make_flow("r1", 10);
    dir.write_file("r1.json", record::render_record(*f, record::record_options{}, "proxy"));
    flow_store store(1);
    store.set_records_dir(dir.path());
    store.finished(f);
    store.finished(make_flow("r2"));
    EXPECT_FALSE(store.find("r1"));

    auto at = locate_record(store.records_dir(), "r1");
    ASSERT_TRUE(at);
    EXPECT_EQ(at->file, store.records_dir() / "r1.json");
    auto e = entry_from_disk(*at, {});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, "r1");
    EXPECT_EQ(e->method, "POST");
    auto record = flow_record(*e, {}, store.records_dir());
    ASSERT_TRUE(record);
    EXPECT_EQ((*record)["request"]["url"], "https://api.openai.com/v1/chat/completions");
    EXPECT_EQ((*record)["request"]["body"], std::string(10, 'x'));

    // An entry whose detail is gone: read from <dir>/<id>.json, or nothing.
    flow_entry gone;
    gone.id = "r1";
    EXPECT_TRUE(flow_record(gone, {}, store.records_dir()));
    EXPECT_FALSE(flow_record(gone, {}));
    gone.id = "nope";
    EXPECT_FALSE(flow_record(gone, {}, store.records_dir()));
    EXPECT_FALSE(locate_record(store.records_dir(), "nope"));
    EXPECT_FALSE(entry_from_disk({store.records_dir() / "nope.json", 0}, {}));
}

TEST(WebStore, AFlowThatLeftTheRingIsFoundInTheJsonlSegments) {
    test::temp_dir dir("web_store_jsonl");
    auto line = [](const std::string& id, std::size_t body) {
        return record::render_record(*make_flow(id, body), record::record_options{}, "proxy",
                                     record::record_layout::line);
    };
    // A body that holds another flow's id member as text, and a line without its newline
    // (cut by a killed writer): neither is taken for the record.
    auto decoy = make_flow("d1");
    decoy->request_body.append(R"({"id":"s2"})", 100);
    auto decoy_line = record::render_record(*decoy, record::record_options{}, "proxy",
                                            record::record_layout::line);
    const auto s1 = line("s1", 3);
    dir.write_file("llm_proxy-a-1.jsonl", s1 + decoy_line + line("s2", 5));
    auto cut = line("s3", 7);
    cut.pop_back();
    dir.write_file("llm_proxy-a-2.jsonl", line("s4", 1) + cut);

    auto at = locate_record(dir.path(), "s2");
    ASSERT_TRUE(at);
    EXPECT_EQ(at->file, dir.path() / "llm_proxy-a-1.jsonl");
    EXPECT_EQ(at->line, 3u);
    EXPECT_EQ(at->offset, s1.size() + decoy_line.size());  // read again from there alone
    auto e = entry_from_disk(*at, {});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, "s2");
    ASSERT_TRUE(e->disk);
    auto record = flow_record(*e, {});
    ASSERT_TRUE(record);
    EXPECT_EQ((*record)["request"]["body"], std::string(5, 'x'));

    // A live entry that gave up its detail is read from the segments too.
    flow_entry gone;
    gone.id = "s4";
    auto r4 = flow_record(gone, {}, dir.path());
    ASSERT_TRUE(r4);
    EXPECT_EQ((*r4)["id"], "s4");

    EXPECT_FALSE(locate_record(dir.path(), "s3"));
    EXPECT_FALSE(locate_record(dir.path(), "s"));
    EXPECT_FALSE(locate_record(dir.path() / "missing", "s1"));
}

TEST(WebStore, ALiveFlowIsShownWithTheHeaderFiltersGiven) {
    auto f = make_flow("h1");
    f->request.headers = {
        {"Authorization", "Bearer sk-secret"}, {"X-Team-Key", "k-123"}, {"Accept", "*/*"}};
    flow_entry e;
    e.id = "h1";
    e.live = f;
    auto plain = flow_record(e, {});
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->dump().find("sk-secret"), std::string::npos);
    EXPECT_NE(plain->dump().find("k-123"), std::string::npos);

    record::record_options shown;
    shown.filter_request_headers.push_back("x-team-key");
    auto filtered = flow_record(e, {}, {}, shown);
    ASSERT_TRUE(filtered);
    EXPECT_EQ(filtered->dump().find("sk-secret"), std::string::npos);
    EXPECT_EQ(filtered->dump().find("k-123"), std::string::npos);
    EXPECT_NE(filtered->dump().find("*/*"), std::string::npos);
}

}  // namespace
}  // namespace llm_proxy::web

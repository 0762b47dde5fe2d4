#include "support/otlp_collector.hpp"
#include "support/otlp_protobuf.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <future>
#include <list>
#include <set>
#include <thread>

#include "llm_proxy/record/body_decoder.hpp"
#include "llm_proxy/util/text.hpp"

namespace llm_proxy::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

struct otlp_collector::impl : std::enable_shared_from_this<impl> {
    asio::io_context ioc;
    // Keeps run() going until the destructor lets it end, once every coroutine has finished
    // (a stopped io_context would keep their frames, and the shared_ptr to this, forever).
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
    std::optional<tcp::acceptor> acceptor;
    std::list<std::weak_ptr<tcp::socket>> sockets;
    std::thread thread;
    std::uint16_t port = 0;

    mutable std::mutex mutex;
    mutable std::condition_variable changed;
    std::vector<request> received;
    unsigned status = 200;
    bool close_each = false;
    std::size_t accepted = 0;

    void listen(std::uint16_t p) {
        acceptor.emplace(ioc);
        tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), p);
        acceptor->open(ep.protocol());
        acceptor->set_option(asio::socket_base::reuse_address(true));
        acceptor->bind(ep);
        acceptor->listen();
        port = acceptor->local_endpoint().port();
        asio::co_spawn(ioc, accept_loop(shared_from_this()), asio::detached);
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
        for (;;) {
            if (!self->acceptor || !self->acceptor->is_open()) {
                co_return;
            }
            auto socket = std::make_shared<tcp::socket>(self->ioc);
            boost::system::error_code ec;
            co_await self->acceptor->async_accept(*socket,
                                                  asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                co_return;
            }
            self->sockets.push_back(socket);
            std::size_t number = 0;
            {
                std::lock_guard lock(self->mutex);
                number = ++self->accepted;
            }
            asio::co_spawn(self->ioc, serve(self, socket, number), asio::detached);
        }
    }

    static asio::awaitable<void> serve(std::shared_ptr<impl> self,
                                       std::shared_ptr<tcp::socket> socket, std::size_t number) {
        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(256u << 20);
            boost::system::error_code ec;
            co_await http::async_read(*socket, buffer, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                co_return;
            }
            auto& req = parser.get();
            request r;
            r.connection = number;
            r.method = std::string(req.method_string());
            r.target = std::string(req.target());
            for (const auto& field : req) {
                r.headers[to_lower(field.name_string())] = std::string(field.value());
            }
            r.body = req.body();
            if (auto it = r.headers.find("content-encoding"); it != r.headers.end()) {
                auto decoded = record::decode_body(it->second, r.body, 256u << 20);
                r.body = decoded.data;
            }
            bool malformed = false;
            if (auto it = r.headers.find("content-type");
                it != r.headers.end() && it->second == "application/x-protobuf") {
                // Kept as its OTLP JSON form, so every check reads both encodings alike; a
                // body that does not decode is answered 400, as a collector does.
                r.protobuf = std::move(r.body);
                std::string error;
                auto decoded = otlp_protobuf_to_json(r.protobuf, error);
                r.body = decoded ? decoded->dump() : "";
                r.protobuf_error = error;
                malformed = !decoded;
            }
            bool keep = req.keep_alive();
            {
                std::lock_guard lock(self->mutex);
                r.answered = malformed ? 400 : self->status;
                keep = keep && !self->close_each;
                self->received.push_back(r);
            }
            self->changed.notify_all();
            http::response<http::string_body> res{static_cast<http::status>(r.answered), 11};
            res.set(http::field::content_type, "application/json");
            res.body() = r.answered < 300   ? "{}"
                         : r.answered < 500 ? R"({"code":3,"message":"invalid request"})"
                                            : R"({"code":14,"message":"unavailable"})";
            res.keep_alive(keep);
            res.prepare_payload();
            co_await http::async_write(*socket, res, asio::redirect_error(asio::use_awaitable, ec));
            if (ec || !keep) {
                socket->shutdown(tcp::socket::shutdown_send, ec);
                co_return;
            }
        }
    }

    void down() {
        if (acceptor) {
            boost::system::error_code ec;
            acceptor->close(ec);
        }
        close_sockets();
    }

    void close_sockets() {
        for (auto& w : sockets) {
            if (auto s = w.lock()) {
                boost::system::error_code ec;
                s->shutdown(tcp::socket::shutdown_both, ec);
                s->close(ec);
            }
        }
        sockets.clear();
    }

    template <class F>
    void run_on_loop(F f) {
        std::promise<void> done;
        asio::post(ioc, [&] {
            try {
                f();
                done.set_value();
            } catch (...) {
                done.set_exception(std::current_exception());
            }
        });
        done.get_future().get();
    }
};

otlp_collector::otlp_collector() : impl_(std::make_shared<impl>()) {
    impl_->listen(0);
    port_ = impl_->port;
    auto i = impl_;
    i->guard.emplace(asio::make_work_guard(i->ioc));
    i->thread = std::thread([i] { i->ioc.run(); });
}

otlp_collector::~otlp_collector() {
    // Closing the acceptor and the connections ends every coroutine; then run() returns.
    impl_->run_on_loop([this] {
        impl_->down();
        impl_->guard.reset();
    });
    impl_->thread.join();
}

std::string otlp_collector::endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
}

void otlp_collector::answer_with(unsigned status) {
    std::lock_guard lock(impl_->mutex);
    impl_->status = status;
}

void otlp_collector::go_down() {
    impl_->run_on_loop([this] { impl_->down(); });
}

void otlp_collector::come_back() {
    impl_->run_on_loop([this] { impl_->listen(port_); });
}

void otlp_collector::close_connections() {
    impl_->run_on_loop([this] { impl_->close_sockets(); });
}

void otlp_collector::close_after_answer(bool yes) {
    std::lock_guard lock(impl_->mutex);
    impl_->close_each = yes;
}

std::size_t otlp_collector::connections() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->accepted;
}

std::vector<otlp_collector::request> otlp_collector::requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->received;
}

std::vector<json> otlp_collector::accepted_bodies() const {
    std::vector<json> out;
    for (const auto& r : requests()) {
        if (r.answered >= 200 && r.answered < 300) {
            out.push_back(json::parse(r.body, nullptr, false));
        }
    }
    return out;
}

std::vector<json> otlp_collector::spans() const {
    std::vector<json> out;
    for (const auto& body : accepted_bodies()) {
        if (!body.is_object() || !body.contains("resourceSpans")) {
            continue;
        }
        for (const auto& rs : body["resourceSpans"]) {
            for (const auto& ss : rs.value("scopeSpans", json::array())) {
                for (const auto& s : ss.value("spans", json::array())) {
                    out.push_back(s);
                }
            }
        }
    }
    return out;
}

bool otlp_collector::wait_for_spans(std::size_t n, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (spans().size() >= n) {
            return true;
        }
        std::unique_lock lock(impl_->mutex);
        impl_->changed.wait_for(lock, std::chrono::milliseconds(100));
    }
    return spans().size() >= n;
}

bool otlp_collector::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, timeout, [&] { return impl_->received.size() >= n; });
}

json span_attribute(const json& span, const std::string& key) {
    for (const auto& kv : span.value("attributes", json::array())) {
        if (kv.value("key", "") == key) {
            return kv.value("value", json());
        }
    }
    return json();
}

std::string span_attribute_text(const json& span, const std::string& key) {
    auto v = span_attribute(span, key);
    if (v.is_null()) {
        return "";
    }
    if (v.contains("stringValue")) {
        return v["stringValue"].get<std::string>();
    }
    if (v.contains("intValue") && v["intValue"].is_string()) {
        return v["intValue"].get<std::string>();
    }
    return v.begin()->dump();
}

// --- The OTLP JSON checker. Field names and types follow the proto3 messages of
// opentelemetry-proto: trace/v1/trace.proto (ResourceSpans, ScopeSpans, Span, Status),
// common/v1/common.proto (AnyValue, KeyValue, InstrumentationScope), resource/v1 (Resource);
// the encoding rules are OTLP's JSON mapping (ids as hex, 64-bit integers as decimal strings
// or numbers, enums as integers).

namespace {

struct checker {
    std::vector<std::string> problems;

    void fail(const std::string& where, const std::string& what) {
        problems.push_back(where + ": " + what);
    }

    bool only(const json& j, const std::string& where, const std::set<std::string>& allowed) {
        if (!j.is_object()) {
            fail(where, "not an object");
            return false;
        }
        for (const auto& [k, v] : j.items()) {
            if (!allowed.count(k)) {
                fail(where, "unknown field '" + k + "'");
            }
        }
        return true;
    }

    static bool is_hex(const std::string& s, std::size_t len) {
        if (s.size() != len) {
            return false;
        }
        for (char c : s) {
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                return false;
            }
        }
        return s.find_first_not_of('0') != std::string::npos;
    }

    // A 64-bit integer: a decimal string or a JSON integer.
    bool int64(const json& j, const std::string& where, bool is_unsigned) {
        if (j.is_number_integer()) {
            return true;
        }
        if (!j.is_string()) {
            fail(where, "not an integer");
            return false;
        }
        auto s = j.get<std::string>();
        std::size_t i = (!is_unsigned && !s.empty() && s[0] == '-') ? 1 : 0;
        if (i == s.size() || s.find_first_not_of("0123456789", i) != std::string::npos ||
            s.size() > 20) {
            fail(where, "'" + s + "' is not a decimal integer");
            return false;
        }
        return true;
    }

    void any_value(const json& v, const std::string& where) {
        if (!only(v, where,
                  {"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue",
                   "kvlistValue", "bytesValue"})) {
            return;
        }
        if (v.size() != 1) {
            fail(where,
                 "an AnyValue holds exactly one value, this one " + std::to_string(v.size()));
            return;
        }
        auto [k, x] = *v.items().begin();
        if (k == "stringValue" && !x.is_string()) {
            fail(where, "stringValue is not a string");
        } else if (k == "boolValue" && !x.is_boolean()) {
            fail(where, "boolValue is not a boolean");
        } else if (k == "intValue") {
            int64(x, where + ".intValue", false);
        } else if (k == "doubleValue" && !x.is_number()) {
            fail(where, "doubleValue is not a number");
        } else if (k == "bytesValue" && (!x.is_string() || !base64_decode(x.get<std::string>()))) {
            fail(where, "bytesValue is not base64");
        } else if (k == "arrayValue") {
            if (only(x, where + ".arrayValue", {"values"})) {
                auto values = x.value("values", json::array());
                for (std::size_t i = 0; i < values.size(); ++i) {
                    any_value(values[i], where + ".arrayValue.values[" + std::to_string(i) + "]");
                }
            }
        } else if (k == "kvlistValue") {
            if (only(x, where + ".kvlistValue", {"values"})) {
                attributes(x.value("values", json::array()), where + ".kvlistValue.values");
            }
        }
    }

    void attributes(const json& list, const std::string& where) {
        if (!list.is_array()) {
            fail(where, "not an array");
            return;
        }
        std::set<std::string> keys;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto w = where + "[" + std::to_string(i) + "]";
            if (!only(list[i], w, {"key", "value"})) {
                continue;
            }
            if (!list[i].contains("key") || !list[i]["key"].is_string() ||
                list[i]["key"].get<std::string>().empty()) {
                fail(w, "no key");
                continue;
            }
            auto key = list[i]["key"].get<std::string>();
            if (!keys.insert(key).second) {
                fail(w, "attribute '" + key + "' twice");
            }
            if (!list[i].contains("value")) {
                fail(w, "no value");
                continue;
            }
            any_value(list[i]["value"], w + "(" + key + ")");
        }
    }

    void span(const json& s, const std::string& where) {
        if (!only(s, where,
                  {"traceId", "spanId", "traceState", "parentSpanId", "flags", "name", "kind",
                   "startTimeUnixNano", "endTimeUnixNano", "attributes", "droppedAttributesCount",
                   "events", "droppedEventsCount", "links", "droppedLinksCount", "status"})) {
            return;
        }
        if (!s.contains("traceId") || !s["traceId"].is_string() ||
            !is_hex(s["traceId"].get<std::string>(), 32)) {
            fail(where, "traceId is not 32 lowercase hex digits (not all zero)");
        }
        if (!s.contains("spanId") || !s["spanId"].is_string() ||
            !is_hex(s["spanId"].get<std::string>(), 16)) {
            fail(where, "spanId is not 16 lowercase hex digits (not all zero)");
        }
        if (s.contains("parentSpanId") && !(s["parentSpanId"].is_string() &&
                                            (s["parentSpanId"].get<std::string>().empty() ||
                                             is_hex(s["parentSpanId"].get<std::string>(), 16)))) {
            fail(where, "parentSpanId is not 16 lowercase hex digits");
        }
        if (s.contains("traceState") && !s["traceState"].is_string()) {
            fail(where, "traceState is not a string");
        }
        if (s.contains("flags") &&
            !(s["flags"].is_number_unsigned() && s["flags"].get<std::uint64_t>() <= 0xffffffffu)) {
            fail(where, "flags is not a fixed32");
        }
        if (!s.contains("name") || !s["name"].is_string() || s["name"].get<std::string>().empty()) {
            fail(where, "no name");
        }
        if (s.contains("kind") && !(s["kind"].is_number_integer() && s["kind"].get<int>() >= 0 &&
                                    s["kind"].get<int>() <= 5)) {
            fail(where, "kind is not a SpanKind (0-5)");
        }
        bool times = s.contains("startTimeUnixNano") && s.contains("endTimeUnixNano") &&
                     int64(s["startTimeUnixNano"], where + ".startTimeUnixNano", true) &&
                     int64(s["endTimeUnixNano"], where + ".endTimeUnixNano", true);
        if (!times) {
            fail(where, "start or end time missing or not fixed64");
        } else {
            auto as_u64 = [](const json& j) {
                return j.is_string() ? std::stoull(j.get<std::string>()) : j.get<std::uint64_t>();
            };
            auto start = as_u64(s["startTimeUnixNano"]);
            auto end = as_u64(s["endTimeUnixNano"]);
            if (start == 0 || end < start) {
                fail(where, "end before start, or no start");
            }
        }
        if (s.contains("attributes")) {
            attributes(s["attributes"], where + ".attributes");
        }
        if (s.contains("status") && only(s["status"], where + ".status", {"message", "code"})) {
            const auto& st = s["status"];
            if (st.contains("code") &&
                !(st["code"].is_number_integer() && st["code"].get<int>() >= 0 &&
                  st["code"].get<int>() <= 2)) {
                fail(where, "status.code is not 0, 1 or 2");
            }
            if (st.contains("message") && !st["message"].is_string()) {
                fail(where, "status.message is not a string");
            }
        }
        for (const char* count :
             {"droppedAttributesCount", "droppedEventsCount", "droppedLinksCount"}) {
            if (s.contains(count) && !s[count].is_number_unsigned()) {
                fail(where, std::string(count) + " is not a uint32");
            }
        }
    }

    void request(const json& r) {
        if (!only(r, "request", {"resourceSpans"})) {
            return;
        }
        if (!r.contains("resourceSpans") || !r["resourceSpans"].is_array()) {
            fail("request", "no resourceSpans array");
            return;
        }
        for (std::size_t i = 0; i < r["resourceSpans"].size(); ++i) {
            auto w = "resourceSpans[" + std::to_string(i) + "]";
            const auto& rs = r["resourceSpans"][i];
            if (!only(rs, w, {"resource", "scopeSpans", "schemaUrl"})) {
                continue;
            }
            if (rs.contains("resource") &&
                only(rs["resource"], w + ".resource", {"attributes", "droppedAttributesCount"})) {
                attributes(rs["resource"].value("attributes", json::array()),
                           w + ".resource.attributes");
            }
            auto scopes = rs.value("scopeSpans", json::array());
            for (std::size_t j = 0; j < scopes.size(); ++j) {
                auto ws = w + ".scopeSpans[" + std::to_string(j) + "]";
                if (!only(scopes[j], ws, {"scope", "spans", "schemaUrl"})) {
                    continue;
                }
                if (scopes[j].contains("scope")) {
                    only(scopes[j]["scope"], ws + ".scope",
                         {"name", "version", "attributes", "droppedAttributesCount"});
                }
                auto spans = scopes[j].value("spans", json::array());
                for (std::size_t k = 0; k < spans.size(); ++k) {
                    span(spans[k], ws + ".spans[" + std::to_string(k) + "]");
                }
            }
        }
    }
};

}  // namespace

std::vector<std::string> otlp_trace_problems(const json& request) {
    checker c;
    c.request(request);
    return c.problems;
}

}  // namespace llm_proxy::test

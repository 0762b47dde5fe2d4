#include "support/otlp_protobuf.hpp"

#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace llm_proxy::test {

namespace {

using nlohmann::json;

struct bad_message : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// One field of a message: its number, wire type, and value (a varint, a fixed value, or the
// bytes of a length-delimited field).
struct field {
    unsigned number = 0;
    unsigned wire = 0;
    std::uint64_t value = 0;
    std::string_view bytes;
};

class reader {
  public:
    explicit reader(std::string_view data) : data_(data) {}
    bool done() const { return pos_ == data_.size(); }
    field next() {
        field f;
        auto key = varint();
        f.number = static_cast<unsigned>(key >> 3);
        f.wire = static_cast<unsigned>(key & 7);
        if (f.number == 0) {
            throw bad_message("field number 0");
        }
        switch (f.wire) {
            case 0:
                f.value = varint();
                break;
            case 1:
                f.value = fixed(8);
                break;
            case 5:
                f.value = fixed(4);
                break;
            case 2: {
                auto n = varint();
                if (n > data_.size() - pos_) {
                    throw bad_message("a length past the end of the message");
                }
                f.bytes = data_.substr(pos_, n);
                pos_ += n;
                break;
            }
            default:
                throw bad_message("wire type " + std::to_string(f.wire));
        }
        return f;
    }

  private:
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= data_.size()) {
                throw bad_message("a varint cut by the end of the message");
            }
            auto b = static_cast<unsigned char>(data_[pos_++]);
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) {
                return v;
            }
        }
        throw bad_message("a varint longer than 10 bytes");
    }
    std::uint64_t fixed(int n) {
        if (data_.size() - pos_ < static_cast<std::size_t>(n)) {
            throw bad_message("a fixed value cut by the end of the message");
        }
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i) {
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
        }
        pos_ += n;
        return v;
    }
    std::string_view data_;
    std::size_t pos_ = 0;
};

void expect_wire(const field& f, unsigned wire, const char* what) {
    if (f.wire != wire) {
        throw bad_message(std::string(what) + ": wire type " + std::to_string(f.wire));
    }
}

// nlohmann's strict serialiser refuses bytes that are not UTF-8 (overlong forms and
// surrogates included).
bool valid_utf8(std::string_view s) {
    try {
        (void)json(std::string(s)).dump();
        return true;
    } catch (const json::type_error&) {
        return false;
    }
}

std::string text(const field& f, const char* what) {
    expect_wire(f, 2, what);
    if (!valid_utf8(f.bytes)) {
        throw bad_message(std::string(what) + ": not UTF-8");
    }
    return std::string(f.bytes);
}

std::string hex(const field& f, const char* what) {
    expect_wire(f, 2, what);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (char c : f.bytes) {
        auto b = static_cast<unsigned char>(c);
        out += digits[b >> 4];
        out += digits[b & 0xf];
    }
    return out;
}

// Calls `on` for every field of `data`; `on` returns false for a field it does not know.
void each_field(std::string_view data, const char* message,
                const std::function<bool(const field&)>& on) {
    reader r(data);
    while (!r.done()) {
        auto f = r.next();
        if (!on(f)) {
            throw bad_message(std::string(message) + ": unknown field " + std::to_string(f.number));
        }
    }
}

json any_value(std::string_view data);

json key_value(std::string_view data) {
    json kv = json::object();
    each_field(data, "KeyValue", [&](const field& f) {
        if (f.number == 1) {
            kv["key"] = text(f, "KeyValue.key");
        } else if (f.number == 2) {
            expect_wire(f, 2, "KeyValue.value");
            kv["value"] = any_value(f.bytes);
        } else {
            return false;
        }
        return true;
    });
    return kv;
}

json any_value(std::string_view data) {
    json v = json::object();
    each_field(data, "AnyValue", [&](const field& f) {
        switch (f.number) {
            case 1:
                v["stringValue"] = text(f, "AnyValue.string_value");
                break;
            case 2:
                expect_wire(f, 0, "AnyValue.bool_value");
                v["boolValue"] = f.value != 0;
                break;
            case 3:
                expect_wire(f, 0, "AnyValue.int_value");
                v["intValue"] = std::to_string(static_cast<std::int64_t>(f.value));
                break;
            case 4: {
                expect_wire(f, 1, "AnyValue.double_value");
                double d = 0;
                std::memcpy(&d, &f.value, sizeof d);
                v["doubleValue"] = d;
                break;
            }
            case 5: {
                expect_wire(f, 2, "AnyValue.array_value");
                json values = json::array();
                each_field(f.bytes, "ArrayValue", [&](const field& e) {
                    if (e.number != 1) {
                        return false;
                    }
                    expect_wire(e, 2, "ArrayValue.values");
                    values.push_back(any_value(e.bytes));
                    return true;
                });
                v["arrayValue"] = json{{"values", values}};
                break;
            }
            default:
                return false;
        }
        return true;
    });
    return v;
}

json span(std::string_view data) {
    json s = json::object();
    json attrs = json::array();
    each_field(data, "Span", [&](const field& f) {
        switch (f.number) {
            case 1:
                s["traceId"] = hex(f, "Span.trace_id");
                break;
            case 2:
                s["spanId"] = hex(f, "Span.span_id");
                break;
            case 3:
                s["traceState"] = text(f, "Span.trace_state");
                break;
            case 4:
                s["parentSpanId"] = hex(f, "Span.parent_span_id");
                break;
            case 16:
                expect_wire(f, 5, "Span.flags");
                s["flags"] = f.value;
                break;
            case 5:
                s["name"] = text(f, "Span.name");
                break;
            case 6:
                expect_wire(f, 0, "Span.kind");
                s["kind"] = f.value;
                break;
            case 7:
                expect_wire(f, 1, "Span.start_time_unix_nano");
                s["startTimeUnixNano"] = std::to_string(f.value);
                break;
            case 8:
                expect_wire(f, 1, "Span.end_time_unix_nano");
                s["endTimeUnixNano"] = std::to_string(f.value);
                break;
            case 9:
                expect_wire(f, 2, "Span.attributes");
                attrs.push_back(key_value(f.bytes));
                break;
            case 15: {
                expect_wire(f, 2, "Span.status");
                json st = json::object();
                each_field(f.bytes, "Status", [&](const field& g) {
                    if (g.number == 2) {
                        st["message"] = text(g, "Status.message");
                    } else if (g.number == 3) {
                        expect_wire(g, 0, "Status.code");
                        st["code"] = g.value;
                    } else {
                        return false;
                    }
                    return true;
                });
                s["status"] = st;
                break;
            }
            default:
                return false;
        }
        return true;
    });
    s["attributes"] = attrs;
    if (!s.contains("status")) {
        s["status"] = json::object();  // unset, as the JSON encoding writes it
    }
    return s;
}

json scope_spans(std::string_view data) {
    json ss = json::object();
    json spans = json::array();
    each_field(data, "ScopeSpans", [&](const field& f) {
        if (f.number == 1) {
            expect_wire(f, 2, "ScopeSpans.scope");
            json scope = json::object();
            each_field(f.bytes, "InstrumentationScope", [&](const field& g) {
                if (g.number == 1) {
                    scope["name"] = text(g, "InstrumentationScope.name");
                } else if (g.number == 2) {
                    scope["version"] = text(g, "InstrumentationScope.version");
                } else {
                    return false;
                }
                return true;
            });
            ss["scope"] = scope;
        } else if (f.number == 2) {
            expect_wire(f, 2, "ScopeSpans.spans");
            spans.push_back(span(f.bytes));
        } else {
            return false;
        }
        return true;
    });
    ss["spans"] = spans;
    return ss;
}

json resource_spans(std::string_view data) {
    json rs = json::object();
    json scopes = json::array();
    each_field(data, "ResourceSpans", [&](const field& f) {
        if (f.number == 1) {
            expect_wire(f, 2, "ResourceSpans.resource");
            json attrs = json::array();
            each_field(f.bytes, "Resource", [&](const field& g) {
                if (g.number != 1) {
                    return false;
                }
                expect_wire(g, 2, "Resource.attributes");
                attrs.push_back(key_value(g.bytes));
                return true;
            });
            rs["resource"] = json{{"attributes", attrs}};
        } else if (f.number == 2) {
            expect_wire(f, 2, "ResourceSpans.scope_spans");
            scopes.push_back(scope_spans(f.bytes));
        } else {
            return false;
        }
        return true;
    });
    rs["scopeSpans"] = scopes;
    return rs;
}

}  // namespace

std::optional<json> otlp_protobuf_to_json(std::string_view body, std::string& error) {
    try {
        json all = json::array();
        each_field(body, "ExportTraceServiceRequest", [&](const field& f) {
            if (f.number != 1) {
                return false;
            }
            expect_wire(f, 2, "ExportTraceServiceRequest.resource_spans");
            all.push_back(resource_spans(f.bytes));
            return true;
        });
        return json{{"resourceSpans", all}};
    } catch (const std::exception& e) {
        error = e.what();
        return std::nullopt;
    }
}

}  // namespace llm_proxy::test

#include "support/addon_test_kit.hpp"

#include <boost/url/parse.hpp>
#include <stdexcept>

namespace llm_proxy::test {

flow make_flow(std::string method, std::string_view url, header_list headers, std::string body) {
    auto u = boost::urls::parse_absolute_uri(url);
    if (!u) {
        throw std::invalid_argument("make_flow: not an absolute URL: " + std::string(url));
    }
    flow f;
    f.id = "test-flow";
    f.client_address = "127.0.0.1:1";
    f.started_at = std::chrono::system_clock::now();
    f.started = std::chrono::steady_clock::now();
    f.request.method = std::move(method);
    f.request.scheme = std::string(u->scheme());
    f.request.host = std::string(u->encoded_host());
    f.request.port = u->has_port() ? u->port_number() : (f.request.scheme == "https" ? 443 : 80);
    f.request.target = std::string(u->encoded_path());
    if (f.request.target.empty()) {
        f.request.target = "/";
    }
    if (u->has_query()) {
        f.request.target += "?" + std::string(u->encoded_query());
    }
    f.request.headers = std::move(headers);
    f.request_body.data = std::move(body);
    f.request_body.total = f.request_body.data.size();
    return f;
}

namespace {

std::string run_body_transforms(const std::vector<std::shared_ptr<body_transform>>& transforms,
                                const std::vector<std::string>& pieces) {
    std::string all;
    std::vector<std::string> stage(pieces);
    for (const auto& t : transforms) {
        std::vector<std::string> next;
        for (const auto& p : stage) {
            std::string out;
            t->on_data(p, out);
            next.push_back(std::move(out));
        }
        std::string tail;
        t->on_end(tail);
        next.push_back(std::move(tail));
        stage = std::move(next);
    }
    for (const auto& p : stage) {
        all += p;
    }
    return all;
}

void fail(addon_chain& chain, flow& f, simulated& r) {
    f.error_kind = flow_error::addon_error;
    f.error = f.addon_failure;
    r.failed = true;
    chain.on_error(f);
}

}  // namespace

simulated simulate(addon_chain& chain, flow& f, response_head upstream,
                   std::vector<std::string> upstream_body) {
    simulated r;
    if (!chain.on_request_headers(f)) {
        fail(chain, f, r);
        return r;
    }
    // The client's whole body: addons see what they asked to buffer, the upstream gets all.
    std::string original = std::move(f.request_body.data);
    f.request_body = captured_body{};
    if (!f.answered_locally) {
        if (auto limit = chain.request_buffer_limit(f); limit > 0) {
            f.request_body.append(original, limit);
        }
        if (!run_hook(chain.on_request(f))) {
            fail(chain, f, r);
            return r;
        }
    }
    if (f.answered_locally) {
        r.answered_locally = true;
    } else {
        r.upstream_called = true;
        std::string sent = f.request_body_replacement ? *f.request_body_replacement : original;
        r.upstream_body = run_body_transforms(f.request_transforms, {sent});
        f.request_body = captured_body{};
        f.request_body.append(r.upstream_body, chain.request_capture_limit(f));
        f.response = std::move(upstream);
    }
    if (!run_hook(chain.on_response_headers(f))) {
        fail(chain, f, r);
        return r;
    }
    r.client_status = f.response->status;
    r.client_headers = f.response->headers;
    if (r.answered_locally) {
        r.client_body = f.local_response_body;
    } else {
        r.client_body = run_body_transforms(f.response_transforms, upstream_body);
    }
    f.response_body.append(r.client_body, chain.response_capture_limit(f));
    f.response_bytes = r.client_body.size();
    if (!chain.on_response_body(f, r.client_body)) {
        fail(chain, f, r);
        return r;
    }
    chain.on_response_end(f);
    return r;
}

}  // namespace llm_proxy::test

// Self-tests of the test-support library (tests/support) that need neither the proxy nor the
// fake upstream binary.

#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/raw_socket.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"

namespace llm_proxy::test {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// child_process / run_command

TEST(ChildProcess, CapturesLinesGroupsAndExitCode) {
    child_process p({"sh", "-c", "echo PORT 1234; echo err >&2; exit 3"});
    auto groups = p.wait_for_stdout_line(std::regex(R"(^PORT ([0-9]+)$)"), 5s);
    ASSERT_TRUE(groups.has_value());
    ASSERT_EQ(groups->size(), 2u);
    EXPECT_EQ((*groups)[0], "PORT 1234");
    EXPECT_EQ((*groups)[1], "1234");
    EXPECT_TRUE(p.wait_for_stderr_line(std::regex("^err$"), 5s).has_value());
    EXPECT_EQ(p.wait_exit(5s), 3);
    EXPECT_EQ(p.exit_code(), 3);
    EXPECT_FALSE(p.term_signal().has_value());
    EXPECT_EQ(p.stdout_text(), "PORT 1234\n");
    EXPECT_EQ(p.stderr_text(), "err\n");
    EXPECT_FALSE(p.send_signal(SIGTERM));
}

TEST(ChildProcess, WaitForLineReturnsEarlyOnEofAndHonoursCursor) {
    child_process p({"sh", "-c", "echo a 1; echo b; echo a 2; printf 'a 3'"});
    std::size_t cursor = 0;
    const std::regex re("^a ([0-9])$");
    std::vector<std::string> seen;
    while (auto g = p.wait_for_stdout_line(re, 5s, &cursor)) {
        seen.push_back((*g)[1]);
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"1", "2", "3"}));

    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(p.wait_for_stdout_line(std::regex("never"), 10s).has_value());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(ChildProcess, WaitForLineTimesOut) {
    child_process p({"sleep", "10"});
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(p.wait_for_stdout_line(std::regex("x"), 200ms).has_value());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
    EXPECT_FALSE(p.wait_exit(50ms).has_value());
    EXPECT_TRUE(p.running());
}

TEST(ChildProcess, EnvironmentAdditionsAndRemovals) {
    ::setenv("LLM_PROXY_TEST_UNSET_ME", "still here", 1);
    spawn_options opts;
    opts.env = {{"LLM_PROXY_TEST_VAR", "hello world"}, {"HOME", "/nonexistent"}};
    opts.unset_env = {"LLM_PROXY_TEST_UNSET_ME"};
    child_process p(
        {"sh", "-c", "echo \"$LLM_PROXY_TEST_VAR|$HOME|${LLM_PROXY_TEST_UNSET_ME-unset}\""}, opts);
    ASSERT_EQ(p.wait_exit(5s), 0);
    EXPECT_EQ(p.stdout_text(), "hello world|/nonexistent|unset\n");
    ::unsetenv("LLM_PROXY_TEST_UNSET_ME");
}

TEST(ChildProcess, WorkingDirectory) {
    temp_dir dir;
    spawn_options opts;
    opts.cwd = dir.path();
    child_process p({"pwd"}, opts);
    ASSERT_EQ(p.wait_exit(5s), 0);
    EXPECT_EQ(p.stdout_text(), dir.string() + "\n");
}

TEST(ChildProcess, OtherFdsAreClosedInTheChild) {
    // An fd without O_CLOEXEC must still not leak into the child.
    int leaked = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(leaked, 3);
    child_process p({"sh", "-c", "ls /proc/$$/fd"});
    ASSERT_EQ(p.wait_exit(5s), 0);
    ::close(leaked);
    std::vector<std::string> fds;
    std::string out = p.stdout_text();
    std::size_t pos = 0;
    while (pos < out.size()) {
        auto nl = out.find('\n', pos);
        fds.push_back(out.substr(pos, nl - pos));
        pos = nl == std::string::npos ? out.size() : nl + 1;
    }
    EXPECT_EQ(std::count(fds.begin(), fds.end(), std::to_string(leaked)), 0) << out;
    for (const auto& fd : fds) {
        EXPECT_LE(std::stoi(fd), 10) << out;
    }
}

TEST(ChildProcess, SignalAndRss) {
    child_process p({"sleep", "10"});
    EXPECT_GT(p.rss_kib(), 0);
    EXPECT_TRUE(p.send_signal(SIGTERM));
    EXPECT_EQ(p.wait_exit(5s), 128 + SIGTERM);
    EXPECT_EQ(p.term_signal(), SIGTERM);
    EXPECT_EQ(p.rss_kib(), -1);
}

TEST(ChildProcess, SignalDispositionsAreReset) {
    // SIG_IGN is inherited across exec; the child must get the default action back.
    auto old = std::signal(SIGTERM, SIG_IGN);
    child_process p({"sleep", "10"});
    std::signal(SIGTERM, old);
    std::this_thread::sleep_for(50ms);
    p.send_signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(5s), 128 + SIGTERM);
}

TEST(ChildProcess, DestructorKillsRunningChild) {
    pid_t pid;
    {
        child_process p({"sleep", "30"});
        pid = p.pid();
        ASSERT_EQ(::kill(pid, 0), 0);
    }
    EXPECT_NE(::kill(pid, 0), 0);  // reaped: no such process
}

TEST(ChildProcess, MissingProgramThrows) {
    EXPECT_THROW(child_process({"/nonexistent/definitely-not-here"}), std::system_error);
    EXPECT_THROW(child_process({"definitely-not-a-command-xyz"}), std::system_error);
}

TEST(RunCommand, StdinAndOutputs) {
    auto r = run_command({"sh", "-c", "cat; echo done >&2; exit 7"}, 5s, "hello\nworld\n");
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 7);
    EXPECT_EQ(r.out, "hello\nworld\n");
    EXPECT_EQ(r.err, "done\n");
}

TEST(RunCommand, LargeStdinDoesNotDeadlock) {
    std::string big(1 << 20, 'x');
    auto r = run_command({"wc", "-c"}, 10s, big);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(std::stoul(r.out), big.size());
}

TEST(RunCommand, TimeoutKillsTheChild) {
    const auto start = std::chrono::steady_clock::now();
    auto r = run_command({"sleep", "10"}, 300ms);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.exit_code, 128 + SIGKILL);
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LT(elapsed, 3s);
}

// ---------------------------------------------------------------------------------------------
// temp_dir

TEST(TempDir, CreatedAndRemoved) {
    std::filesystem::path p;
    {
        temp_dir dir("support_test");
        p = dir.path();
        EXPECT_TRUE(std::filesystem::is_directory(p));
        EXPECT_EQ(p.parent_path(), "/tmp");
        auto f = dir.write_file("a/b.txt", "content");
        EXPECT_EQ(read_file(f), "content");
        temp_dir moved(std::move(dir));
        EXPECT_EQ(moved.path(), p);
    }
    EXPECT_FALSE(std::filesystem::exists(p));
}

// ---------------------------------------------------------------------------------------------
// make_test_pki

struct x509_deleter {
    void operator()(X509* x) const { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_deleter>;

x509_ptr load_cert(const std::filesystem::path& file) {
    FILE* f = std::fopen(file.c_str(), "r");
    if (!f) {
        return nullptr;
    }
    X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    return x509_ptr(x);
}

EVP_PKEY* load_key(const std::filesystem::path& file) {
    FILE* f = std::fopen(file.c_str(), "r");
    if (!f) {
        return nullptr;
    }
    EVP_PKEY* k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    return k;
}

int verify_chain(X509* ca, X509* leaf) {
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, nullptr);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok == 1 ? X509_V_OK : err;
}

void check_pki(const test_pki& pki) {
    auto ca = load_cert(pki.ca_cert);
    auto server = load_cert(pki.server_cert);
    ASSERT_TRUE(ca && server);
    EXPECT_EQ(X509_check_ca(ca.get()), 1);
    EXPECT_EQ(X509_check_ca(server.get()), 0);
    EXPECT_EQ(verify_chain(ca.get(), server.get()), X509_V_OK);

    EXPECT_EQ(X509_check_host(server.get(), "api.openai.com", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_host(server.get(), "upstream.test", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_host(server.get(), "example.com", 0, 0, nullptr), 0);
    EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
    EXPECT_EQ(X509_check_ip_asc(server.get(), "::1", 0), 1);
    EXPECT_EQ(X509_check_ip_asc(server.get(), "10.0.0.1", 0), 0);

    // Critical basicConstraints on the CA, serverAuth EKU on the leaf.
    int crit = -1;
    auto* bc = static_cast<BASIC_CONSTRAINTS*>(
        X509_get_ext_d2i(ca.get(), NID_basic_constraints, &crit, nullptr));
    ASSERT_NE(bc, nullptr);
    EXPECT_TRUE(bc->ca);
    EXPECT_EQ(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    EXPECT_TRUE(X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN);
    EXPECT_TRUE(X509_get_extended_key_usage(server.get()) & XKU_SSL_SERVER);

    // Validity: not before now-1d (roughly), not after now+30d.
    time_t now = time(nullptr);
    EXPECT_LT(X509_cmp_time(X509_get0_notBefore(server.get()), &now), 0);
    time_t in_29_days = now + 29 * 86400;
    time_t in_31_days = now + 31 * 86400;
    EXPECT_GT(X509_cmp_time(X509_get0_notAfter(server.get()), &in_29_days), 0);
    EXPECT_LT(X509_cmp_time(X509_get0_notAfter(server.get()), &in_31_days), 0);

    EVP_PKEY* ca_key = load_key(pki.ca_key);
    EVP_PKEY* server_key = load_key(pki.server_key);
    ASSERT_TRUE(ca_key && server_key);
    EXPECT_EQ(X509_check_private_key(ca.get(), ca_key), 1);
    EXPECT_EQ(X509_check_private_key(server.get(), server_key), 1);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(server_key);
    EXPECT_EQ(
        std::filesystem::status(pki.server_key).permissions() & std::filesystem::perms::group_read,
        std::filesystem::perms::none);
}

TEST(TestPki, EcChainVerifiesWithSans) {
    temp_dir dir;
    check_pki(make_test_pki(dir.path()));
}

TEST(TestPki, RsaChainVerifiesWithSans) {
    temp_dir dir;
    check_pki(make_test_pki(dir.path(), {"api.openai.com", "localhost", "upstream.test"},
                            {"127.0.0.1", "::1"}, pki_key_type::rsa_2048));
}

TEST(TestPki, SecondPkiIsNotTrustedByTheFirst) {
    temp_dir a, b;
    auto pa = make_test_pki(a.path());
    auto pb = make_test_pki(b.path());
    auto ca_a = load_cert(pa.ca_cert);
    auto server_b = load_cert(pb.server_cert);
    EXPECT_NE(verify_chain(ca_a.get(), server_b.get()), X509_V_OK);
}

TEST(TestPki, BadIpThrows) {
    temp_dir dir;
    EXPECT_THROW(make_test_pki(dir.path(), {"x.test"}, {"not-an-ip"}), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------
// URL parsing and SSE parsing

TEST(ParseUrl, Forms) {
    auto u = parse_url("https://api.openai.com/v1/chat/completions?x=1#frag");
    EXPECT_EQ(u.scheme, "https");
    EXPECT_EQ(u.host, "api.openai.com");
    EXPECT_EQ(u.port, 443);
    EXPECT_EQ(u.target, "/v1/chat/completions?x=1");
    EXPECT_EQ(u.authority(), "api.openai.com:443");
    EXPECT_EQ(u.host_header(), "api.openai.com");

    u = parse_url("HTTP://127.0.0.1:8080");
    EXPECT_EQ(u.scheme, "http");
    EXPECT_EQ(u.port, 8080);
    EXPECT_EQ(u.target, "/");
    EXPECT_EQ(u.host_header(), "127.0.0.1:8080");

    u = parse_url("http://[::1]:9000/a");
    EXPECT_EQ(u.host, "::1");
    EXPECT_TRUE(u.is_ipv6());
    EXPECT_EQ(u.port, 9000);
    EXPECT_EQ(u.authority(), "[::1]:9000");

    u = parse_url("https://[2001:db8::1]?q");
    EXPECT_EQ(u.host, "2001:db8::1");
    EXPECT_EQ(u.port, 443);
    EXPECT_EQ(u.target, "/?q");
    EXPECT_EQ(u.host_header(), "[2001:db8::1]");

    u = parse_url("http://user:pw@example.com:81/x");
    EXPECT_EQ(u.host, "example.com");
    EXPECT_EQ(u.port, 81);

    EXPECT_THROW(parse_url("example.com/x"), std::invalid_argument);
    EXPECT_THROW(parse_url("ftp://example.com/"), std::invalid_argument);
    EXPECT_THROW(parse_url("http://:80/"), std::invalid_argument);
    EXPECT_THROW(parse_url("http://h:0/"), std::invalid_argument);
    EXPECT_THROW(parse_url("http://h:65536/"), std::invalid_argument);
    EXPECT_THROW(parse_url("http://h:8x/"), std::invalid_argument);
    EXPECT_THROW(parse_url("http://[::1/"), std::invalid_argument);
}

TEST(SseParser, SplitsEventsAcrossChunks) {
    sse_parser p;
    const auto t1 = std::chrono::system_clock::now();
    const auto t2 = t1 + 1s;
    auto ev = p.feed("data: {\"a\":", t1);
    EXPECT_TRUE(ev.empty());
    ev = p.feed("1}\n\n: comment\r\nevent: delta\r\ndata: x\r\ndata:y\r", t2);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].data, "{\"a\":1}");
    EXPECT_EQ(ev[0].received, t2);
    ev = p.feed("\n\r\ndata: [DONE]\n\n");
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].event, "delta");
    EXPECT_EQ(ev[0].data, "x\ny");
    EXPECT_EQ(ev[1].event, "");
    EXPECT_EQ(ev[1].data, "[DONE]");
    p.feed("data: tail");
    auto last = p.finish();
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->data, "tail");
}

// ---------------------------------------------------------------------------------------------
// http_client against an in-test server (plain, TLS, and a toy CONNECT proxy in front of TLS)

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

class mini_server {
  public:
    enum class mode { plain, tls, connect_then_tls };

    mini_server(mode m, const test_pki* pki = nullptr)
        : mode_(m), ctx_(asio::ssl::context::tls_server) {
        if (pki) {
            ctx_.use_certificate_chain_file(pki->server_cert.string());
            ctx_.use_private_key_file(pki->server_key.string(), asio::ssl::context::pem);
        }
        acceptor_.open(asio::ip::tcp::v4());
        acceptor_.set_option(asio::socket_base::reuse_address(true));
        acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this] { run(); });
    }
    ~mini_server() {
        stop_ = true;
        ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
        thread_.join();
        for (auto& w : workers_) {
            w.join();
        }
    }

    std::uint16_t port() const { return port_; }
    int connections() const { return connections_; }
    std::string connect_target() const {
        std::lock_guard lk(mutex_);
        return connect_target_;
    }

  private:
    void run() {
        while (!stop_) {
            beast::error_code ec;
            asio::ip::tcp::socket sock(ioc_);
            acceptor_.accept(sock, ec);
            if (ec) {
                return;
            }
            ++connections_;
            // One thread per connection: clients may hold keep-alive connections open.
            workers_.emplace_back([this, s = std::move(sock)]() mutable {
                try {
                    handle(std::move(s));
                } catch (const std::exception&) {
                }
            });
        }
    }

    void handle(asio::ip::tcp::socket sock) {
        beast::tcp_stream tcp(std::move(sock));
        tcp.expires_after(10s);
        beast::flat_buffer buf;
        if (mode_ == mode::connect_then_tls) {
            http::request<http::empty_body> req;
            http::read(tcp, buf, req);
            {
                std::lock_guard lk(mutex_);
                connect_target_ = std::string(req.target());
            }
            asio::write(tcp,
                        asio::buffer(std::string("HTTP/1.1 200 Connection established\r\n\r\n")));
        }
        if (mode_ == mode::plain) {
            serve(tcp, buf);
        } else {
            beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp), ctx_);
            tls.handshake(asio::ssl::stream_base::server, buf.data());
            buf.consume(buf.size());
            serve(tls, buf);
        }
    }

    template <class Stream>
    void serve(Stream& s, beast::flat_buffer& buf) {
        for (;;) {
            http::request<http::string_body> req;
            beast::error_code ec;
            beast::get_lowest_layer(s).expires_after(10s);
            http::read(s, buf, req, ec);
            if (ec) {
                return;
            }
            const std::string target(req.target());
            if (target == "/sse") {
                std::string head =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
                asio::write(s, asio::buffer(head));
                for (int i = 0; i < 3; ++i) {
                    std::string ev = "data: " + std::to_string(i) + "\n\n";
                    char size[16];
                    std::snprintf(size, sizeof size, "%zx\r\n", ev.size());
                    asio::write(s, asio::buffer(std::string(size) + ev + "\r\n"));
                    std::this_thread::sleep_for(150ms);
                }
                asio::write(s, asio::buffer(std::string("0\r\n\r\n")));
                continue;
            }
            http::response<http::string_body> res{http::status::ok, req.version()};
            res.set("x-echo-host", std::string(req[http::field::host]));
            res.body() = std::string(req.method_string()) + " " + target + " " + req.body();
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            http::write(s, res);
            if (!req.keep_alive()) {
                return;
            }
        }
    }

    mode mode_;
    asio::io_context ioc_;
    asio::ip::tcp::acceptor acceptor_{ioc_};
    asio::ssl::context ctx_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::vector<std::thread> workers_;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    mutable std::mutex mutex_;
    std::string connect_target_;
};

TEST(HttpClient, PlainKeepAliveAndHttp10) {
    mini_server server(mini_server::mode::plain);
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
    http_client client;
    auto r = client.request("POST", base + "/echo?x=1", {{"X-Test", "1"}}, "payload");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "POST /echo?x=1 payload");
    EXPECT_EQ(r.header("X-ECHO-HOST"), "127.0.0.1:" + std::to_string(server.port()));
    EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
    r = client.get(base + "/second");
    EXPECT_EQ(r.body, "GET /second ");
    EXPECT_EQ(client.connections_opened(), 1u);

    client.close();
    http_client old({.http_version = 10});
    r = old.get(base + "/old");
    EXPECT_EQ(r.version, 10u);
    EXPECT_FALSE(old.connected());
}

TEST(HttpClient, TlsDirectWithVerificationAndStreaming) {
    temp_dir dir;
    auto pki = make_test_pki(dir.path());
    mini_server server(mini_server::mode::tls, &pki);
    const std::string port = std::to_string(server.port());

    // Verify against the IP SAN.
    http_client client({.ca_file = pki.ca_cert.string()});
    auto r = client.get("https://127.0.0.1:" + port + "/a");
    EXPECT_EQ(r.body, "GET /a ");
    EXPECT_NE(client.peer_certificate_pem().find("BEGIN CERTIFICATE"), std::string::npos);
    EXPECT_EQ(client.negotiated_alpn(), "");

    // Host name via --connect-to style override.
    client_options named;
    named.ca_file = pki.ca_cert.string();
    named.connect_host = "127.0.0.1";
    named.connect_port = server.port();
    http_client by_name(named);
    r = by_name.get("https://api.openai.com/v1/models");
    EXPECT_EQ(r.header("x-echo-host"), "api.openai.com");

    // SSE: events arrive spread over time, not all at the end.
    auto result = read_sse_stream(client, "https://127.0.0.1:" + port + "/sse");
    EXPECT_EQ(result.status, 200u);
    ASSERT_EQ(result.events.size(), 3u);
    EXPECT_EQ(result.events[2].data, "2");
    EXPECT_GE(result.events[2].received - result.events[0].received, 200ms);
    // The connection survived the chunked response.
    r = client.get("https://127.0.0.1:" + port + "/after");
    EXPECT_EQ(r.body, "GET /after ");

    // Abort mid-stream closes the connection.
    int chunks = 0;
    bool completed = client.stream("GET", "https://127.0.0.1:" + port + "/sse", {}, {}, nullptr,
                                   [&](std::string_view) { return ++chunks < 1; });
    EXPECT_FALSE(completed);
    EXPECT_FALSE(client.connected());

    // A CA that did not sign the server certificate is rejected.
    temp_dir other_dir;
    auto other = make_test_pki(other_dir.path());
    http_client untrusting({.ca_file = other.ca_cert.string()});
    EXPECT_THROW(untrusting.get("https://127.0.0.1:" + port + "/"), std::system_error);
    // So is a name that is not in the certificate.
    client_options wrong = named;
    http_client wrong_name(wrong);
    EXPECT_THROW(wrong_name.get("https://wrong.example/"), std::system_error);
}

TEST(HttpClient, ConnectTunnelThroughProxy) {
    temp_dir dir;
    auto pki = make_test_pki(dir.path());
    mini_server proxy(mini_server::mode::connect_then_tls, &pki);
    client_options opts;
    opts.proxy_host = "127.0.0.1";
    opts.proxy_port = proxy.port();
    opts.ca_file = pki.ca_cert.string();
    http_client client(opts);
    auto r = client.post("https://api.openai.com/v1/chat/completions", "{}",
                         {{"content-type", "application/json"}});
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "POST /v1/chat/completions {}");
    EXPECT_EQ(r.header("x-echo-host"), "api.openai.com");
    EXPECT_EQ(proxy.connect_target(), "api.openai.com:443");
}

TEST(HttpClient, AbsoluteFormThroughProxy) {
    mini_server proxy(mini_server::mode::plain);
    client_options opts;
    opts.proxy_host = "127.0.0.1";
    opts.proxy_port = proxy.port();
    http_client client(opts);
    auto r = client.get("http://example.test:8080/path?q=1");
    EXPECT_EQ(r.body, "GET http://example.test:8080/path?q=1 ");
    EXPECT_EQ(r.header("x-echo-host"), "example.test:8080");
}

TEST(HttpClient, TimeoutIsReported) {
    // A listener that never answers.
    asio::io_context ioc;
    asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    http_client client({.timeout = 300ms});
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(client.get("http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port())),
                 std::system_error);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

// ---------------------------------------------------------------------------------------------
// raw sockets

TEST(RawSocket, ExchangeAndHalfClose) {
    mini_server server(mini_server::mode::plain);
    std::string got = raw_exchange("127.0.0.1", server.port(),
                                   "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5s);
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    EXPECT_NE(got.find("GET /raw "), std::string::npos);

    // Incomplete request + half close: the server gives up with EOF, we get nothing back.
    got = raw_exchange("127.0.0.1", server.port(), "GET / HTTP/1.1\r\n", 5s, true);
    EXPECT_EQ(got, "");

    unique_fd fd(connect_raw("127.0.0.1", server.port(), 2s));
    ASSERT_TRUE(send_all(fd.get(), "GET /k HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string head = recv_some(fd.get(), 5s, 10);
    EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
    EXPECT_FALSE(wait_peer_closed(fd.get(), 100ms));
}

}  // namespace
}  // namespace llm_proxy::test

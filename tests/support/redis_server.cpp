#include "support/redis_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "support/raw_socket.hpp"

namespace llm_proxy::test {

namespace {

using namespace std::chrono_literals;

// True if the server on 127.0.0.1:port answers a PING (an error such as NOAUTH counts: the
// server is up).
bool answers_ping(std::uint16_t port) {
    try {
        unique_fd fd(connect_raw("127.0.0.1", port, 500ms));
        if (!send_all(fd.get(), "PING\r\n")) {
            return false;
        }
        const std::string reply = recv_some(fd.get(), 500ms);
        return !reply.empty() && (reply[0] == '+' || reply[0] == '-');
    } catch (const std::system_error&) {
        return false;
    }
}

}  // namespace

std::string redis_server::binary() {
    const char* env = std::getenv("LLM_PROXY_REDIS_SERVER");
    return env && *env ? env : "/usr/bin/redis-server";
}

redis_server::redis_server(std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)), dir_("llm_proxy_redis") {
    socket_path_ = dir_ / "redis.sock";
    if (::access(binary().c_str(), X_OK) != 0) {
        throw std::runtime_error("redis_server: " + binary() +
                                 " is not installed (set LLM_PROXY_REDIS_SERVER)");
    }
    // Another process may take the port between pick_free_port() and the server's bind().
    std::string error;
    for (int attempt = 0; attempt < 5; ++attempt) {
        if (start(pick_free_port(), &error)) {
            return;
        }
    }
    throw std::runtime_error("redis_server: cannot start " + binary() + ": " + error);
}

redis_server::~redis_server() {
    try {
        stop();
    } catch (...) {
        // child_process' destructor SIGKILLs and reaps whatever is left.
    }
}

bool redis_server::start(std::uint16_t port, std::string* error) {
    std::vector<std::string> argv = {binary(),
                                     "--port",
                                     std::to_string(port),
                                     "--bind",
                                     "127.0.0.1",
                                     "--unixsocket",
                                     socket_path_.string(),
                                     "--unixsocketperm",
                                     "700",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_.string(),
                                     "--daemonize",
                                     "no",
                                     "--logfile",
                                     "",
                                     "--databases",
                                     "16"};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    process_ = std::make_unique<child_process>(argv);
    port_ = port;

    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!process_->running()) {
            process_->wait_exit(2s);  // drains the output
            *error = "exited with status " + std::to_string(process_->exit_code().value_or(-1)) +
                     ":\n" + output();
            return false;
        }
        if (answers_ping(port)) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    const std::string log = output();
    stop(0ms);
    throw std::runtime_error("redis_server: no answer on port " + std::to_string(port) +
                             " within 10 s:\n" + log);
}

std::string redis_server::url(int db) const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
}

std::string redis_server::unix_url(int db) const {
    return "unix://" + socket_path_.string() + "?db=" + std::to_string(db);
}

bool redis_server::running() {
    return process_ && process_->running();
}

void redis_server::stop(std::chrono::milliseconds grace) {
    if (!running()) {
        return;
    }
    process_->send_signal(SIGCONT);
    process_->send_signal(SIGTERM);
    if (!process_->wait_exit(grace)) {
        process_->send_signal(SIGKILL);
        process_->wait_exit(5s);
    }
}

void redis_server::restart() {
    stop();
    std::string error;
    // The port was ours a moment ago; redis-server binds with SO_REUSEADDR, so this only fails
    // if another process grabbed it meanwhile.
    for (int attempt = 0; attempt < 3; ++attempt) {
        if (start(port_, &error)) {
            return;
        }
        std::this_thread::sleep_for(100ms);
    }
    throw std::runtime_error("redis_server: cannot restart on port " + std::to_string(port_) +
                             ": " + error);
}

void redis_server::pause() {
    if (process_) {
        process_->send_signal(SIGSTOP);
    }
}

void redis_server::resume() {
    if (process_) {
        process_->send_signal(SIGCONT);
    }
}

std::string redis_server::output() const {
    return process_ ? process_->stdout_text() + process_->stderr_text() : std::string();
}

}  // namespace llm_proxy::test

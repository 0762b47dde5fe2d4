#include "support/proxy_process.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <utility>

#ifndef LLM_PROXY_BINARY
#error "LLM_PROXY_BINARY must be defined (tests/CMakeLists.txt does it)"
#endif

namespace llm_proxy::test {

namespace {

bool has_listen_arg(const std::vector<std::string>& args) {
    return std::any_of(args.begin(), args.end(), [](const std::string& a) {
        return a == "--listen" || a == "-l" || a.rfind("--listen=", 0) == 0;
    });
}

}  // namespace

proxy_process::proxy_process(std::vector<std::string> args, spawn_options options,
                             std::chrono::milliseconds startup_timeout) {
    const char* override_binary = std::getenv("LLM_PROXY_TEST_BINARY");
    std::vector<std::string> argv{override_binary && *override_binary ? override_binary
                                                                      : LLM_PROXY_BINARY};
    const bool add_listen = !has_listen_arg(args);
    argv.insert(argv.end(), std::make_move_iterator(args.begin()),
                std::make_move_iterator(args.end()));
    if (add_listen) {
        argv.emplace_back("--listen");
        argv.emplace_back("127.0.0.1:0");
    }
    process_ = std::make_unique<child_process>(std::move(argv), std::move(options));

    static const std::regex listening_re(
        R"(llm_proxy listening on ([0-9.]+|\[[0-9a-f:]+\]):([0-9]+))");
    auto groups = process_->wait_for_stderr_line(listening_re, startup_timeout);
    if (!groups) {
        std::string why;
        if (process_->running()) {
            why = "did not report 'llm_proxy listening on' within " +
                  std::to_string(startup_timeout.count()) + " ms";
        } else {
            process_->wait_exit(std::chrono::seconds(1));
            why = "exited with code " + std::to_string(process_->exit_code().value_or(-1)) +
                  " before listening";
        }
        std::string cmd;
        for (const auto& a : process_->argv()) {
            cmd += (cmd.empty() ? "" : " ") + a;
        }
        throw std::runtime_error("llm_proxy " + why + "\ncommand: " + cmd + "\nstderr:\n" +
                                 process_->stderr_text());
    }
    host_ = (*groups)[1];
    if (host_ == "0.0.0.0") {
        host_ = "127.0.0.1";
    } else if (host_ == "[::]") {
        host_ = "[::1]";
    }
    port_ = static_cast<std::uint16_t>(std::stoul((*groups)[2]));
}

proxy_process::~proxy_process() {
    if (process_ && process_->running()) {
        stop(SIGTERM, std::chrono::seconds(5));
    }
}

std::string proxy_process::url() const {
    return "http://" + host_ + ":" + std::to_string(port_);
}

client_options proxy_process::make_client_options(std::string ca_file) const {
    client_options opts;
    opts.proxy_host = host_;
    opts.proxy_port = port_;
    opts.ca_file = std::move(ca_file);
    return opts;
}

std::optional<int> proxy_process::stop(int sig, std::chrono::milliseconds timeout) {
    if (auto code = process_->exit_code()) {
        return code;
    }
    process_->send_signal(sig);
    return process_->wait_exit(timeout);
}

}  // namespace llm_proxy::test

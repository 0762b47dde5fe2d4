#include "support/tinyproxy.hpp"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace llm_proxy::test {

std::uint16_t closed_loopback_port() {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0},
                                     /*reuse_address=*/false);
    return a.local_endpoint().port();
}

std::optional<std::filesystem::path> tinyproxy::find_binary() {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    dirs += ":/usr/sbin:/usr/bin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
        auto colon = dirs.find(':', start);
        auto dir =
            dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        start = colon == std::string::npos ? dirs.size() + 1 : colon + 1;
        if (dir.empty()) {
            continue;
        }
        auto candidate = std::filesystem::path(dir) / "tinyproxy";
        if (::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
    }
    return std::nullopt;
}

tinyproxy::tinyproxy(const std::filesystem::path& dir, std::vector<std::string> extra_lines) {
    auto binary = find_binary();
    if (!binary) {
        throw std::runtime_error("tinyproxy is not installed");
    }
    std::filesystem::create_directories(dir);
    std::string last_log;
    // A port freed just before can be taken by someone else in between: a few tries.
    for (int attempt = 0; attempt < 3; ++attempt) {
        port_ = closed_loopback_port();
        auto conf = dir / "tinyproxy.conf";
        {
            std::ofstream out(conf);
            out << "Port " << port_ << "\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 60\n"
                << "MaxClients 32\nLogLevel Info\n";
            for (const auto& line : extra_lines) {
                out << line << "\n";
            }
        }
        process_ = std::make_unique<child_process>(
            std::vector<std::string>{binary->string(), "-d", "-c", conf.string()});
        if (process_->wait_for_stdout_line(std::regex("Accepting connections"),
                                           std::chrono::seconds(10))) {
            return;
        }
        last_log = process_->stdout_text() + process_->stderr_text();
        process_->send_signal(SIGKILL);
        process_->wait_exit(std::chrono::seconds(5));
    }
    throw std::runtime_error("tinyproxy did not start: " + last_log);
}

tinyproxy::~tinyproxy() {
    stop();
}

std::string tinyproxy::url(const std::string& userinfo) const {
    return "http://" + (userinfo.empty() ? "" : userinfo + "@") +
           "127.0.0.1:" + std::to_string(port_);
}

bool tinyproxy::wait_for_log(const std::regex& re, std::chrono::milliseconds timeout) {
    return process_->wait_for_stdout_line(re, timeout).has_value();
}

void tinyproxy::stop() {
    if (process_ && process_->running()) {
        process_->send_signal(SIGTERM);
        if (!process_->wait_exit(std::chrono::seconds(5))) {
            process_->send_signal(SIGKILL);
            process_->wait_exit(std::chrono::seconds(5));
        }
    }
}

}  // namespace llm_proxy::test

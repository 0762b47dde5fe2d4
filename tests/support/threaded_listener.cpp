#include "support/threaded_listener.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "support/raw_socket.hpp"

namespace llm_proxy::test {

threaded_listener::threaded_listener(serve_fn serve, accept_fn on_accept, int backlog)
    : serve_(std::move(serve)), on_accept_(std::move(on_accept)) {
    listen_fd_ = listen_loopback(port_, backlog);
    acceptor_ = std::thread([this] { accept_loop(); });
}

threaded_listener::~threaded_listener() {
    stop();
}

void threaded_listener::stop() {
    if (stopping_.exchange(true)) {
        return;
    }
    {
        std::lock_guard lock(mutex_);
        for (int fd : fds_) {
            if (fd >= 0) {
                ::shutdown(fd, SHUT_RDWR);
            }
        }
    }
    acceptor_.join();
    for (auto& t : threads_) {
        t.join();
    }
    ::close(listen_fd_);
}

bool threaded_listener::send(std::size_t index, std::string_view bytes) {
    std::lock_guard lock(mutex_);
    return index < fds_.size() && fds_[index] >= 0 && send_all(fds_[index], bytes);
}

void threaded_listener::close(std::size_t index, bool reset) {
    std::lock_guard lock(mutex_);
    if (index >= fds_.size() || fds_[index] < 0) {
        return;
    }
    if (reset) {
        linger l{1, 0};
        ::setsockopt(fds_[index], SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    // Under the lock: once the number is free the kernel may hand it to a new connection.
    ::close(fds_[index]);
    fds_[index] = -1;
}

void threaded_listener::accept_loop() {
    while (!stopping_) {
        int fd = accept_raw(listen_fd_, std::chrono::milliseconds(50));
        if (fd < 0) {
            continue;
        }
        std::size_t index = 0;
        {
            std::lock_guard lock(mutex_);
            if (stopping_) {  // stop() has shut the others down already
                ::close(fd);
                break;
            }
            index = fds_.size();
            fds_.push_back(fd);
        }
        if (on_accept_) {
            on_accept_(index);
        }
        threads_.emplace_back([this, fd, index] {
            serve_(fd, index);
            close(index, false);
        });
    }
}

}  // namespace llm_proxy::test

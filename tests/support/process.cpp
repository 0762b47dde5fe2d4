#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace llm_proxy::test {

namespace {

[[noreturn]] void throw_errno(const std::string& what, int err = errno) {
    throw std::system_error(err, std::generic_category(), what);
}

void close_fd(int& fd) {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) {
        ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
}

struct pipe_pair {
    int read = -1;
    int write = -1;

    pipe_pair() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw_errno("pipe2");
        }
        read = fds[0];
        write = fds[1];
    }
    ~pipe_pair() {
        close_fd(read);
        close_fd(write);
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
};

int decode_status(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

std::string env_name(const std::string& entry) {
    return entry.substr(0, entry.find('='));
}

// Only async-signal-safe calls from here on: this runs in the forked child.
void close_fds_from(unsigned first, unsigned last) {
    if (first > last) {
        return;
    }
    if (::close_range(first, last, 0) == 0) {
        return;
    }
    struct rlimit rl {};
    unsigned limit = 65536;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        limit = static_cast<unsigned>(std::min<rlim_t>(rl.rlim_cur, 1u << 20));
    }
    for (unsigned fd = first; fd <= last && fd < limit; ++fd) {
        ::close(static_cast<int>(fd));
    }
}

[[noreturn]] void child_fail(int report_fd) {
    int err = errno;
    ssize_t ignored = ::write(report_fd, &err, sizeof err);
    (void)ignored;
    ::_exit(127);
}

void move_to_fd(int from, int to, int report_fd) {
    if (from == to) {
        int flags = ::fcntl(to, F_GETFD);
        if (flags < 0 || ::fcntl(to, F_SETFD, flags & ~FD_CLOEXEC) != 0) {
            child_fail(report_fd);
        }
        return;
    }
    if (::dup2(from, to) < 0) {
        child_fail(report_fd);
    }
}

}  // namespace

child_process::child_process(std::vector<std::string> argv, spawn_options options)
    : argv_(std::move(argv)) {
    if (argv_.empty()) {
        throw std::invalid_argument("child_process: empty argv");
    }

    // Everything the child needs is prepared before fork(): no allocation afterwards.
    std::vector<std::string> env_strings;
    for (char** e = environ; e && *e; ++e) {
        std::string entry(*e);
        const std::string name = env_name(entry);
        bool overridden = std::any_of(options.env.begin(), options.env.end(),
                                      [&](const auto& kv) { return kv.first == name; }) ||
                          std::find(options.unset_env.begin(), options.unset_env.end(), name) !=
                              options.unset_env.end();
        if (!overridden) {
            env_strings.push_back(std::move(entry));
        }
    }
    for (const auto& [name, value] : options.env) {
        env_strings.push_back(name + "=" + value);
    }
    std::vector<char*> envp;
    for (auto& s : env_strings) {
        envp.push_back(s.data());
    }
    envp.push_back(nullptr);
    std::vector<char*> argvp;
    for (auto& s : argv_) {
        argvp.push_back(s.data());
    }
    argvp.push_back(nullptr);
    std::string cwd = options.cwd ? options.cwd->string() : std::string();

    pipe_pair out_pipe;
    pipe_pair err_pipe;
    pipe_pair report_pipe;
    std::optional<pipe_pair> in_pipe;
    int dev_null = -1;
    if (options.pipe_stdin) {
        in_pipe.emplace();
    } else {
        dev_null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (dev_null < 0) {
            throw_errno("open /dev/null");
        }
    }
    const int child_stdin = in_pipe ? in_pipe->read : dev_null;
    {
        pipe_pair wake;
        wake_read_fd_ = wake.read;
        wake_write_fd_ = wake.write;
        wake.read = wake.write = -1;
    }
    set_nonblocking(wake_read_fd_);
    set_nonblocking(wake_write_fd_);

    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
        int err = errno;
        if (dev_null >= 0) {
            ::close(dev_null);
        }
        close_fd(wake_read_fd_);
        close_fd(wake_write_fd_);
        throw_errno("fork", err);
    }
    if (pid_ == 0) {
        const int report = report_pipe.write;
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(127);
        }
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; ++sig) {
            if (sig != SIGKILL && sig != SIGSTOP) {
                ::sigaction(sig, &dfl, nullptr);
            }
        }
        move_to_fd(child_stdin, 0, report);
        move_to_fd(out_pipe.write, 1, report);
        move_to_fd(err_pipe.write, 2, report);
        // Keep only 0, 1, 2 and the (close-on-exec) exec-failure report pipe.
        close_fds_from(3, static_cast<unsigned>(report) - 1);
        close_fds_from(static_cast<unsigned>(report) + 1, ~0u);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
            child_fail(report);
        }
        ::execvpe(argvp[0], argvp.data(), envp.data());
        child_fail(report);
    }

    // Parent.
    if (dev_null >= 0) {
        ::close(dev_null);
    }
    close_fd(out_pipe.write);
    close_fd(err_pipe.write);
    close_fd(report_pipe.write);
    if (in_pipe) {
        close_fd(in_pipe->read);
    }
    int child_errno = 0;
    ssize_t n;
    do {
        n = ::read(report_pipe.read, &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        close_fd(wake_read_fd_);
        close_fd(wake_write_fd_);
        throw_errno("cannot execute '" + argv_[0] + "'", child_errno);
    }

    stdout_fd_ = out_pipe.read;
    stderr_fd_ = err_pipe.read;
    out_pipe.read = err_pipe.read = -1;
    set_nonblocking(stdout_fd_);
    set_nonblocking(stderr_fd_);
    if (in_pipe) {
        stdin_fd_ = in_pipe->write;
        in_pipe->write = -1;
        set_nonblocking(stdin_fd_);
    }
    io_thread_ = std::thread([this] { io_loop(); });
}

child_process::~child_process() {
    {
        std::lock_guard lk(reap_mutex_);
        if (!raw_status_) {
            ::kill(pid_, SIGKILL);
            try_reap_locked(true);
        }
    }
    {
        std::lock_guard lk(mutex_);
        stop_io_ = true;
    }
    wake_io();
    if (io_thread_.joinable()) {
        io_thread_.join();
    }
    close_fd(stdout_fd_);
    close_fd(stderr_fd_);
    close_fd(stdin_fd_);
    close_fd(wake_read_fd_);
    close_fd(wake_write_fd_);
}

void child_process::wake_io() {
    const char c = 1;
    ssize_t ignored = ::write(wake_write_fd_, &c, 1);
    (void)ignored;
}

void child_process::io_loop() {
    // Writing to a closed stdin pipe must give EPIPE, not kill the test process.
    sigset_t pipe_set;
    ::sigemptyset(&pipe_set);
    ::sigaddset(&pipe_set, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);

    // Reads what is available; returns false once the fd reached EOF (and closes it).
    auto drain = [this](int& fd, stream_buffer& buf) {
        char chunk[16384];
        while (fd >= 0) {
            ssize_t n = ::read(fd, chunk, sizeof chunk);
            if (n > 0) {
                std::lock_guard lk(mutex_);
                buf.text.append(chunk, static_cast<std::size_t>(n));
                cv_.notify_all();
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;
            }
            close_fd(fd);
            std::lock_guard lk(mutex_);
            buf.eof = true;
            cv_.notify_all();
        }
    };

    for (;;) {
        bool want_stdin_write = false;
        {
            std::lock_guard lk(mutex_);
            if (stop_io_) {
                break;
            }
            if (stdin_fd_ >= 0) {
                if (!stdin_pending_.empty()) {
                    want_stdin_write = true;
                } else if (stdin_close_requested_) {
                    close_fd(stdin_fd_);
                }
            }
        }
        pollfd fds[4];
        nfds_t count = 0;
        int out_idx = -1, err_idx = -1, in_idx = -1;
        if (stdout_fd_ >= 0) {
            out_idx = static_cast<int>(count);
            fds[count++] = pollfd{stdout_fd_, POLLIN, 0};
        }
        if (stderr_fd_ >= 0) {
            err_idx = static_cast<int>(count);
            fds[count++] = pollfd{stderr_fd_, POLLIN, 0};
        }
        if (want_stdin_write) {
            in_idx = static_cast<int>(count);
            fds[count++] = pollfd{stdin_fd_, POLLOUT, 0};
        }
        const int wake_idx = static_cast<int>(count);
        fds[count++] = pollfd{wake_read_fd_, POLLIN, 0};

        int rc = ::poll(fds, count, -1);
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (fds[wake_idx].revents != 0) {
            char sink[64];
            while (::read(wake_read_fd_, sink, sizeof sink) > 0) {
            }
        }
        if (out_idx >= 0 && fds[out_idx].revents != 0) {
            drain(stdout_fd_, out_);
        }
        if (err_idx >= 0 && fds[err_idx].revents != 0) {
            drain(stderr_fd_, err_);
        }
        if (in_idx >= 0 && fds[in_idx].revents != 0) {
            std::lock_guard lk(mutex_);
            while (!stdin_pending_.empty()) {
                ssize_t n = ::write(stdin_fd_, stdin_pending_.data(), stdin_pending_.size());
                if (n > 0) {
                    stdin_pending_.erase(0, static_cast<std::size_t>(n));
                } else if (n < 0 && errno == EINTR) {
                    continue;
                } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    break;
                } else {
                    // EPIPE or another error: the child will not read any more.
                    stdin_pending_.clear();
                    close_fd(stdin_fd_);
                    break;
                }
            }
        }
    }
    // Stop requested: collect whatever is already in the pipes.
    drain(stdout_fd_, out_);
    drain(stderr_fd_, err_);
}

std::string child_process::stdout_text() const {
    std::lock_guard lk(mutex_);
    return out_.text;
}

std::string child_process::stderr_text() const {
    std::lock_guard lk(mutex_);
    return err_.text;
}

std::optional<std::vector<std::string>> child_process::wait_for_stdout_line(
    const std::regex& re, std::chrono::milliseconds timeout, std::size_t* cursor) {
    return wait_for_line(out_, re, timeout, cursor);
}

std::optional<std::vector<std::string>> child_process::wait_for_stderr_line(
    const std::regex& re, std::chrono::milliseconds timeout, std::size_t* cursor) {
    return wait_for_line(err_, re, timeout, cursor);
}

std::optional<std::vector<std::string>> child_process::wait_for_line(
    stream_buffer& buf, const std::regex& re, std::chrono::milliseconds timeout,
    std::size_t* cursor) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lk(mutex_);
    std::size_t pos = cursor ? std::min(*cursor, buf.text.size()) : 0;
    bool timed_out = false;
    for (;;) {
        // Scan complete lines (and the unterminated tail once the stream is closed).
        for (;;) {
            std::size_t nl = buf.text.find('\n', pos);
            std::size_t end = nl;
            std::size_t next = nl + 1;
            if (nl == std::string::npos) {
                if (!buf.eof || pos >= buf.text.size()) {
                    break;
                }
                end = buf.text.size();
                next = end;
            }
            std::string line = buf.text.substr(pos, end - pos);
            if (!line.empty() && line.back() == '\r') {
                line.pop_back();
            }
            pos = next;
            std::smatch m;
            if (std::regex_search(line, m, re)) {
                std::vector<std::string> groups;
                groups.reserve(m.size());
                for (const auto& g : m) {
                    groups.push_back(g.str());
                }
                if (cursor) {
                    *cursor = pos;
                }
                return groups;
            }
        }
        if (buf.eof || timed_out) {
            return std::nullopt;
        }
        // On timeout, scan once more for lines that arrived together with it.
        timed_out = cv_.wait_until(lk, deadline) == std::cv_status::timeout;
    }
}

void child_process::write_stdin(std::string_view data) {
    {
        std::lock_guard lk(mutex_);
        if (stdin_close_requested_) {
            throw std::logic_error("child_process::write_stdin after close_stdin");
        }
        stdin_pending_.append(data);
    }
    wake_io();
}

void child_process::close_stdin() {
    {
        std::lock_guard lk(mutex_);
        stdin_close_requested_ = true;
    }
    wake_io();
}

bool child_process::try_reap_locked(bool block) {
    if (raw_status_) {
        return true;
    }
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
        if (r == pid_) {
            raw_status_ = status;
            return true;
        }
        if (r == 0) {
            return false;
        }
        if (errno == EINTR) {
            continue;
        }
        // ECHILD: reaped elsewhere (e.g. SIGCHLD ignored); the exit status is lost.
        raw_status_ = -1;
        return true;
    }
}

bool child_process::send_signal(int sig) {
    std::lock_guard lk(reap_mutex_);
    if (raw_status_) {
        return false;
    }
    return ::kill(pid_, sig) == 0;
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + timeout;
    auto delay = std::chrono::milliseconds(1);
    for (;;) {
        {
            std::lock_guard lk(reap_mutex_);
            if (try_reap_locked(false)) {
                break;
            }
        }
        auto now = clock::now();
        if (now >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(
            std::min<clock::duration>(delay, deadline - now + std::chrono::microseconds(100)));
        delay = std::min(delay * 2, std::chrono::milliseconds(20));
    }
    {
        // Let the reader collect the rest of the output (grandchildren may keep pipes open).
        std::unique_lock lk(mutex_);
        cv_.wait_for(lk, std::chrono::seconds(2), [this] { return out_.eof && err_.eof; });
    }
    return exit_code();
}

bool child_process::running() {
    std::lock_guard lk(reap_mutex_);
    return !try_reap_locked(false);
}

std::optional<int> child_process::exit_code() const {
    std::lock_guard lk(reap_mutex_);
    if (!raw_status_) {
        return std::nullopt;
    }
    return *raw_status_ == -1 ? -1 : decode_status(*raw_status_);
}

std::optional<int> child_process::term_signal() const {
    std::lock_guard lk(reap_mutex_);
    if (!raw_status_ || *raw_status_ == -1 || !WIFSIGNALED(*raw_status_)) {
        return std::nullopt;
    }
    return WTERMSIG(*raw_status_);
}

long child_process::status_kib(std::string_view field) const {
    {
        std::lock_guard lk(reap_mutex_);
        if (raw_status_) {
            return -1;
        }
    }
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
            line[field.size()] == ':') {
            try {
                return std::stol(line.substr(field.size() + 1));
            } catch (const std::exception&) {
                return -1;
            }
        }
    }
    return -1;
}

long child_process::rss_kib() const {
    return status_kib("VmRSS");
}

long child_process::peak_rss_kib() const {
    return status_kib("VmHWM");
}

command_result run_command(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                           std::string stdin_text, spawn_options options) {
    options.pipe_stdin = true;
    child_process child(std::move(argv), std::move(options));
    if (!stdin_text.empty()) {
        child.write_stdin(stdin_text);
    }
    child.close_stdin();
    command_result result;
    auto code = child.wait_exit(timeout);
    if (!code) {
        result.timed_out = true;
        child.send_signal(SIGKILL);
        code = child.wait_exit(std::chrono::seconds(10));
    }
    result.exit_code = code.value_or(-1);
    result.out = child.stdout_text();
    result.err = child.stderr_text();
    return result;
}

}  // namespace llm_proxy::test

#pragma once
// Child processes for the tests: spawn with pipes on stdout/stderr (read by a background thread),
// wait for lines matching a regex, signal, reap with a timeout, and read the resident set size.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace llm_proxy::test {

using env_list = std::vector<std::pair<std::string, std::string>>;

struct spawn_options {
    // Added to (or overriding) the test process environment.
    env_list env;
    // Variables removed from the inherited environment.
    std::vector<std::string> unset_env;
    std::optional<std::filesystem::path> cwd;
    // When false the child's stdin is /dev/null; when true it is a pipe fed by write_stdin().
    bool pipe_stdin = false;
};

// A spawned child. The child gets SIGKILL if the thread that spawned it (normally the gtest main
// thread) dies; all fds but 0/1/2 are closed and signal dispositions/mask are reset in the child.
// Not copyable or movable (a background thread refers to it); hold it in a unique_ptr if needed.
class child_process {
  public:
    // argv[0] is looked up in PATH (execvpe). Throws std::system_error if it cannot be executed.
    explicit child_process(std::vector<std::string> argv, spawn_options options = {});
    // SIGKILLs and reaps the child if still running.
    ~child_process();

    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const { return pid_; }
    const std::vector<std::string>& argv() const { return argv_; }

    // Everything captured so far (thread-safe).
    std::string stdout_text() const;
    std::string stderr_text() const;

    // Waits until a complete line (or the final unterminated line after EOF) matches `re` (with
    // std::regex_search) and returns [whole match, group 1, group 2, ...]. Returns nullopt on
    // timeout or when the stream reached EOF without a match. With `cursor`, the search starts
    // at byte offset *cursor and *cursor is moved past the matched line, so repeated calls find
    // successive lines.
    std::optional<std::vector<std::string>> wait_for_stdout_line(const std::regex& re,
                                                                 std::chrono::milliseconds timeout,
                                                                 std::size_t* cursor = nullptr);
    std::optional<std::vector<std::string>> wait_for_stderr_line(const std::regex& re,
                                                                 std::chrono::milliseconds timeout,
                                                                 std::size_t* cursor = nullptr);

    // Feeds the child's stdin (spawn_options::pipe_stdin must be true). Non-blocking: the data is
    // queued and written by the background thread.
    void write_stdin(std::string_view data);
    void close_stdin();

    // kill(pid, sig); false if the child has already been reaped or kill() failed.
    bool send_signal(int sig);

    // Reaps the child, waiting at most `timeout`. Returns the exit status, or 128 + signal number
    // when killed by a signal (shell convention); nullopt on timeout. After a successful wait the
    // output pipes are drained (up to 2 s more) so stdout_text()/stderr_text() are complete.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // True while the child has not been reaped (reaps it if it has just exited).
    bool running();
    // The exit code, once reaped (same encoding as wait_exit).
    std::optional<int> exit_code() const;
    // The signal that killed the child, if it was killed by one.
    std::optional<int> term_signal() const;

    // VmRSS from /proc/<pid>/status in KiB; -1 if unavailable (e.g. already reaped).
    long rss_kib() const;
    // VmHWM (peak resident set size so far) from /proc/<pid>/status in KiB; -1 if unavailable.
    long peak_rss_kib() const;

  private:
    // A "<field>: N kB" line of /proc/<pid>/status; -1 if unavailable.
    long status_kib(std::string_view field) const;

    struct stream_buffer {
        std::string text;
        bool eof = false;
    };

    std::optional<std::vector<std::string>> wait_for_line(stream_buffer& buf, const std::regex& re,
                                                          std::chrono::milliseconds timeout,
                                                          std::size_t* cursor);
    bool try_reap_locked(bool block);
    void io_loop();
    void wake_io();

    std::vector<std::string> argv_;
    pid_t pid_ = -1;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    stream_buffer out_;
    stream_buffer err_;
    std::string stdin_pending_;
    bool stdin_close_requested_ = false;
    bool stop_io_ = false;

    mutable std::mutex reap_mutex_;
    std::optional<int> raw_status_;

    int stdout_fd_ = -1;
    int stderr_fd_ = -1;
    int stdin_fd_ = -1;
    int wake_read_fd_ = -1;
    int wake_write_fd_ = -1;
    std::thread io_thread_;
};

struct command_result {
    int exit_code = -1;  // same encoding as child_process::wait_exit; -1 if never reaped
    std::string out;
    std::string err;
    bool timed_out = false;
};

// Runs argv to completion, feeding stdin_text on stdin. On timeout the child is SIGKILLed and
// reaped, timed_out is set and exit_code is 128 + SIGKILL.
command_result run_command(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                           std::string stdin_text = "", spawn_options options = {});

}  // namespace llm_proxy::test

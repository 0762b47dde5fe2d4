#include "llm_proxy/util/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace llm_proxy::files {

namespace fs = std::filesystem;

namespace {

std::string fail(std::string_view what, const fs::path& path, int err) {
    return std::string(what) + " " + path.string() + ": " + errno_message(err);
}

// Writes all of `data` to `fd`; returns 0 or an errno value.
int write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

}  // namespace

std::string errno_message(int err) {
    char buf[256];
    // GNU strerror_r returns the message, which may or may not be in buf.
    return ::strerror_r(err, buf, sizeof buf);
}

std::string make_directories(const fs::path& dir, mode_t mode) {
    if (dir.empty()) {
        return "cannot create a directory with an empty path";
    }
    fs::path prefix;
    for (const auto& part : dir) {
        if (part.empty()) {
            continue;  // the trailing "" of "a/b/"
        }
        prefix /= part;
        struct stat st {};
        if (::stat(prefix.c_str(), &st) != 0) {
            if (errno != ENOENT) {
                return fail("cannot create", prefix, errno);
            }
            if (::mkdir(prefix.c_str(), mode) == 0) {
                continue;
            }
            // EEXIST: another process was faster; check what it made.
            if (errno != EEXIST || ::stat(prefix.c_str(), &st) != 0) {
                return fail("cannot create", prefix, errno);
            }
        }
        if (!S_ISDIR(st.st_mode)) {
            return "cannot create " + prefix.string() + ": exists and is not a directory";
        }
    }
    return {};
}

std::string make_private_directory(const fs::path& dir, mode_t mode) {
    if (auto error = make_directories(dir, mode); !error.empty()) {
        return error;
    }
    if (::chmod(dir.c_str(), mode) != 0) {
        return fail("cannot set the mode of", dir, errno);
    }
    return {};
}

std::string write_new_file(const fs::path& path, std::string_view data, mode_t mode,
                           durability sync) {
    int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
    if (fd < 0) {
        return fail("open", path, errno);
    }
    std::string error;
    if (int err = write_all(fd, data); err != 0) {
        error = fail("write", path, err);
    }
    if (error.empty() && sync == durability::fsync && ::fsync(fd) != 0) {
        error = fail("fsync", path, errno);
    }
    // close() can report delayed write errors (NFS, quota), so check it.
    if (::close(fd) != 0 && error.empty()) {
        error = fail("close", path, errno);
    }
    if (!error.empty()) {
        ::unlink(path.c_str());
    }
    return error;
}

std::string write_file_atomically(const fs::path& path, std::string_view data, mode_t mode,
                                  durability sync) {
    std::string tmpl =
        (path.parent_path() / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
    // mkstemp creates the file 0600, so nobody else can read it before the fchmod.
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) {
        return fail("cannot write", path, errno);
    }
    int err = 0;
    // fchmod ignores the umask: a public file is 0644 whatever the user's umask is.
    if (::fchmod(fd, mode) != 0) {
        err = errno;
    }
    if (err == 0) {
        err = write_all(fd, data);
    }
    if (err == 0 && sync == durability::fsync && ::fsync(fd) != 0) {
        err = errno;
    }
    if (::close(fd) != 0 && err == 0) {
        err = errno;
    }
    if (err == 0 && ::rename(tmpl.c_str(), path.c_str()) != 0) {
        err = errno;
    }
    if (err != 0) {
        ::unlink(tmpl.c_str());
        return fail("cannot write", path, err);
    }
    return {};
}

namespace {

// Opens `dir` read-only and runs `sync` on it.
std::string sync_with(const fs::path& dir, const char* what, int (*sync)(int)) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return fail("open", dir, errno);
    }
    std::string error;
    if (sync(fd) != 0) {
        error = fail(what, dir, errno);
    }
    ::close(fd);
    return error;
}

}  // namespace

std::string sync_directory(const fs::path& dir) {
    return sync_with(dir, "fsync", ::fsync);
}

std::string sync_file_system(const fs::path& dir) {
    return sync_with(dir, "syncfs", ::syncfs);
}

}  // namespace llm_proxy::files

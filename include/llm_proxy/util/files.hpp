#pragma once
// Private directories and whole-file writes that readers never see half done.
// Every function returns an error message naming the path, or "" on success.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace llm_proxy::files {

// strerror for errno values, thread-safe.
std::string errno_message(int err);

// mkdir -p; the directories it creates get `mode` (existing ones are left as they are).
// A component that exists and is not a directory is an error.
std::string make_directories(const std::filesystem::path& dir, mode_t mode = 0700);

// As make_directories, then sets the last directory itself to `mode` (e.g. 0700 for a
// directory that holds keys), whoever created it.
std::string make_private_directory(const std::filesystem::path& dir, mode_t mode = 0700);

enum class durability { none, fsync };

// Writes `data` to a file that must not exist yet (O_EXCL) with `mode`. On failure the file
// is removed again; a file that already existed is someone else's and left alone. With
// durability::fsync the data is on disk when it returns.
std::string write_new_file(const std::filesystem::path& path, std::string_view data,
                           mode_t mode = 0600, durability sync = durability::none);

// fsync() of a directory: the names created, renamed or removed in it are on disk.
std::string sync_directory(const std::filesystem::path& dir);

// syncfs() of the file system that holds `dir`: everything written to it is on disk.
std::string sync_file_system(const std::filesystem::path& dir);

// Writes through a hidden temporary in the same directory and renames it into place: a
// reader (or a crash) sees the old file or the new one, never half of it. The file gets
// exactly `mode`, whatever the umask. With durability::fsync the data is on disk before the
// rename.
std::string write_file_atomically(const std::filesystem::path& path, std::string_view data,
                                  mode_t mode = 0600, durability sync = durability::none);

}  // namespace llm_proxy::files

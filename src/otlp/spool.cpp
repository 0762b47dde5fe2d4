// The OTLP retry spool: a directory of batch files named <seq>-<spans>.<format> (json,
// json.gz, pb, pb.gz: how the body is encoded), or memory.
#include "llm_proxy/otlp/spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <string_view>
#include <system_error>
#include <vector>

#include "llm_proxy/util/files.hpp"

namespace llm_proxy::otlp {

namespace {

constexpr std::string_view formats[] = {".json", ".json.gz", ".pb", ".pb.gz"};

std::string_view format_of(bool protobuf, bool gzip) {
    return formats[(protobuf ? 2 : 0) + (gzip ? 1 : 0)];
}

// "<seq>-<spans>.<format>" -> (seq, spans, format).
bool parse_name(const std::string& name, std::uint64_t& seq, std::size_t& spans, bool& protobuf,
                bool& gzip) {
    std::size_t suffix = 0;
    for (std::size_t i = 0; i < std::size(formats); ++i) {
        const auto f = formats[i];
        if (name.size() > f.size() && name.compare(name.size() - f.size(), f.size(), f) == 0 &&
            name.find('.') == name.size() - f.size()) {
            suffix = f.size();
            protobuf = i >= 2;
            gzip = i % 2 == 1;
        }
    }
    if (suffix == 0) {
        return false;
    }
    auto dash = name.find('-');
    if (dash == std::string::npos) {
        return false;
    }
    const char* b = name.data();
    const char* end = b + name.size() - suffix;
    auto r1 = std::from_chars(b, b + dash, seq);
    auto r2 = std::from_chars(b + dash + 1, end, spans);
    return r1.ec == std::errc{} && r1.ptr == b + dash && r2.ec == std::errc{} && r2.ptr == end;
}

}  // namespace

spool::spool(std::filesystem::path dir, std::uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {
    if (dir_.empty() || max_bytes_ == 0) {
        dir_.clear();
        return;
    }
    if (auto err = files::make_private_directory(dir_); !err.empty()) {
        problem = err + "; spans that cannot be sent are kept in memory only";
        dir_.clear();
        return;
    }
    auto lock_path = dir_ / ".lock";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        problem = "the spool directory " + dir_.string() +
                  " is in use by another llm_proxy; spans that cannot be sent are kept in "
                  "memory only";
        if (lock_fd_ >= 0) {
            ::close(lock_fd_);
            lock_fd_ = -1;
        }
        dir_.clear();
        return;
    }
    // Batches an earlier run left: sent first, in order. Temporaries of an interrupted write
    // are removed.
    std::vector<entry> found;
    std::error_code ec;
    for (const auto& item : std::filesystem::directory_iterator(dir_, ec)) {
        auto name = item.path().filename().string();
        entry e;
        if (parse_name(name, e.seq, e.spans, e.protobuf, e.gzip)) {
            e.bytes = item.file_size(ec);
            if (!ec) {
                found.push_back(e);
            }
        } else if (name.size() > 1 && name[0] == '.' && name != ".lock") {
            std::filesystem::remove(item.path(), ec);
        }
    }
    std::sort(found.begin(), found.end(),
              [](const entry& a, const entry& b) { return a.seq < b.seq; });
    for (auto& e : found) {
        bytes_ += e.bytes;
        spans_ += e.spans;
        next_seq_ = e.seq + 1;
        entries_.push_back(std::move(e));
    }
    while (bytes_ > max_bytes_ && !entries_.empty()) {
        drop_front();
    }
}

spool::~spool() {
    if (lock_fd_ >= 0) {
        ::close(lock_fd_);
    }
}

std::filesystem::path spool::path_of(const entry& e) const {
    char name[64];
    std::snprintf(name, sizeof name, "%016llu-%zu", static_cast<unsigned long long>(e.seq),
                  e.spans);
    return dir_ / (std::string(name) + std::string(format_of(e.protobuf, e.gzip)));
}

void spool::drop_front() {
    dropped_spans_ += entries_.front().spans;
    pop();
}

bool spool::push(const batch& b) {
    if (b.body.size() > max_bytes_) {
        dropped_spans_ += b.spans;
        if (max_bytes_ == 0) {
            return false;  // no spool (--otlp-spool-mib 0): nothing to say per batch
        }
        problem = "a batch of " + std::to_string(b.body.size()) +
                  " bytes is larger than the whole spool (--otlp-spool-mib)";
        return false;
    }
    while (bytes_ + b.body.size() > max_bytes_ && !entries_.empty()) {
        drop_front();
    }
    entry e;
    e.seq = next_seq_++;
    e.spans = b.spans;
    e.protobuf = b.protobuf;
    e.gzip = b.gzip;
    e.bytes = b.body.size();
    if (on_disk()) {
        if (auto err = files::write_file_atomically(path_of(e), b.body); !err.empty()) {
            dropped_spans_ += b.spans;
            problem = err;
            return false;
        }
    } else {
        e.body = b.body;
    }
    bytes_ += e.bytes;
    spans_ += e.spans;
    entries_.push_back(std::move(e));
    return true;
}

std::optional<spool::batch> spool::front() {
    while (!entries_.empty()) {
        auto& e = entries_.front();
        if (!on_disk()) {
            return batch{e.body, e.spans, e.protobuf, e.gzip};
        }
        std::ifstream in(path_of(e), std::ios::binary);
        std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (in.bad() || !in.is_open() || body.size() != e.bytes) {
            problem = "cannot read " + path_of(e).string() + "; its spans are dropped";
            drop_front();
            continue;
        }
        return batch{std::move(body), e.spans, e.protobuf, e.gzip};
    }
    return std::nullopt;
}

void spool::pop() {
    if (entries_.empty()) {
        return;
    }
    auto& e = entries_.front();
    if (on_disk()) {
        std::error_code ec;
        std::filesystem::remove(path_of(e), ec);
    }
    bytes_ -= e.bytes;
    spans_ -= e.spans;
    entries_.pop_front();
}

}  // namespace llm_proxy::otlp

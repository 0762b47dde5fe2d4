#include "llm_proxy/export/export_run.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "llm_proxy/export/cleaning.hpp"
#include "llm_proxy/export/har.hpp"
#include "llm_proxy/export/record_examples.hpp"

namespace llm_proxy::exporter {

namespace fs = std::filesystem;

namespace {

// An output written to a temporary file (mode 0600: exports hold prompts and answers) that
// takes the final name on commit(); removed if never committed. "-" is standard output.
class output_file {
  public:
    explicit output_file(fs::path path) : path_(std::move(path)) {
        if (path_ == "-") {
            file_ = stdout;
            return;
        }
        auto dir = path_.parent_path().empty() ? fs::path(".") : path_.parent_path();
        temp_ = dir / ("." + path_.filename().string() + ".tmp-" + std::to_string(::getpid()));
        int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            throw std::runtime_error(path_.string() + ": cannot be written (" +
                                     std::strerror(errno) + ")");
        }
        file_ = ::fdopen(fd, "w");
        if (file_ == nullptr) {
            ::close(fd);
            throw std::runtime_error(path_.string() + ": cannot be written");
        }
        std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
    }
    ~output_file() {
        if (file_ != nullptr && file_ != stdout) {
            std::fclose(file_);
            std::error_code ec;
            fs::remove(temp_, ec);
        }
    }
    output_file(const output_file&) = delete;
    output_file& operator=(const output_file&) = delete;

    void write(std::string_view text) {
        if (std::fwrite(text.data(), 1, text.size(), file_) != text.size()) {
            throw std::runtime_error(path_.string() + ": write failed (" + std::strerror(errno) +
                                     ")");
        }
    }
    void line(std::string_view text) {
        write(text);
        write("\n");
        ++lines_;
    }
    void commit() {
        if (file_ == stdout) {
            std::fflush(stdout);
            return;
        }
        bool ok = std::fflush(file_) == 0;
        ok = std::fclose(file_) == 0 && ok;
        file_ = nullptr;
        std::error_code ec;
        if (ok) {
            fs::rename(temp_, path_, ec);
        }
        if (!ok || ec) {
            fs::remove(temp_, ec);
            throw std::runtime_error(path_.string() + ": cannot be written");
        }
    }
    const fs::path& path() const { return path_; }
    std::uint64_t lines() const { return lines_; }

  private:
    fs::path path_;
    fs::path temp_;
    std::FILE* file_ = nullptr;
    std::uint64_t lines_ = 0;
};

class progress_bar {
  public:
    progress_bar(bool on, std::uint64_t total) : on_(on), total_(total) {}
    void tick(std::uint64_t done) {
        if (on_ && (done % 512 == 0 || done == total_)) {
            std::fprintf(stderr, "\rexporting records %llu/%llu (%llu%%)",
                         static_cast<unsigned long long>(done),
                         static_cast<unsigned long long>(total_),
                         static_cast<unsigned long long>(total_ ? done * 100 / total_ : 100));
        }
    }
    void done() {
        if (on_) {
            std::fprintf(stderr, "\r\033[K");
        }
    }

  private:
    bool on_;
    std::uint64_t total_;
};

// Where the examples of a dataset format go, and what the summary says about them.
class dataset_sink {
  public:
    dataset_sink(const export_options& o, export_summary& s) : o_(o), s_(s) {
        if (o.split) {
            auto [train, validation] = split_paths(o.output);
            train_ = std::make_unique<output_file>(train);
            validation_ = std::make_unique<output_file>(validation);
        } else {
            train_ = std::make_unique<output_file>(o.output);
        }
    }

    void add(std::string_view line, std::optional<std::uint64_t> tokens) {
        bool train = !o_.split || goes_to_training(line, *o_.split, o_.seed);
        (train ? *train_ : *validation_).line(line);
        ++s_.written;
        if (tokens) {
            s_.tokens.push_back(*tokens);
        } else {
            ++s_.without_usage;
        }
    }

    void commit() {
        train_->commit();
        s_.outputs.emplace_back(train_->path(), train_->lines());
        if (validation_) {
            validation_->commit();
            s_.outputs.emplace_back(validation_->path(), validation_->lines());
        }
    }

  private:
    const export_options& o_;
    export_summary& s_;
    std::unique_ptr<output_file> train_;
    std::unique_ptr<output_file> validation_;
};

std::optional<std::uint64_t> example_tokens(const flow_view& f) {
    const auto& u = f.llm->call.usage;
    if (u.input_tokens && u.output_tokens) {
        return *u.input_tokens + *u.output_tokens;
    }
    return std::nullopt;
}

// The candidates of --longest, kept on disk until every conversation has been seen: each with
// its prefix hashes, notes (a bit mask), tokens and line, in binary.
class longest_spool {
  public:
    longest_spool() : file_(std::tmpfile()) {
        if (file_ == nullptr) {
            throw std::runtime_error("cannot create a temporary file for --longest");
        }
    }
    ~longest_spool() { std::fclose(file_); }
    longest_spool(const longest_spool&) = delete;
    longest_spool& operator=(const longest_spool&) = delete;

    struct entry {
        std::vector<hash128> hashes;
        std::uint32_t notes = 0;
        std::optional<std::uint64_t> tokens;
        std::string line;
    };

    void put(const std::vector<hash128>& hashes, std::uint32_t notes,
             std::optional<std::uint64_t> tokens, std::string_view line) {
        std::uint64_t head[4] = {notes, tokens ? *tokens + 1 : 0, hashes.size(), line.size()};
        bool ok = std::fwrite(head, sizeof head, 1, file_) == 1;
        ok = ok &&
             std::fwrite(hashes.data(), sizeof(hash128), hashes.size(), file_) == hashes.size();
        ok = ok && std::fwrite(line.data(), 1, line.size(), file_) == line.size();
        if (!ok) {
            throw std::runtime_error("cannot write the temporary file of --longest");
        }
    }

    // Calls fn(entry) for each candidate, in the order they were put.
    template <class Fn>
    void each(Fn&& fn) {
        std::fflush(file_);
        std::rewind(file_);
        entry e;
        std::uint64_t head[4];
        while (std::fread(head, sizeof head, 1, file_) == 1) {
            e.notes = static_cast<std::uint32_t>(head[0]);
            e.tokens = head[1] ? std::optional<std::uint64_t>(head[1] - 1) : std::nullopt;
            e.hashes.resize(head[2]);
            e.line.resize(head[3]);
            if (std::fread(e.hashes.data(), sizeof(hash128), e.hashes.size(), file_) !=
                    e.hashes.size() ||
                std::fread(e.line.data(), 1, e.line.size(), file_) != e.line.size()) {
                throw std::runtime_error("cannot read the temporary file of --longest");
            }
            fn(e);
        }
    }

  private:
    std::FILE* file_;
};

}  // namespace

std::uint64_t export_summary::skipped_total() const {
    std::uint64_t n = 0;
    for (const auto& [reason, count] : skipped) {
        n += count;
    }
    return n;
}

std::pair<fs::path, fs::path> split_paths(const fs::path& out) {
    fs::path base = out;
    std::string ext = out.extension().string();
    if (ext == ".jsonl" || ext == ".json") {
        base.replace_extension();
    } else {
        ext = ".jsonl";
    }
    return {fs::path(base.string() + ".train" + ext),
            fs::path(base.string() + ".validation" + ext)};
}

std::string export_summary::text() const {
    std::string out;
    char buf[256];
    const char* unit = format == format::har     ? "HAR entries"
                       : format == format::jsonl ? "lines"
                                                 : "examples";
    std::snprintf(buf, sizeof buf, "llm_proxy export (%s): %llu records read, %llu %s written\n",
                  to_string(format), static_cast<unsigned long long>(files),
                  static_cast<unsigned long long>(written), unit);
    out += buf;
    for (const auto& [path, lines] : outputs) {
        std::snprintf(buf, sizeof buf, "  %8llu  %s\n", static_cast<unsigned long long>(lines),
                      path.string().c_str());
        out += buf;
    }
    if (!skipped.empty()) {
        std::snprintf(buf, sizeof buf, "skipped %llu:\n",
                      static_cast<unsigned long long>(skipped_total()));
        out += buf;
        std::vector<std::pair<std::string, std::uint64_t>> rows(skipped.begin(), skipped.end());
        std::stable_sort(rows.begin(), rows.end(),
                         [](const auto& a, const auto& b) { return a.second > b.second; });
        for (const auto& [reason, count] : rows) {
            std::snprintf(buf, sizeof buf, "  %8llu  ", static_cast<unsigned long long>(count));
            out += buf;
            out += reason;
            out += '\n';
        }
    }
    if (!notes.empty()) {
        out += "notes (examples written all the same):\n";
        for (const auto& [note, count] : notes) {
            std::snprintf(buf, sizeof buf, "  %8llu  ", static_cast<unsigned long long>(count));
            out += buf;
            out += note;
            out += '\n';
        }
    }
    if (format != format::har) {
        const char* per = format == format::jsonl ? "call" : "example";
        if (tokens.empty()) {
            out += std::string("tokens per ") + per + ": no usage reported";
        } else {
            auto sorted = tokens;
            std::sort(sorted.begin(), sorted.end());
            std::snprintf(buf, sizeof buf, "tokens per %s: min %llu / median %llu / max %llu", per,
                          static_cast<unsigned long long>(sorted.front()),
                          static_cast<unsigned long long>(sorted[(sorted.size() - 1) / 2]),
                          static_cast<unsigned long long>(sorted.back()));
            out += buf;
        }
        if (without_usage > 0) {
            std::snprintf(buf, sizeof buf, " (%llu without usage)",
                          static_cast<unsigned long long>(without_usage));
            out += buf;
        }
        out += '\n';
    }
    return out;
}

export_summary run_export(const export_options& o) {
    export_summary s;
    s.format = o.format;
    const std::uint64_t total = o.progress ? count_record_files(o.inputs) : 0;
    progress_bar bar(o.progress, total);
    record_source source(o.read);

    std::unique_ptr<output_file> har;
    std::unique_ptr<dataset_sink> sink;
    if (o.format == format::har) {
        har = std::make_unique<output_file>(o.output);
        har->write(har_header());
    } else {
        sink = std::make_unique<dataset_sink>(o, s);
    }
    deduplicator dedupe;
    longest_filter longest;
    std::unique_ptr<longest_spool> spool;
    if (o.longest) {
        spool = std::make_unique<longest_spool>();
    }

    // Notes travel through the --longest spool as bits of this list.
    std::vector<std::string> note_names;
    auto note_bits = [&](const std::vector<std::string>& notes) {
        unsigned bits = 0;
        for (const auto& n : notes) {
            auto it = std::find(note_names.begin(), note_names.end(), n);
            if (it == note_names.end() && note_names.size() < 32) {
                note_names.push_back(n);
                it = note_names.end() - 1;
            }
            if (it != note_names.end()) {
                bits |= 1u << static_cast<unsigned>(it - note_names.begin());
            }
        }
        return bits;
    };
    auto count_notes = [&](const std::vector<std::string>& notes) {
        for (const auto& n : notes) {
            ++s.notes[n];
        }
    };

    auto each = [&](const flow_view* f, const std::string& why) {
        if (f == nullptr) {
            ++s.skipped["file " + why];
            return;
        }
        if (auto reason = rejected(o.selection, *f)) {
            ++s.skipped[*reason];
            return;
        }
        if (har) {
            if (s.written > 0) {
                har->write(",");
            }
            har->write(har_entry(*f));
            har->write("\n");
            ++s.written;
            return;
        }
        if (o.format == format::jsonl) {
            sink->add(jsonl_line_of(*f), example_tokens(*f));
            return;
        }
        example e = example_of(*f, o.format);
        if (!e.ok) {
            ++s.skipped[e.skipped];
            return;
        }
        if (o.dedupe && !dedupe.first_time(e.line)) {
            ++s.skipped["duplicate (--dedupe)"];
            return;
        }
        if (spool) {
            auto hashes = prefix_hashes(e);
            longest.add(hashes.back());
            spool->put(hashes, note_bits(e.notes), example_tokens(*f), e.line);
            return;
        }
        count_notes(e.notes);
        sink->add(e.line, example_tokens(*f));
    };
    for_each_record_file(o.inputs, [&](const fs::path& file) {
        ++s.files;
        bar.tick(s.files);
        source.read_each(file, each);
    });
    if (spool) {
        // Which examples another one extends: only now is every conversation known.
        spool->each([&](const longest_spool::entry& c) { longest.mark(c.hashes); });
        spool->each([&](const longest_spool::entry& c) {
            if (longest.extended(c.hashes.back())) {
                ++s.skipped["a later request of the conversation extends it (--longest)"];
                return;
            }
            for (std::size_t i = 0; i < note_names.size(); ++i) {
                if (c.notes & (1u << i)) {
                    ++s.notes[note_names[i]];
                }
            }
            sink->add(c.line, c.tokens);
        });
    }
    bar.done();
    if (har) {
        har->write(har_footer());
        har->commit();
        s.outputs.emplace_back(har->path(), s.written);
    } else {
        sink->commit();
    }
    return s;
}

}  // namespace llm_proxy::exporter

#include "support/body_stream.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <stdexcept>
#include <vector>

#include "support/proxied_connection.hpp"

namespace llm_proxy::test {

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

std::string hex(std::uint64_t n) {
    char buf[20];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n, 16);
    (void)ec;
    return std::string(buf, end);
}

// Generates the encoded body of spec in pieces of about write_size bytes, handing each to out.
void generate(const upload_spec& spec, std::string prefix, upload_result& result,
              const std::function<void(std::string_view)>& out) {
    sha256 hash;
    std::string pending = std::move(prefix);
    const std::size_t write_size = std::max<std::size_t>(spec.write_size, 1);
    auto flush_if_full = [&] {
        if (pending.size() >= write_size) {
            result.wire_bytes += pending.size();
            out(pending);
            pending.clear();
        }
    };
    // Appends body bytes [offset, offset + n) in pieces, flushing as pieces fill up.
    std::vector<char> scratch(std::min<std::size_t>(write_size, 1024 * 1024));
    auto append_data = [&](std::uint64_t offset, std::uint64_t n) {
        while (n > 0) {
            const std::size_t room = write_size > pending.size() ? write_size - pending.size() : 1;
            const std::size_t k =
                static_cast<std::size_t>(std::min<std::uint64_t>({n, room, scratch.size()}));
            fill_body(scratch.data(), k, spec.seed, offset);
            std::string_view piece(scratch.data(), k);
            hash.update(piece);
            pending.append(piece);
            offset += k;
            n -= k;
            flush_if_full();
        }
    };
    if (spec.framing == body_framing::content_length) {
        append_data(0, spec.size);
    } else {
        const std::uint64_t chunk = std::max<std::size_t>(spec.chunk_size, 1);
        for (std::uint64_t offset = 0; offset < spec.size; offset += chunk) {
            const std::uint64_t n = std::min(chunk, spec.size - offset);
            pending += hex(n) + spec.chunk_extension + "\r\n";
            append_data(offset, n);
            pending += "\r\n";
            flush_if_full();
        }
        pending += encode_last_chunk(spec.chunk_extension, spec.trailers);
    }
    if (!pending.empty()) {
        result.wire_bytes += pending.size();
        out(pending);
    }
    result.length = spec.size;
    result.sha256 = hash.hex_digest();
}

}  // namespace

sha256::sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("EVP sha256 init failed");
    }
}

sha256::~sha256() {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void sha256::update(std::string_view data) {
    EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

std::string sha256::hex_digest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest, &len);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
        out += digits[digest[i] >> 4];
        out += digits[digest[i] & 0xF];
    }
    return out;
}

std::string sha256::of(std::string_view data) {
    sha256 h;
    h.update(data);
    return h.hex_digest();
}

void fill_body(char* out, std::size_t n, std::uint64_t seed, std::uint64_t offset) {
    const std::uint64_t key = splitmix64(seed);
    std::size_t j = 0;
    while (j < n) {
        const std::uint64_t pos = offset + j;
        const std::uint64_t word = splitmix64(key ^ (pos >> 3));
        const unsigned first = static_cast<unsigned>(pos & 7);
        for (unsigned b = first; b < 8 && j < n; ++b, ++j) {
            out[j] = static_cast<char>(static_cast<unsigned char>(word >> (8 * b)));
        }
    }
}

std::string make_body(std::size_t n, std::uint64_t seed) {
    std::string out(n, '\0');
    fill_body(out.data(), n, seed, 0);
    return out;
}

std::string encode_chunk(std::string_view data, std::string_view extension) {
    std::string out = hex(data.size());
    out.append(extension).append("\r\n").append(data).append("\r\n");
    return out;
}

std::string encode_last_chunk(std::string_view extension, const header_list& trailers) {
    std::string out = "0";
    out.append(extension).append("\r\n");
    for (const auto& [k, v] : trailers) {
        out.append(k).append(": ").append(v).append("\r\n");
    }
    out += "\r\n";
    return out;
}

std::string encode_chunked(std::string_view body, std::size_t chunk_size,
                           std::string_view extension, const header_list& trailers) {
    chunk_size = std::max<std::size_t>(chunk_size, 1);
    std::string out;
    for (std::size_t at = 0; at < body.size(); at += chunk_size) {
        out += encode_chunk(body.substr(at, chunk_size), extension);
    }
    out += encode_last_chunk(extension, trailers);
    return out;
}

header_list framing_headers(const upload_spec& spec) {
    if (spec.framing == body_framing::content_length) {
        return {{"Content-Length", std::to_string(spec.size)}};
    }
    header_list out = {{"Transfer-Encoding", "chunked"}};
    if (!spec.trailers.empty()) {
        std::string names;
        for (const auto& [k, v] : spec.trailers) {
            names += (names.empty() ? "" : ", ") + k;
        }
        out.emplace_back("Trailer", names);
    }
    return out;
}

upload_result send_body(proxied_connection& c, const upload_spec& spec, std::string prefix) {
    upload_result result;
    generate(spec, std::move(prefix), result, [&](std::string_view piece) { c.send(piece); });
    return result;
}

upload_result expected_body(const upload_spec& spec) {
    upload_result result;
    generate(spec, {}, result, [](std::string_view) {});
    return result;
}

}  // namespace llm_proxy::test

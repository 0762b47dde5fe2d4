#include "llm_proxy/cache/entry.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "llm_proxy/util/text.hpp"

namespace llm_proxy::cache {

namespace {

constexpr std::string_view magic = "LPC1";

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
}

void put_str(std::string& out, std::string_view s) {
    put_u64(out, s.size());
    out.append(s);
}

class reader {
  public:
    explicit reader(std::string_view data) : data_(data) {}

    bool u64(std::uint64_t& v) {
        if (data_.size() < 8) {
            return false;
        }
        v = 0;
        for (int i = 0; i < 8; ++i) {
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(data_[i])) << (8 * i);
        }
        data_.remove_prefix(8);
        return true;
    }

    bool str(std::string& s) {
        std::uint64_t n = 0;
        if (!u64(n) || n > data_.size()) {
            return false;
        }
        s.assign(data_.substr(0, n));
        data_.remove_prefix(n);
        return true;
    }

    bool done() const { return data_.empty(); }

  private:
    std::string_view data_;
};

// Streams the key material into a digest, each field length-prefixed so that no two
// different inputs share an encoding.
class hasher {
  public:
    hasher() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
        if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
            throw std::runtime_error("SHA-256 is not available");
        }
    }

    void field(std::string_view s) {
        std::string len;
        put_u64(len, s.size());
        EVP_DigestUpdate(ctx_.get(), len.data(), len.size());
        EVP_DigestUpdate(ctx_.get(), s.data(), s.size());
    }

    std::string hex() {
        std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
        unsigned n = 0;
        EVP_DigestFinal_ex(ctx_.get(), md.data(), &n);
        return hex_encode(std::string_view(reinterpret_cast<const char*>(md.data()), n));
    }

  private:
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

}  // namespace

std::string serialize(const entry& e) {
    std::string out;
    out.reserve(64 + e.reason.size() + e.body.size() + e.headers.size() * 48);
    out.append(magic);
    put_u64(out, e.status);
    put_str(out, e.reason);
    put_u64(out, e.headers.size());
    for (const auto& [name, value] : e.headers) {
        put_str(out, name);
        put_str(out, value);
    }
    put_str(out, e.content_encoding);
    put_u64(out, e.streamed ? 1 : 0);
    put_u64(out, e.head_content_length ? *e.head_content_length + 1 : 0);
    put_u64(out, static_cast<std::uint64_t>(e.created_ms));
    put_str(out, e.body);
    return out;
}

std::optional<entry> deserialize(std::string_view data) {
    if (!data.starts_with(magic)) {
        return std::nullopt;
    }
    reader r(data.substr(magic.size()));
    entry e;
    std::uint64_t status = 0;
    std::uint64_t count = 0;
    if (!r.u64(status) || status < 100 || status > 999 || !r.str(e.reason) || !r.u64(count)) {
        return std::nullopt;
    }
    e.status = static_cast<unsigned>(status);
    for (std::uint64_t i = 0; i < count; ++i) {
        std::string name;
        std::string value;
        if (!r.str(name) || !r.str(value)) {
            return std::nullopt;
        }
        e.headers.emplace_back(std::move(name), std::move(value));
    }
    std::uint64_t streamed = 0;
    std::uint64_t head_length = 0;
    std::uint64_t created = 0;
    if (!r.str(e.content_encoding) || !r.u64(streamed) || !r.u64(head_length) || !r.u64(created) ||
        !r.str(e.body) || !r.done()) {
        return std::nullopt;
    }
    e.streamed = streamed != 0;
    if (head_length != 0) {
        e.head_content_length = head_length - 1;
    }
    e.created_ms = static_cast<std::int64_t>(created);
    return e;
}

std::string make_key(
    std::string_view method, std::string_view url, std::string_view body,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& key_headers) {
    hasher h;
    h.field("llm_proxy cache key v1");
    h.field(method);
    h.field(url);
    h.field(body);
    for (const auto& [name, value] : key_headers) {
        h.field(to_lower(name));
        h.field(value ? "1" : "0");
        h.field(value.value_or(""));
    }
    return h.hex();
}

}  // namespace llm_proxy::cache

// The CA loader (certificate_authority::load_or_create) on a CA directory whose files come
// from the input: mitmproxy's combined mitmproxy-ca.pem (key and certificate in one file) or
// the openssl recipe's mitmproxy-ca-cert.key + mitmproxy-ca-cert.pem, with PEM, traditional
// and PKCS#8 keys (plain and encrypted), mutated. A bad directory must give
// std::runtime_error, never a crash; a CA that loads must mint a leaf.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "llm_proxy/tls/certificate_authority.hpp"

namespace fs = std::filesystem;
using llm_proxy::fuzz::check;
namespace tls = llm_proxy::tls;

namespace {

// A directory of its own, removed at exit (the names live in static storage without a
// destructor, so the exit handler can still read them). In memory (/dev/shm) where the machine
// has it: every input creates and deletes files there, which on ext4 took an eighth of the
// time.
char shm_dir_name[] = "/dev/shm/llm_proxy_fuzz_ca_loader_XXXXXX";
char tmp_dir_name[] = "/tmp/llm_proxy_fuzz_ca_loader_XXXXXX";
const char* work_dir_name = nullptr;

fs::path work_dir() {
    static const bool made = [] {
        work_dir_name = mkdtemp(shm_dir_name);
        if (work_dir_name == nullptr) {
            work_dir_name = mkdtemp(tmp_dir_name);
        }
        check(work_dir_name != nullptr, "mkdtemp");
        std::atexit([] {
            std::error_code ec;
            fs::remove_all(work_dir_name, ec);
        });
        return true;
    }();
    (void)made;
    return fs::path(work_dir_name);
}

void write(const fs::path& p, std::string_view bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

// Input: one layout byte, then the file(s). For the recipe layout the key and the certificate
// are separated by the first "\n====\n" (no separator: all key, and an empty certificate).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    llm_proxy::fuzz::quiet_logs();
    if (size == 0) {
        return 0;
    }
    const fs::path dir = work_dir();
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        fs::remove_all(entry.path(), ec);
    }
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    const bool recipe = data[0] & 1;
    if (recipe) {
        const auto sep = input.find("\n====\n");
        std::string_view key = input.substr(0, sep);
        std::string_view cert =
            sep == std::string_view::npos ? std::string_view() : input.substr(sep + 6);
        write(dir / tls::recipe_key_file, key);
        write(dir / tls::ca_cert_pem_file, cert);
    } else {
        write(dir / tls::ca_key_and_cert_file, input);
    }
    try {
        auto ca = tls::certificate_authority::load_or_create(dir);
        check(ca->cert() != nullptr && ca->key() != nullptr, "a CA loaded without cert or key");
        check(ca->origin() != tls::ca_origin::created, "a CA was created over existing files");
        auto leaf = ca->leaf_for("fuzz.example");
        check(leaf && leaf->cert, "a loaded CA did not mint a leaf");
    } catch (const std::runtime_error&) {
    }
    return 0;
}

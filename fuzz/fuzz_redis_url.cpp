// Redis URL parsing (parse_redis_url): redis://[[user]:password@]host[:port][/db] and
// unix:///path?db=N&user=U&password=P, percent-encoding, IPv6 literals. Bad URLs throw
// std::invalid_argument; a TCP URL that parses has a display form that parses again to the
// same host, port and db.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "fuzz_support.hpp"
#include "llm_proxy/cache/redis_store.hpp"

using llm_proxy::cache::parse_redis_url;
using llm_proxy::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    llm_proxy::cache::redis_url url;
    try {
        url = parse_redis_url(text);
    } catch (const std::invalid_argument&) {
        return 0;
    }
    check(url.is_unix() != !url.host.empty(), "a URL with neither (or both) host and socket");
    check(url.is_unix() || url.port != 0, "a TCP URL without a port");
    if (url.is_unix() || !url.user.empty()) {
        return 0;  // display() of a socket path or a user is for messages only
    }
    // redis://host:port/db as display() writes it must parse to the same place.
    const std::string shown = url.display();
    llm_proxy::cache::redis_url again;
    try {
        again = parse_redis_url(shown);
    } catch (const std::invalid_argument&) {
        check(false, "display() gave a URL that does not parse");
    }
    check(again.host == url.host, "display() round trip changed the host");
    check(again.port == url.port, "display() round trip changed the port");
    check(again.db == url.db, "display() round trip changed the db");
    return 0;
}

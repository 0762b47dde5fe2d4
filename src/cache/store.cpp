#include "llm_proxy/cache/store.hpp"

namespace llm_proxy::cache {

std::int64_t unix_ms_now() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace llm_proxy::cache

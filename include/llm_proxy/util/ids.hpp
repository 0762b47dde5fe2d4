#pragma once
#include <chrono>
#include <string>

namespace llm_proxy {
// A random (version 4) UUID in its canonical text form.
std::string make_uuid();
// RFC 3339 UTC timestamp with microseconds, e.g. "2026-11-27T05:23:07.123456Z".
std::string format_timestamp(std::chrono::system_clock::time_point t);
}  // namespace llm_proxy

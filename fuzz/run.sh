#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on a fresh copy of its seed corpus (the repository
# is not written) and fails on the first crash, leak, timeout or check failure.
#
#   fuzz/run.sh [BUILD_DIR] [SECONDS_PER_TARGET]     (defaults: build-fuzz 45)
#
# BUILD_DIR is a build configured with -DLLM_PROXY_FUZZ=ON (see docs/reliability.md); the
# targets must be built (`ninja -C BUILD_DIR fuzz`). FUZZ_TARGETS="a b" runs only those;
# FUZZ_ARTIFACTS=DIR keeps crashing inputs there (default: a temporary directory, printed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build-fuzz}"
seconds="${2:-45}"
work="$(mktemp -d "${TMPDIR:-/tmp}/llm_proxy_fuzz.XXXXXX")"
artifacts="${FUZZ_ARTIFACTS:-$work/artifacts}"
mkdir -p "$artifacts"
trap 'rm -rf "$work/corpus"' EXIT

targets="${FUZZ_TARGETS:-$(cd "$here" && ls fuzz_*.cpp | sed 's/\.cpp$//' | grep -v '^fuzz_support$')}"
failed=()
for t in $targets; do
  bin="$build/fuzz/$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing (build with: ninja -C $build fuzz)" >&2
    exit 2
  fi
  rm -rf "$work/corpus"
  mkdir -p "$work/corpus"
  cp -r "$here/corpus/$t/." "$work/corpus/"
  dict=()
  if [ -f "$here/dict/$t.dict" ]; then dict=(-dict="$here/dict/$t.dict"); fi
  echo "=== $t: ${seconds}s"
  log="$work/$t.log"
  if ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}" \
     UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
     "$bin" "$work/corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" >"$log" 2>&1; then
    grep -E '^#[0-9]+ *DONE|stat::number_of_executed_units|stat::average_exec_per_sec' "$log" || true
  else
    echo "fuzz: $t FAILED; log tail:" >&2
    tail -n 60 "$log" >&2
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failing targets: ${failed[*]} (crashing inputs in $artifacts)" >&2
  exit 1
fi
echo "fuzz: all targets passed"
rm -rf "$work"

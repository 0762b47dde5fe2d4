#!/usr/bin/env bash
# A longer fuzzing campaign: each target in turn (one process at a time) for its own number of
# seconds, on a corpus kept in OUT/corpus/<target> (seeded from fuzz/corpus/<target>), with
# the logs in OUT/<target>.log and crashing inputs in OUT/artifacts. Prints each target's
# figures (executions, exec/s, coverage, corpus) at the end.
#
#   fuzz/campaign.sh BUILD_DIR OUT target:seconds [target:seconds ...]
#
# CAMPAIGN_RUNS=N also stops each target after N executions (libFuzzer's -runs), whichever
# comes first. CAMPAIGN_FLAGS adds libFuzzer flags to every target (for the engine targets,
# "-entropic=0": libFuzzer's default entropic schedule spends over half of their time updating
# its per-feature frequencies; see docs/reliability.md). CAMPAIGN_TIMEOUT=S sets libFuzzer's
# per-input time limit (default 10 s): it counts wall-clock time, so a campaign that shares the
# machine with builds at a higher priority wants a longer one.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$1"
out="$2"
shift 2
mkdir -p "$out/artifacts"
for spec in "$@"; do
  t="${spec%%:*}"
  seconds="${spec##*:}"
  mkdir -p "$out/corpus/$t"
  cp -rn "$here/corpus/$t/." "$out/corpus/$t/"
  runs=()
  if [ -n "${CAMPAIGN_RUNS:-}" ]; then runs=(-runs="$CAMPAIGN_RUNS"); fi
  flags=()
  if [ -n "${CAMPAIGN_FLAGS:-}" ]; then read -r -a flags <<<"$CAMPAIGN_FLAGS"; fi
  dict=()
  if [ -f "$here/dict/$t.dict" ]; then dict=(-dict="$here/dict/$t.dict"); fi
  start=$(date +%s)
  ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$build/fuzz/$t" "$out/corpus/$t" "${dict[@]}" "${runs[@]}" "${flags[@]}" -max_total_time="$seconds" -timeout="${CAMPAIGN_TIMEOUT:-10}" \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
      >"$out/$t.log" 2>&1
  rc=$?
  end=$(date +%s)
  last=$(grep -E '^#[0-9]+' "$out/$t.log" | tail -1)
  execs=$(grep -E 'stat::number_of_executed_units' "$out/$t.log" | awk '{print $2}')
  rate=$(grep -E 'stat::average_exec_per_sec' "$out/$t.log" | awk '{print $2}')
  files=$(ls "$out/corpus/$t" | wc -l)
  echo "$t rc=$rc seconds=$((end - start)) execs=${execs:-?} exec/s=${rate:-?} corpus_files=$files last: $last" |
    tee -a "$out/summary.txt"
done

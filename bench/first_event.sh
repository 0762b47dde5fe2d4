#!/usr/bin/env bash
# bench/first_event.sh — time to the first SSE event of a NEW intercepted connection, against
# the direct path, in the same run (issue "first byte sooner": within 1.5 ms of direct).
#
#   bench/first_event.sh                          (from the repository root or anywhere)
#
# Starts the fake upstream (TLS) and `llm_proxy simple --threads 1`, then runs, BENCH_REPEATS
# times and interleaved, two clients for each target: bench_first_event (C++, OpenSSL,
# bench/first_event_client.cpp) and bench/sse_latency.py --new-connection (Python, httpx).
# Every stream opens its own connection (direct: TCP + TLS to the upstream; proxied: CONNECT,
# TLS with the proxy's leaf, and the proxy's own TCP + TLS upstream), and the time from
# starting it to the first event is measured; each client's TLS context (CA file loaded) is
# made before the timing. The first stream of a run (leaf minting) is left out. Prints, per
# client, the medians and the added time per repeat (proxied − direct of the same repeat).
#
# Environment: BENCH_REPEATS=7 BENCH_STREAMS=40 BENCH_BUILD_DIR=build-bench (Release, built
# unless BENCH_SKIP_BUILD=1), BENCH_BEFORE_BIN=PATH (an earlier llm_proxy measured alongside),
# BENCH_RESULTS_NAME=first_event (bench/results/<name>.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REPEATS="${BENCH_REPEATS:-7}"
STREAMS="${BENCH_STREAMS:-40}"
BUILD="${BENCH_BUILD_DIR:-build-bench}"
NAME="${BENCH_RESULTS_NAME:-first_event}"
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_script_setup first-event llm_proxy_first_event
declare -A PORT

build
cmake --build "$BUILD" --target bench_first_event >&2
make_certs
start_upstream

start_proxy() {  # start_proxy NAME BINARY [GLOBAL OPTIONS...]
    local port name="$1" bin="$2"
    shift 2
    port="$(free_port)"
    "$bin" --listen "127.0.0.1:$port" --ca_dir "$TMP/ca_$name" --upstream-ca "$TMP/pki/testca.pem" \
        --threads 1 "$@" simple >"$TMP/$name.log" 2>&1 &
    PIDS_TO_STOP+=("$!")
    PID[$name]=$!
    wait_port "$port" "${PID[$name]}" "$name"
    PORT[$name]=$port
}
# Two cases: the proxy holds a pooled upstream connection from the previous stream (what a
# new client connection finds in steady use), and no pooling (--max-idle-upstream 0: every
# client connection needs a new upstream connection, as the first one to a host does).
TARGETS="direct llm_simple llm_nopool"
start_proxy llm_simple "$BUILD/llm_proxy"
start_proxy llm_nopool "$BUILD/llm_proxy" --max-idle-upstream 0
if [[ -n "${BENCH_BEFORE_BIN:-}" ]]; then
    start_proxy before "$BENCH_BEFORE_BIN"
    start_proxy before_nopool "$BENCH_BEFORE_BIN" --max-idle-upstream 0
    TARGETS="direct before llm_simple before_nopool llm_nopool"
fi

RAW="$TMP/raw.tsv"
for ((rep = 1; rep <= REPEATS; rep++)); do
    for t in $TARGETS; do
        px=""
        trust="$TMP/pki/testca.pem"
        if [[ "$t" != direct ]]; then
            px="http://127.0.0.1:${PORT[$t]}"
            trust="$TMP/ca_$t/mitmproxy-ca-cert.pem"
        fi
        proxy_args=()
        [[ -n "$px" ]] && proxy_args=(--proxy "$px")
        "$BUILD/bench_first_event" --url "https://localhost:$UPORT/v1/chat/completions" \
            "${proxy_args[@]}" --cafile "$trust" --streams "$STREAMS" \
            --label "cpp	$rep	$t" >>"$RAW" || die "run $rep of $t (C++ client) failed"
        "$PY" bench/sse_latency.py --new-connection --url "https://localhost:$UPORT/v1/chat/completions" \
            --proxy "$px" --cafile "$trust" --streams "$STREAMS" --events 2 --interval-ms 1 \
            --label "python	$rep	$t" >>"$RAW" || die "run $rep of $t (Python client) failed"
    done
    log "repeat $rep/$REPEATS done"
done

OUT="bench/results/$NAME.md"
"$PY" - "$RAW" "$TARGETS" "$REPEATS" "$STREAMS" >"$OUT" <<'PYEOF'
import statistics, sys, platform, os
raw, targets, repeats, streams = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
clients = {}
for line in open(raw):
    f = line.rstrip("\n").split("\t")
    clients.setdefault(f[0], {}).setdefault(f[2], {})[int(f[1])] = float(f[3])
names = {"direct": "direct (no proxy)",
         "before": "llm_proxy simple, earlier version (BENCH_BEFORE_BIN)",
         "llm_simple": "llm_proxy simple",
         "before_nopool": "llm_proxy simple --max-idle-upstream 0, earlier version",
         "llm_nopool": "llm_proxy simple --max-idle-upstream 0 (a new upstream connection each time)"}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print("# Time to the first SSE event on a new connection\n")
print(f"bench/first_event.sh: {repeats} repeats × {streams} streams per target, interleaved; every stream"
      " on a new connection, the first of each run left out. Machine: "
      f"{cpu}, {os.cpu_count()} cores, {platform.platform()}.\n")
titles = {"cpp": "C++ client (bench/first_event_client.cpp, OpenSSL)",
          "python": "Python client (bench/sse_latency.py, httpx)"}
for client in ("cpp", "python"):
    ttfe = clients.get(client, {})
    print(f"## {titles[client]}\n")
    print("| target | time to first event p50 of the repeats' medians ms | added vs direct ms (median of per-repeat differences) |")
    print("|---|---:|---:|")
    for t in targets:
        vals = list(ttfe.get(t, {}).values())
        if not vals:
            continue
        diffs = [ttfe[t][r] - ttfe["direct"][r] for r in ttfe[t] if r in ttfe["direct"]]
        added = "–" if t == "direct" else f"{statistics.median(diffs):+.3f}"
        print(f"| {names.get(t, t)} | {statistics.median(vals):.3f} | {added} |")
    print()
PYEOF
cat "$OUT"

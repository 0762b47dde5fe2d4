#!/usr/bin/env bash
# bench/record_queue.sh — memory of `llm_proxy dir_logger` under a sustained load that outruns
# the record writer, with the record queue bounded (--record-queue-mib, default) and unbounded (0).
#
# One command, from the repository root or anywhere:   bench/record_queue.sh
#
#   1. builds llm_proxy + fake_upstream (Release, build-bench/) unless BENCH_SKIP_BUILD=1
#   2. per setting of BENCH_QUEUES: starts a fresh `llm_proxy dir_logger` writing records to
#      BENCH_RECORDS_DIR (default: a temp dir in /tmp, the disk) and drives it with
#      `hey -z BENCH_SECONDS -c BENCH_CONC` (keep-alive POSTs of a chat completion through an
#      intercepted CONNECT to the fake upstream over TLS)
#   3. samples the proxy's RSS every 0.2 s (and VmHWM at the end) and, after the load, waits
#      (at most BENCH_DRAIN_SECONDS) until every record is written
#   4. prints a markdown table: 200 responses, records written, peak RSS, the seconds the writer
#      still needed after the load, and how often a request waited for room in the queue
#
# Environment: BENCH_SECONDS=60 BENCH_CONC=50 BENCH_QUEUES="16 0" BENCH_DRAIN_SECONDS=600
#              BENCH_PROMPT_KIB=0 BENCH_BUILD_DIR=build-bench BENCH_RECORDS_DIR=
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_LOAD="${BENCH_SECONDS:-60}"
CONC="${BENCH_CONC:-50}"
QUEUES="${BENCH_QUEUES:-16 0}"
DRAIN="${BENCH_DRAIN_SECONDS:-600}"
BUILD="${BENCH_BUILD_DIR:-build-bench}"
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_script_setup record-queue llm_proxy_record_queue

command -v hey >/dev/null || die "hey is missing (bench/run.sh installs it)"
build
make_certs
start_upstream
RECORDS_ROOT="${BENCH_RECORDS_DIR:-$TMP}"
# BENCH_PROMPT_KIB pads the prompt: larger records make the writer the bottleneck sooner.
PAD="$(head -c "$((${BENCH_PROMPT_KIB:-0} * 1024))" /dev/zero | tr '\0' 'x')"
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word.%s"}]}' \
    "$PAD" >"$TMP/body.json"

rows=()
for q in $QUEUES; do
    port="$(free_port)"
    out="$RECORDS_ROOT/records-q$q"
    rm -rf "$out" "$TMP/ca"
    mkdir -p "$out" "$TMP/ca"
    "$BUILD/llm_proxy" dir_logger -o "$out" --listen "127.0.0.1:$port" --ca_dir "$TMP/ca" \
        --upstream-ca "$TMP/pki/testca.pem" --record-queue-mib "$q" >"$TMP/proxy-q$q.log" 2>&1 &
    pid=$!
    PIDS_TO_STOP+=("$pid")
    wait_port "$port" "$pid" "proxy-q$q"
    cat "$TMP/pki/testca.pem" "$TMP/ca/mitmproxy-ca-cert.pem" >"$TMP/trust.pem"
    rss0="$(rss_kb "$pid")"
    log "queue ${q} MiB: ${SECONDS_LOAD} s at c=${CONC} (proxy pid $pid, RSS ${rss0} KiB at start)"
    (
        peak=0
        while kill -0 "$pid" 2>/dev/null; do
            r="$(rss_kb "$pid" 2>/dev/null || echo 0)"
            ((r > peak)) && peak=$r && echo "$peak" >"$TMP/peak-q$q"
            sleep 0.2
        done
    ) &
    sampler=$!
    SSL_CERT_FILE="$TMP/trust.pem" timeout $((SECONDS_LOAD + 60)) hey -z "${SECONDS_LOAD}s" \
        -c "$CONC" -x "http://127.0.0.1:$port" -m POST -T application/json -D "$TMP/body.json" \
        "https://localhost:$UPORT/v1/chat/completions" >"$TMP/hey-q$q.txt" || true
    ok="$(grep -oE '\[200\][[:space:]]+[0-9]+' "$TMP/hey-q$q.txt" | head -1 | awk '{print $2}' || true)"
    ok="${ok:-0}"
    t_end="$(date +%s.%N)"
    written=0
    for ((i = 0; i < DRAIN * 5; i++)); do
        written="$(find "$out" -name '*.json' | wc -l)"
        ((written >= ok)) && break
        sleep 0.2
    done
    drain_s="$(echo "$(date +%s.%N) - $t_end" | bc)"
    hwm="$(hwm_kb "$pid")"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    peak="$(cat "$TMP/peak-q$q" 2>/dev/null || echo 0)"
    written="$(find "$out" -name '*.json' | wc -l)"
    waits="$(grep -o 'waited for room in the record queue [0-9]* times' "$TMP/proxy-q$q.log" |
        grep -o '[0-9]*' | tail -1 || true)"
    log "queue ${q} MiB: ${ok} responses, ${written} records, peak RSS ${peak} KiB (VmHWM ${hwm}), writer needed ${drain_s} s more"
    rows+=("| ${q} | ${ok} | ${written} | $((hwm / 1024)) | $(printf '%.1f' "$drain_s") | ${waits:-0} |")
    rm -rf "$out"
done

cat <<EOF
## dir_logger under sustained load: the record queue

Run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $("$BUILD/llm_proxy" --version | head -1), git $(git rev-parse --short HEAD).
\`hey -z ${SECONDS_LOAD}s -c ${CONC}\` keep-alive POSTs (prompt padded by ${BENCH_PROMPT_KIB:-0} KiB) through an intercepted CONNECT to the fake upstream (TLS, 1 thread); records on $(df --output=fstype "$RECORDS_ROOT" | tail -1) at ${RECORDS_ROOT}. Load generator, upstream and proxy share the cores.

| --record-queue-mib | 200 responses | records written | peak RSS MiB (VmHWM) | writer still busy after the load, s | requests that waited for room |
|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")
EOF

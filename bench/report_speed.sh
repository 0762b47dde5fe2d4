#!/usr/bin/env bash
# bench/report_speed.sh — how fast `llm_proxy report` reads record directories, on one core.
#
# One command, from the repository root or anywhere:   bench/report_speed.sh
#
#   1. builds llm_proxy + fake_upstream (Release, build-bench/) unless BENCH_SKIP_BUILD=1
#   2. starts the fake upstream and `llm_proxy dir_logger` on free 127.0.0.1 ports and sends,
#      with hey, BENCH_UNIQUE/2 non-streamed and BENCH_UNIQUE/2 streamed chat completions
#      (real records: headers, bodies, the llm object)
#   3. copies them into BENCH_COPIES directories (records = BENCH_UNIQUE × BENCH_COPIES), and a
#      second set with the llm object removed (records written before it existed: report
#      computes it from the bodies)
#   4. runs `taskset -c 0 llm_proxy report DIR --no-progress` BENCH_REPEATS times per set and
#      reports records per second of CPU time (user+sys, /usr/bin/time) and of wall time, medians
#      (CPU time is what one core can do; wall time also holds waiting for the disk and, on a
#      shared machine, for the core)
#
# Environment: BENCH_UNIQUE=4000 BENCH_COPIES=5 BENCH_REPEATS=5 BENCH_BUILD_DIR=build-bench
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UNIQUE="${BENCH_UNIQUE:-4000}"
COPIES="${BENCH_COPIES:-5}"
REPEATS="${BENCH_REPEATS:-5}"
BUILD="${BENCH_BUILD_DIR:-build-bench}"
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_script_setup report-bench llm_proxy_report_bench

for tool in hey taskset bc; do command -v "$tool" >/dev/null || die "$tool is missing (bench/run.sh installs hey)"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
build
make_certs
start_upstream

port="$(free_port)"
mkdir -p "$TMP/ca" "$TMP/records"
"$BUILD/llm_proxy" dir_logger -o "$TMP/records" --listen "127.0.0.1:$port" --ca_dir "$TMP/ca" \
    --upstream-ca "$TMP/pki/testca.pem" --threads 1 >"$TMP/proxy.log" 2>&1 &
PID[proxy]=$!
PIDS_TO_STOP+=("$!")
wait_port "$port" "${PID[proxy]}" proxy
cat "$TMP/pki/testca.pem" "$TMP/ca/mitmproxy-ca-cert.pem" >"$TMP/trust.pem"
half=$((UNIQUE / 2))
for body in '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}]}' \
    '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello in one word."}]}'; do
    SSL_CERT_FILE="$TMP/trust.pem" hey -n "$half" -c 10 -x "http://127.0.0.1:$port" -m POST \
        -T application/json -d "$body" "https://localhost:$UPORT/v1/chat/completions" >/dev/null
done
for ((i = 0; i < 100; i++)); do
    (($(find "$TMP/records" -name '*.json' | wc -l) >= UNIQUE)) && break
    sleep 0.1
done
kill "${PID[proxy]}"
n="$(find "$TMP/records" -name '*.json' | wc -l)"
log "$n records written"

mkdir -p "$TMP/with_llm" "$TMP/without_llm/0"
"$PY" - "$TMP/records" "$TMP/without_llm/0" <<'EOF'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
for name in os.listdir(src):
    with open(os.path.join(src, name)) as f:
        record = json.load(f)
    record.pop("llm", None)
    with open(os.path.join(dst, name), "w") as f:
        json.dump(record, f)
EOF
for ((c = 0; c < COPIES; ++c)); do
    cp -r "$TMP/records" "$TMP/with_llm/$c"
    ((c == 0)) || cp -r "$TMP/without_llm/0" "$TMP/without_llm/$c"
done
total=$((n * COPIES))

measure() {  # measure DIR -> "cpu_rate wall_rate" medians
    local dir="$1" r cpu=() wall=()
    cat "$(find "$dir" -name '*.json' | head -1)" >/dev/null
    find "$dir" -name '*.json' -exec cat {} + >/dev/null  # warm the page cache
    for ((r = 0; r < REPEATS; ++r)); do
        local out
        out="$(/usr/bin/time -f '%U %S %e' taskset -c 0 "$BUILD/llm_proxy" report "$dir" \
            --no-progress 2>&1 >/dev/null | tail -1)"
        read -r u s e <<<"$out"
        cpu+=("$(echo "$total / ($u + $s)" | bc)")
        wall+=("$(echo "$total / $e" | bc)")
    done
    local mc mw
    mc="$(printf '%s\n' "${cpu[@]}" | sort -n | sed -n "$(((REPEATS + 1) / 2))p")"
    mw="$(printf '%s\n' "${wall[@]}" | sort -n | sed -n "$(((REPEATS + 1) / 2))p")"
    echo "$mc $mw"
}

read -r c1 w1 <<<"$(measure "$TMP/with_llm")"
read -r c2 w2 <<<"$(measure "$TMP/without_llm")"
cat <<EOF
## llm_proxy report: records per second on one core

Run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $("$BUILD/llm_proxy" --version | head -1), git $(git rev-parse --short HEAD).
$total records per set ($n real records from dir_logger, half streamed, copied $COPIES times), $REPEATS runs each, medians; \`taskset -c 0\`, page cache warm.

| records | records/s of CPU time (user+sys) | records/s of wall time |
|---|---:|---:|
| with the llm object | $c1 | $w1 |
| without it (computed from the bodies) | $c2 | $w2 |
EOF

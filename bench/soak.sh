#!/usr/bin/env bash
# bench/soak.sh — soak test: one llm_proxy under a mixed load for SOAK_SECONDS (30 minutes by
# default), its RSS and descriptor count sampled every second, and a verdict on whether they
# stay flat after warm-up. Loopback only. Method, figures and chart: docs/reliability.md
# (section "Soak").
#
#   bench/soak.sh                                    # 30 minutes (+ the build, once)
#   SOAK_SECONDS=120 BENCH_SKIP_BUILD=1 bench/soak.sh  # a 2-minute look
#
# What runs:
#   * the fake upstream (TLS, a throwaway test CA; tests/support/fake_upstream_main.cpp)
#   * llm_proxy cache --cache-engine sqlite -o RECORDS: the response cache (sqlite file) AND a
#     record (JSON file) per request, with --connect-to :443:127.0.0.1:<upstream> (every host on
#     port 443 goes to the fake upstream), --ignore-hosts for one blind-tunnel name and
#     --log-tunnels
#   * for the whole duration, concurrently, each load in a loop of bounded runs (request count
#     AND time: hey -n with -q rate limits under `timeout`, curl --max-time):
#       keepalive_https_miss  hey -c 4 -q 20, CONNECT + MITM, Cache-Control: no-cache
#       keepalive_https_hit   hey -c 2 -q 20, the same request every time (cache HIT)
#       newconn_https_miss    hey -c 2 -q 4 -disable-keepalive (a TLS handshake per request)
#       keepalive_http_miss   hey -c 1 -q 20, plain http:// (upgraded to https upstream)
#       newconn_http_hit      hey -c 1 -q 5 -disable-keepalive, plain http://, cache HIT
#       blind_tunnel          hey -c 1 -q 5 -disable-keepalive via a blind tunnel
#       sse_*                 2 curl loops, streamed chat completions (20 events, 20 ms apart),
#                             alternately no-cache (MISS) and identical (HIT, replayed events)
#       upload_*              1 curl loop, 4 KiB .. 4 MiB of random bytes to /sink, chunked and
#                             Content-Length in turn, HTTPS and plain in turn; length checked
#       new_hosts             1 curl per second to h<i mod 200>.bench.test (leaf minting, cached)
#       err_*                 1 curl loop: refused port (plain and CONNECT), a host name that
#                             cannot resolve (plain and CONNECT; a 70-letter label that glibc
#                             refuses locally, so no DNS query leaves the machine), upstream
#                             resets mid-response (replayed SSE cut after 300 bytes; never
#                             to be served later as a cache HIT), client gives up mid-SSE,
#                             upstream 500 and 429, upstream too slow (504 after
#                             --upstream-timeout 5)
#       raw_*                 bench/soak_raw.py: malformed requests, abandoned heads, bodies
#                             cut short, junk inside a CONNECT tunnel, a cut TLS ClientHello
#   * every SOAK_RECORD_EVERY s, the records older than SOAK_RECORD_KEEP s are counted and
#     deleted (the disk does not fill); the total written = deleted + left at the end
#   * bench/soak_report.py sample: every SOAK_SAMPLE s the proxy's VmRSS, VmHWM, descriptors
#     (by kind), threads, CPU seconds, files in the records directory, cache bytes
#   * at the end: one request and one cache hit through the proxy (it must still answer), the
#     fake upstream's /stats, SIGTERM and the proxy's exit status; then the report
#     (bench/results/<name>.md), the samples (bench/results/<name>_samples.tsv) and the chart
#     (gnuplot, bench/soak_chart.gp)
#
# "Flat": with W = SOAK_WINDOW (default min(300, SOAK_SECONDS/6)), the first W s are warm-up,
# the reference is the median of [W, 2W) and the end the median of the last W s; a metric is
# FLAT when end <= 1.10 x reference + 2 MiB (RSS) / + 8 (descriptors) / + 0 (threads),
# GROWING otherwise. Printed, not asserted: the script exits 0 either way unless the proxy
# died or stopped answering. The warm-up takes about 4 minutes (the first round of the 200
# new host names, each leaving an idle upstream connection for 30 s), so the verdict means
# something only when W >= 240 s, i.e. SOAK_SECONDS >= 1440; shorter runs check the script.
#
# Environment:
#   SOAK_SECONDS=1800      load duration
#   SOAK_SAMPLE=1          sampling interval (s)
#   SOAK_WINDOW=           window W (s), default min(300, SOAK_SECONDS/6)
#   SOAK_RECORD_KEEP=60    records older than this (s) are deleted ...
#   SOAK_RECORD_EVERY=10   ... every this many seconds
#   SOAK_NICE=5            niceness of the load generators (the proxy and upstream run at 0)
#   SOAK_RESULTS_NAME=soak bench/results/<name>.md and <name>_samples.tsv
#   SOAK_CHART=docs/soak.png
#   SOAK_PROXY_ARGS=       extra llm_proxy arguments (e.g. "--threads 1")
#   SOAK_SHARED="..."      a note on the machine for the report (default: shared with other jobs)
#   BENCH_BUILD_DIR=build-bench  BENCH_SKIP_BUILD=1 (reuse it)  BENCH_KEEP_TMP=1 (keep the temp dir)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_TOTAL="${SOAK_SECONDS:-1800}"
SAMPLE="${SOAK_SAMPLE:-1}"
WINDOW="${SOAK_WINDOW:-$(( SECONDS_TOTAL / 6 < 300 ? SECONDS_TOTAL / 6 : 300 ))}"
REC_KEEP="${SOAK_RECORD_KEEP:-60}"
REC_EVERY="${SOAK_RECORD_EVERY:-10}"
NICE="${SOAK_NICE:-5}"
RESULTS_NAME="${SOAK_RESULTS_NAME:-soak}"
CHART="${SOAK_CHART:-docs/soak.png}"
read -r -a EXTRA_PROXY_ARGS <<<"${SOAK_PROXY_ARGS:-}"
PY=/usr/bin/python3
BUILD="${BENCH_BUILD_DIR:-build-bench}"
UPSTREAM_TIMEOUT=5
((SECONDS_TOTAL >= 60)) || { echo "soak: SOAK_SECONDS must be at least 60" >&2; exit 2; }

log() { printf '[soak %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
source "$ROOT/bench/lib.sh"

for tool in hey curl gnuplot openssl "$PY"; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install hey curl gnuplot-nox openssl python3)"
done

TMP="$(mktemp -d /tmp/llm_proxy_soak.XXXXXX)"
declare -A PID=()
PIDS_TO_STOP=()
LOOPS=()

cleanup() {
    local p
    for p in "${LOOPS[@]}"; do
        pkill -TERM -P "$p" 2>/dev/null || true  # the loop's current hey/curl
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS_TO_STOP[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ "${BENCH_KEEP_TMP:-0}" == 1 ]]; then
        log "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- set-up
build
make_certs
mkdir -p "$TMP/replay/cut" "$TMP/counts" "$TMP/records" "$TMP/cache" "$TMP/ca_llm" "$TMP/work"
# A recorded SSE answer for the "upstream resets mid-response" case (X-Fake-Replay-Cut).
{
    for i in $(seq 1 40); do
        printf 'data: {"id":"chatcmpl-cut","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"word%s "}}]}\n\n' "$i"
    done
    printf 'data: [DONE]\n\n'
} >"$TMP/replay/cut/response.bin"
echo '{"status":200,"content_type":"text/event-stream"}' >"$TMP/replay/cut/meta.json"

UPSTREAM_THREADS=2 start_upstream --replay-dir "$TMP/replay"

PPORT="$(free_port)"
REFUSED_PORT="$(free_port)"  # nothing listens there (a race with another process is harmless)
BADHOST="$(printf 'a%.0s' $(seq 1 70)).invalid"  # a label over 63 bytes: glibc fails it locally
REC="$TMP/records"
PROXY_CMD=("$BUILD/llm_proxy" cache --cache-engine sqlite --cache-dir "$TMP/cache" -o "$REC"
    --listen "127.0.0.1:$PPORT" --ca_dir "$TMP/ca_llm" --upstream-ca "$TMP/pki/testca.pem"
    --connect-to ":443:127.0.0.1:$UPORT" --ignore-hosts '^tunnel\.bench\.test' --log-tunnels
    --upstream-timeout "$UPSTREAM_TIMEOUT" "${EXTRA_PROXY_ARGS[@]}")
"${PROXY_CMD[@]}" >"$TMP/proxy.log" 2>&1 &
PID[proxy]=$!
PIDS_TO_STOP+=("$!")
wait_port "$PPORT" "${PID[proxy]}" proxy
log "llm_proxy pid ${PID[proxy]} on 127.0.0.1:$PPORT"

TRUST="$TMP/trust.pem"
cat "$TMP/pki/testca.pem" "$TMP/ca_llm/mitmproxy-ca-cert.pem" >"$TRUST"
PROXY="http://127.0.0.1:$PPORT"
MISS_BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"soak: keep-alive, no-cache"}]}'
HIT_BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"soak: the cached one"}]}'
HTTP_HIT_BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"soak: plain http, cached"}]}'
SSE_BODY='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"soak: stream"}]}'
CUT_BODY='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"soak: cut"}]}'
CHAT="https://api.openai.com/v1/chat/completions"
CHAT_HTTP="http://api.openai.com/v1/chat/completions"

# Sanity before the clock starts: one MITM request, one plain, one cache fill.
pcurl() { timeout 30 nice -n "$NICE" curl -s --max-time 20 --cacert "$TRUST" -x "$PROXY" "$@"; }
code="$(pcurl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$MISS_BODY" "$CHAT" || true)"
[[ "$code" == 200 ]] || die "sanity request through the proxy answered '$code' (see $TMP/proxy.log)"
code="$(pcurl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$HTTP_HIT_BODY" "$CHAT_HTTP" || true)"
[[ "$code" == 200 ]] || die "sanity plain-http request answered '$code'"
pcurl -o /dev/null -H 'Content-Type: application/json' -d "$HIT_BODY" "$CHAT" || true

START="$(date +%s)"
END=$((START + SECONDS_TOTAL))
log "load for ${SECONDS_TOTAL} s, until $(date -u -d "@$END" +%H:%M:%S) UTC; window ${WINDOW} s"

# ---------------------------------------------------------------- loads
# Every loop appends "kind<TAB>outcome<TAB>count" lines to its own file in $TMP/counts.
now() { date +%s; }

# hey_loop KIND CONC QPS URL [hey flags...]: runs of at most 30 s (n = c*q*30) until END.
hey_loop() {
    set +e
    local kind="$1" c="$2" q="$3" url="$4"
    shift 4
    local out="$TMP/work/hey_$kind.txt" left n
    while left=$((END - $(now))); ((left > 2)); do
        ((left > 30)) && left=30
        n=$((c * q * left))
        timeout $((left * 3 + 30)) nice -n "$NICE" hey -n "$n" -c "$c" -q "$q" -t 30 -x "$PROXY" \
            -m POST -T application/json "$@" "$url" >"$out" 2>&1
        awk -v k="$kind" '
            /^Status code distribution:/ { s = 1; e = 0; next }
            /^Error distribution:/ { e = 1; s = 0; next }
            s && $1 ~ /^\[[0-9]+\]$/ { gsub(/[][]/, "", $1); print k "\t" $1 "\t" $2; next }
            e && $1 ~ /^\[[0-9]+\]$/ {
                n = $1; gsub(/[][]/, "", n); $1 = ""; m = $0; sub(/.*: /, "", m); gsub(/[ \t]+/, "_", m)
                print k "\they:" m "\t" n
            }' "$out" >>"$TMP/counts/$kind.tsv"
    done
}

# one_curl KIND [curl args...]: one request, one counter line; the outcome is the status code,
# or curlN when curl failed (exit code N). Extra checks append a suffix via $SUFFIX_FN.
one_curl() {
    local kind="$1" rc code
    shift
    code="$(timeout 60 nice -n "$NICE" curl -s --max-time 20 --cacert "$TRUST" -x "$PROXY" \
        -o "$TMP/work/$kind.body" -D "$TMP/work/$kind.head" -w '%{http_code}' "$@" 2>/dev/null)"
    rc=$?
    if ((rc != 0)); then code="curl$rc"; fi
    printf '%s\t%s\t1\n' "$kind" "$code" >>"$TMP/counts/$kind.tsv"
}

cache_header() { awk 'tolower($1)=="x-llm_proxy-cache:"{v=$2} END{gsub("\r","",v); print v}' "$1" 2>/dev/null; }

sse_loop() {  # sse_loop ID
    set +e
    local i=0 kind hdr code rc events cache
    while (($(now) < END)); do
        i=$((i + 1))
        hdr=()
        ((i % 2)) && hdr=(-H 'Cache-Control: no-cache')
        code="$(timeout 60 nice -n "$NICE" curl -sN --max-time 20 --cacert "$TRUST" -x "$PROXY" \
            -H 'Content-Type: application/json' -H 'X-Fake-Events: 20' -H 'X-Fake-Interval-Ms: 20' \
            "${hdr[@]}" -d "$SSE_BODY" -o "$TMP/work/sse$1.body" -D "$TMP/work/sse$1.head" \
            -w '%{http_code}' "$CHAT" 2>/dev/null)"
        rc=$?
        ((rc != 0)) && code="curl$rc"
        cache="$(cache_header "$TMP/work/sse$1.head")"
        events="$(grep -c '^data:' "$TMP/work/sse$1.body" 2>/dev/null)"
        [[ "$events" == "$SSE_EVENTS" ]] || code="${code}_events${events:-0}"
        printf 'sse_%s\t%s\t1\n' "${cache:-nocache}" "$code" >>"$TMP/counts/sse$1.tsv"
    done
}

upload_loop() {
    set +e
    local i=0 size kind code rc len url framing
    local f="$TMP/work/upload.bin"
    while (($(now) < END)); do
        i=$((i + 1))
        size=$(( (4096 << (RANDOM % 11)) + RANDOM ))  # 4 KiB .. 4 MiB, log-uniform
        head -c "$size" /dev/urandom >"$f"
        framing=(); kind=upload_cl
        if ((i % 2)); then framing=(-H 'Transfer-Encoding: chunked'); kind=upload_chunked; fi
        url="https://api.openai.com/sink"
        if (((i / 2) % 2)); then url="http://api.openai.com/sink"; kind="${kind}_http"; fi
        code="$(timeout 60 nice -n "$NICE" curl -s --max-time 30 --cacert "$TRUST" -x "$PROXY" \
            -H 'Content-Type: application/octet-stream' "${framing[@]}" --data-binary "@$f" \
            -o "$TMP/work/upload.out" -w '%{http_code}' "$url" 2>/dev/null)"
        rc=$?
        ((rc != 0)) && code="curl$rc"
        len="$(grep -o '"body_length":[0-9]*' "$TMP/work/upload.out" 2>/dev/null | cut -d: -f2)"
        [[ "$code" != 200 || "$len" == "$size" ]] || code="${code}_length_mismatch"
        printf '%s\t%s\t1\n' "$kind" "$code" >>"$TMP/counts/upload.tsv"
        echo "$size" >>"$TMP/upload_bytes.txt"
        sleep 0.2
    done
}

new_hosts_loop() {
    set +e
    local i=0
    while (($(now) < END)); do
        one_curl new_hosts "https://h$((i % 200)).bench.test/v1/models"
        i=$((i + 1))
        sleep 1
    done
}

error_loop() {
    set +e
    local code rc cache
    while (($(now) < END)); do
        one_curl err_refused_http "http://127.0.0.1:$REFUSED_PORT/v1/models"
        one_curl err_refused_connect "https://127.0.0.1:$REFUSED_PORT/v1/models"
        one_curl err_unresolvable_http "http://$BADHOST:8080/v1/models"
        one_curl err_unresolvable_connect "https://$BADHOST:8443/v1/models"
        # The upstream resets after 300 bytes of an SSE answer; the same request again later
        # must not be a cache HIT (a cut answer is not stored).
        one_curl err_upstream_reset -H 'Content-Type: application/json' -H 'X-Fake-Replay: cut' \
            -H 'X-Fake-Replay-Cut: 300' -d "$CUT_BODY" "$CHAT?soak=cut"
        cache="$(cache_header "$TMP/work/err_upstream_reset.head")"
        [[ "$cache" == HIT ]] && printf 'cut_served_as_hit\tHIT\t1\n' >>"$TMP/counts/err_cut_hit.tsv"
        one_curl err_client_gives_up --max-time 1 "https://api.openai.com/sse-forever?interval_ms=50"
        one_curl err_upstream_500 "https://api.openai.com/status/500"
        one_curl err_upstream_429 "http://api.openai.com/status/429"
        one_curl err_upstream_timeout "https://api.openai.com/slow?ms=$(( (UPSTREAM_TIMEOUT + 2) * 1000 ))"
        sleep 0.5
    done
}

records_loop() {  # delete records older than REC_KEEP s every REC_EVERY s, counting them
    set +e
    local n
    while (($(now) < END)); do
        sleep "$REC_EVERY"
        n="$(find "$REC" -maxdepth 1 -type f -name '*.json' ! -newermt "@$(($(now) - REC_KEEP))" \
            -print -delete 2>/dev/null | wc -l)"
        printf 'records\tdeleted\t%s\n' "$n" >>"$TMP/records_deleted.tsv"
    done
}

# The proxy's answer to this is counted from the first SSE request.
SSE_EVENTS="$(curl -sN --max-time 20 --cacert "$TRUST" -x "$PROXY" -H 'Content-Type: application/json' \
    -H 'X-Fake-Events: 20' -H 'X-Fake-Interval-Ms: 20' -H 'Cache-Control: no-store' -d "$SSE_BODY" "$CHAT" |
    grep -c '^data:' || true)"
log "an SSE answer has $SSE_EVENTS data lines"

"$PY" bench/soak_report.py sample --pid "${PID[proxy]}" --upstream-pid "${PID[upstream]}" \
    --out "$TMP/samples.tsv" --interval "$SAMPLE" --until "$END" --t0 "$START" \
    --records-dir "$REC" --cache-dir "$TMP/cache" &
SAMPLER=$!
PIDS_TO_STOP+=("$SAMPLER")

start_loop() { "$@" & LOOPS+=("$!"); }
start_loop hey_loop keepalive_https_miss 4 20 "$CHAT" -d "$MISS_BODY" -H 'Cache-Control: no-cache'
start_loop hey_loop keepalive_https_hit 2 20 "$CHAT" -d "$HIT_BODY"
start_loop hey_loop newconn_https_miss 2 4 "$CHAT" -d "$MISS_BODY" -H 'Cache-Control: no-cache' -disable-keepalive
start_loop hey_loop keepalive_http_miss 1 20 "$CHAT_HTTP" -d "$MISS_BODY" -H 'Cache-Control: no-cache'
start_loop hey_loop newconn_http_hit 1 5 "$CHAT_HTTP" -d "$HTTP_HIT_BODY" -disable-keepalive
start_loop hey_loop blind_tunnel 1 5 "https://tunnel.bench.test/v1/chat/completions" -d "$MISS_BODY" -disable-keepalive
start_loop sse_loop 1
start_loop sse_loop 2
start_loop upload_loop
start_loop new_hosts_loop
start_loop error_loop
start_loop records_loop
start_loop timeout $((SECONDS_TOTAL + 60)) nice -n "$NICE" "$PY" bench/soak_raw.py --port "$PPORT" \
    --until "$END" --interval 0.3 --timeout 10 >"$TMP/counts/raw.tsv"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- wait, then check
wait "$SAMPLER" || die "the sampler stopped early: the proxy died? (see $TMP/proxy.log)"
log "load time over; waiting for the last runs to finish"
for p in "${LOOPS[@]}"; do wait "$p" || true; done
LOOPS=()
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
kill -0 "${PID[proxy]}" 2>/dev/null || die "the proxy is not running any more"

final="$(pcurl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$MISS_BODY" "$CHAT" || true)"
final_hit="$(pcurl -o /dev/null -D - -H 'Content-Type: application/json' -d "$HIT_BODY" "$CHAT" |
    awk 'tolower($1)=="x-llm_proxy-cache:"{v=$2} END{gsub("\r","",v); print v}' || true)"
curl -s --max-time 10 --cacert "$TMP/pki/testca.pem" -o "$TMP/upstream_stats.json" \
    "https://localhost:$UPORT/stats" || true
left="$(find "$REC" -maxdepth 1 -type f -name '*.json' | wc -l)"
deleted="$(awk '{s += $3} END{print s + 0}' "$TMP/records_deleted.tsv" 2>/dev/null || echo 0)"
fd_end="$(ls "/proc/${PID[proxy]}/fd" | wc -l)"
cp "$TMP/samples.tsv" "$TMP/samples_final.tsv"

# SIGTERM: the proxy must exit by itself within its shutdown grace (+ margin).
t0="$(date +%s.%N)"
kill -TERM "${PID[proxy]}"
rc=0
timeout 40 tail --pid="${PID[proxy]}" -f /dev/null || true
wait "${PID[proxy]}" || rc=$?
shutdown="$(awk -v a="$t0" -v b="$(date +%s.%N)" -v rc="$rc" 'BEGIN{printf "exit status %d after %.2f s", rc, b - a}')"
log "proxy: $shutdown"

# ---------------------------------------------------------------- report
mkdir -p bench/results "$(dirname "$CHART")"
FACTS="$TMP/facts.txt"
thousands() { "$PY" -c 'import sys; print(f"{int(sys.argv[1]):,}")' "$1"; }
py_stat() {  # py_stat KEY: a figure of the fake upstream's /stats (a large JSON: read from the file)
    "$PY" -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2], "?"); print(format(v, ",") if isinstance(v, int) else v)' \
        "$TMP/upstream_stats.json" "$1" 2>/dev/null || echo '?'
}
{
    echo "date_utc=$(date -u -d "@$START" +%Y-%m-%dT%H:%M:%SZ)"
    echo "duration_s=$SECONDS_TOTAL"
    echo "sample_s=$SAMPLE"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
    echo "mem=$(awk '/^MemTotal:/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "shared=${SOAK_SHARED:-the machine was shared with other jobs (builds, tests) during the run}"
    echo "load_start=$LOAD_START"
    echo "load_end=$LOAD_END"
    echo "version=$("$BUILD/llm_proxy" --version 2>&1 | head -1)"
    echo "git=$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src include 2>/dev/null || echo ' + uncommitted changes')"
    echo "build=$(awk -F= '/^CMAKE_BUILD_TYPE:/{print $2}' "$BUILD/CMakeCache.txt" 2>/dev/null)"
    echo "hey=$(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?')"
    echo "curl=$(curl --version | awk 'NR==1{print $2}')"
    echo "command=SOAK_SECONDS=$SECONDS_TOTAL SOAK_SAMPLE=$SAMPLE bench/soak.sh"
    echo "proxy_cmd=$(printf '%q ' "${PROXY_CMD[@]}" | sed "s|$TMP|TMP|g; s|$ROOT/||g")"
    echo "records_written=$(thousands $((deleted + left)))"
    echo "records_deleted=$(thousands "$deleted") (kept ${REC_KEEP} s, swept every ${REC_EVERY} s)"
    echo "records_left=$left"
    echo "upstream_requests=$(py_stat requests)"
    echo "upstream_connections=$(py_stat connections)"
    echo "upstream_incomplete=$(py_stat incomplete_bodies)"
    echo "upstream_open=$(py_stat open_connections)"
    echo "upload_bytes=$(awk '{s += $1} END{printf "%.0f MiB in %d uploads", s / 1048576, NR}' "$TMP/upload_bytes.txt" 2>/dev/null)"
    echo "cut_hits=$(awk '{s += $3} END{print s + 0}' "$TMP/counts/err_cut_hit.tsv" 2>/dev/null || echo 0)"
    echo "final_check=$final (descriptors then: $fd_end)"
    echo "final_hit=${final_hit:-none}"
    echo "shutdown=$shutdown"
    echo "proxy_log_lines=$(wc -l <"$TMP/proxy.log")"
    # Lines are "<timestamp> <level> <message>": the messages, numbers and paths masked.
    echo "proxy_log_top=$(cut -d' ' -f2- "$TMP/proxy.log" | sed -E "s|$TMP|TMP|g; s/[0-9]+/N/g" | sort | uniq -c | sort -rn | head -5 |
        awk '{c=$1; $1=""; printf "%s`%s` ×%s", (NR>1?"; ":""), substr($0,2,100), c}')"
} >"$FACTS"
cat "$TMP"/counts/*.tsv >"$TMP/counts_all.tsv"
R="bench/results/$RESULTS_NAME"
"$PY" bench/soak_report.py report --samples "$TMP/samples_final.tsv" --counts "$TMP/counts_all.tsv" \
    --facts "$FACTS" --window "$WINDOW" --out "$R.md" | tee "$TMP/verdict.txt" >&2
cp "$TMP/samples_final.tsv" "${R}_samples.tsv"
gnuplot -e "datafile='${R}_samples.tsv'; outfile='$CHART'; warmup=$WINDOW; titletext='llm_proxy soak: ${SECONDS_TOTAL} s of mixed load (bench/soak.sh), $(date -u -d "@$START" +%Y-%m-%d)'" \
    bench/soak_chart.gp
cat "$R.md"
log "done: $R.md, ${R}_samples.tsv, $CHART"
[[ "$final" == 200 && "$rc" == 0 ]] || { log "WARNING: the final request answered '$final' or the proxy exited with $rc"; exit 1; }

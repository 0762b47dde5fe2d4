#!/usr/bin/env bash
# bench/run.sh — reproducible loopback benchmark: llm_proxy vs mitmdump (mitmproxy 8.x) vs tinyproxy.
#
# One command, from the repository root or anywhere:   bench/run.sh
#
# What it does (see docs/benchmarks.md for the method and the numbers of a real run):
#   1. apt-get installs what is missing (hey mitmproxy tinyproxy jq gnuplot-nox time python3-httpx curl)
#   2. builds llm_proxy + fake_upstream, Release, in build-bench/
#   3. makes a throwaway test CA and a server certificate (SAN localhost, api.openai.com,
#      127.0.0.1) with the openssl CLI in a temp dir
#   4. starts the fake upstream and every proxy under test on free loopback ports
#   5. runs the scenarios BENCH_REPEATS times, interleaving the proxies, and writes the medians
#      as markdown to stdout and bench/results/latest.md, plus docs/benchmarks.png (gnuplot)
#
# Naming scheme (one for every target): the client always asks for
#   https://localhost:<fake-upstream-port>/v1/chat/completions
# directly or through a proxy (hey -x http://127.0.0.1:<proxy-port>). "localhost" resolves to
# 127.0.0.1 everywhere (/etc/hosts) and the upstream certificate carries DNS:localhost, so the
# proxies verify the upstream against the test CA without --connect-to or /etc/hosts edits.
#
# Environment (defaults keep the whole run under ~10 minutes on 2 cores):
#   BENCH_N=2000            requests per keep-alive run (scenario A, G)
#   BENCH_N_NEWCONN=500     requests per new-connection-per-request run (scenario B)
#   BENCH_SCALE=1           multiplies BENCH_N and BENCH_N_NEWCONN (e.g. 5 for a longer run)
#   BENCH_REPEATS=3         repeats per run; the report shows medians
#   BENCH_CONC="1 10 50"    concurrency levels for scenario A
#   BENCH_B_CONC=10         concurrency for scenario B
#   BENCH_TARGETS="direct tinyproxy llm_simple llm_dirlog llm_dirlog_tmpfs mitmdump"
#                           llm_dirlog writes its records under the temp dir in /tmp (the disk),
#                           llm_dirlog_tmpfs the same into /dev/shm (tmpfs): the difference is
#                           what the file system costs per record. Opt-in: llm_tunnel is
#                           llm_proxy simple with --ignore-hosts . (every CONNECT a blind
#                           tunnel, like tinyproxy's HTTPS path), e.g.
#                           BENCH_TARGETS="direct tinyproxy llm_tunnel llm_simple"
#   BENCH_RECORDS_DIR=DIR   where llm_dirlog writes its records (default: the temp dir in /tmp),
#                           e.g. a mount of the file system you will log to
#   BENCH_SSE=1             scenario C (SSE latency with /usr/bin/python3 + httpx); 0 skips it
#   BENCH_SSE_STREAMS=10 BENCH_SSE_EVENTS=20 BENCH_SSE_INTERVAL_MS=10
#   BENCH_TUNNELS=1         scenarios D (idle intercepted connections: RSS per connection) and F
#                           (first connection to new host names: leaf minting); 0 skips them.
#                           D runs on every target but direct; llm_tunnel and tinyproxy hold
#                           idle blind tunnels instead (tunnels.py idle --blind; tinyproxy at
#                           most 200, its MaxClients is 256)
#   BENCH_F=1               scenario F when BENCH_TUNNELS=1; 0 runs D alone
#   BENCH_D_IDLE=1000 BENCH_F_HOSTS=1000   their sizes (bench/tunnels.py)
#   BENCH_D_REPEATS=1       repeats of scenario D (each on freshly started processes)
#   BENCH_E=1               scenario E (one large download per target and repeat, curl); 0 skips it
#   BENCH_E_BYTES=67108864  size of that download (64 MiB; mitmdump 8 buffers it and needs
#                           ~50 s for 100 MiB here, so the planned 1 GiB is opt-in:
#                           BENCH_E_BYTES=1073741824 BENCH_E_TARGETS="direct tinyproxy llm_simple llm_dirlog")
#   BENCH_E_REPEATS=3       repeats of scenario E
#   BENCH_E_TARGETS=...     targets of scenario E (default: BENCH_TARGETS)
#   BENCH_U=1               scenario U (chunked uploads, curl --data-binary with
#                           Transfer-Encoding: chunked to the fake upstream's /sink, which must
#                           report the file's exact length and sha256); 0 skips it
#   BENCH_U_SIZES="1048576 20971520"  upload sizes in bytes (1 and 20 MiB; random payloads
#                           made once per run from /dev/urandom)
#   BENCH_U_REPEATS=3       repeats of scenario U
#   BENCH_U_TARGETS=...     targets of scenario U (default: BENCH_TARGETS; as for E, without
#                           llm_dirlog_tmpfs)
#   BENCH_AB=1              scenarios A, B, G (hey); 0 skips them (and the chart)
#   BENCH_RESULTS_NAME=latest  results go to bench/results/<name>.md (+ <name>_*.tsv: _runs,
#                           _sse, _download, _upload, _tunnels.jsonl)
#   BENCH_CHART=docs/benchmarks.png  where the chart goes
#   BENCH_RUN_TIMEOUT=120   seconds; hard cap on each load-generator run
#   BENCH_BEFORE_BIN=PATH   an llm_proxy binary of an earlier version: target llm_before runs it
#                           as `simple`, like llm_simple, for a before/after table in the same run
#                           (e.g. BENCH_TARGETS="llm_before llm_simple" BENCH_CONC=10); target
#                           llm_tunnel_before runs it as llm_tunnel (every CONNECT blind)
#   BENCH_SKIP_INSTALL=1    do not call apt-get
#   BENCH_SKIP_BUILD=1      reuse build-bench/ as it is
#   BENCH_BUILD_DIR=DIR     build directory (default build-bench)
#   BENCH_KEEP_TMP=1        keep the temp dir (certificates, logs, raw hey output)
#
# Everything runs under `nice -n 19` (the script re-executes itself that way) and on 127.0.0.1.
set -euo pipefail

if [[ "${BENCH_NICED:-0}" != 1 ]]; then
    export BENCH_NICED=1
    exec nice -n 19 "$0" "$@"
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SCALE="${BENCH_SCALE:-1}"
N=$(( ${BENCH_N:-2000} * SCALE ))
N_NEWCONN=$(( ${BENCH_N_NEWCONN:-500} * SCALE ))
REPEATS="${BENCH_REPEATS:-3}"
CONC="${BENCH_CONC:-1 10 50}"
B_CONC="${BENCH_B_CONC:-10}"
TARGETS="${BENCH_TARGETS:-direct tinyproxy llm_simple llm_dirlog llm_dirlog_tmpfs mitmdump}"
RUN_TIMEOUT="${BENCH_RUN_TIMEOUT:-120}"
SSE="${BENCH_SSE:-1}"
SSE_STREAMS="${BENCH_SSE_STREAMS:-10}"
SSE_EVENTS="${BENCH_SSE_EVENTS:-20}"
SSE_INTERVAL_MS="${BENCH_SSE_INTERVAL_MS:-10}"
AB="${BENCH_AB:-1}"
RESULTS_NAME="${BENCH_RESULTS_NAME:-latest}"
CHART="${BENCH_CHART:-$ROOT/docs/benchmarks.png}"
E="${BENCH_E:-1}"
TUNNELS="${BENCH_TUNNELS:-1}"
D_IDLE="${BENCH_D_IDLE:-1000}"
F_HOSTS="${BENCH_F_HOSTS:-1000}"
F="${BENCH_F:-1}"
D_REPEATS="${BENCH_D_REPEATS:-1}"
E_BYTES="${BENCH_E_BYTES:-67108864}"
E_REPEATS="${BENCH_E_REPEATS:-3}"
E_TARGETS="${BENCH_E_TARGETS:-${TARGETS/llm_dirlog_tmpfs/}}"  # the tmpfs variant only matters for G
U="${BENCH_U:-1}"
U_SIZES="${BENCH_U_SIZES:-1048576 20971520}"
U_REPEATS="${BENCH_U_REPEATS:-3}"
U_TARGETS="${BENCH_U_TARGETS:-${TARGETS/llm_dirlog_tmpfs/}}"
BEFORE_BIN="${BENCH_BEFORE_BIN:-}"
if [[ " $TARGETS " == *" llm_before "* || " $TARGETS " == *" llm_tunnel_before "* ]] && [[ ! -x "$BEFORE_BIN" ]]; then
    echo "bench: targets llm_before and llm_tunnel_before need BENCH_BEFORE_BIN=<an llm_proxy binary>" >&2
    exit 2
fi
PY=/usr/bin/python3
BUILD="${BENCH_BUILD_DIR:-build-bench}"
BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}]}'
CLK_TCK="$(getconf CLK_TCK)"

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Shared helpers: build, free_port, wait_port, cpu_ticks, hwm_kb, rss_kb, make_certs,
# start_upstream.
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- 1. dependencies
install_deps() {
    local missing=()
    command -v hey >/dev/null || missing+=(hey)
    command -v mitmdump >/dev/null || missing+=(mitmproxy)
    command -v tinyproxy >/dev/null || missing+=(tinyproxy)
    command -v jq >/dev/null || missing+=(jq)
    command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v cmake >/dev/null || missing+=(cmake)
    command -v curl >/dev/null || missing+=(curl)
    command -v ninja >/dev/null || missing+=(ninja-build)
    [[ -x "$PY" ]] && "$PY" -c 'import httpx' 2>/dev/null || missing+=(python3 python3-httpx)
    if ((${#missing[@]})); then
        [[ "${BENCH_SKIP_INSTALL:-0}" == 1 ]] && die "missing: ${missing[*]} (BENCH_SKIP_INSTALL=1)"
        local sudo=()
        [[ "$(id -u)" != 0 ]] && sudo=(sudo)
        log "apt-get install ${missing[*]}"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
            { "${sudo[@]}" apt-get update -q >&2 &&
              "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
    fi
}

# ---------------------------------------------------------------- helpers

declare -A PORT PID RECDIR
PIDS_TO_STOP=()

cleanup() {
    local p
    for p in "${PIDS_TO_STOP[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    local i
    for ((i = 0; i < 50; i++)); do
        local alive=0
        for p in "${PIDS_TO_STOP[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${PIDS_TO_STOP[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [[ "${BENCH_KEEP_TMP:-0}" == 1 ]]; then
        log "temp dir kept: $TMP ${SHM_TMP:-} ${REC_TMP:-}"
    else
        rm -rf "$TMP" ${SHM_TMP:+"$SHM_TMP"} ${REC_TMP:+"$REC_TMP"}
    fi
}

# ---------------------------------------------------------------- 4. processes

start_target() {  # start_target NAME
    local name="$1" port
    [[ "$name" == direct ]] && return 0
    port="$(free_port)"
    case "$name" in
    llm_simple | llm_dirlog | llm_dirlog_tmpfs | llm_before | llm_tunnel | llm_tunnel_before)
        local sub=(simple) bin="$BUILD/llm_proxy" filter=()
        [[ "$name" == llm_before || "$name" == llm_tunnel_before ]] && bin="$BEFORE_BIN"
        # Every host ignored: each CONNECT is relayed blind (no leaf minted, no record).
        [[ "$name" == llm_tunnel || "$name" == llm_tunnel_before ]] && filter=(--ignore-hosts .)
        # Records stay until the end of the run: deleting thousands of files between runs would
        # slow the next run's file creation (ext4 without a journal, as here, skips inodes
        # deleted in the last minutes when it allocates new ones).
        if [[ "$name" == llm_dirlog ]]; then
            if [[ -n "${BENCH_RECORDS_DIR:-}" && -z "${REC_TMP:-}" ]]; then
                REC_TMP="$(mktemp -d "$BENCH_RECORDS_DIR/llm_proxy_bench.XXXXXX")"
            fi
            RECDIR[$name]="${REC_TMP:-$TMP}/dirlog_out"
        elif [[ "$name" == llm_dirlog_tmpfs ]]; then
            [[ -n "${SHM_TMP:-}" ]] || SHM_TMP="$(mktemp -d /dev/shm/llm_proxy_bench.XXXXXX)"
            RECDIR[$name]="$SHM_TMP/dirlog_out"
        fi
        [[ -n "${RECDIR[$name]:-}" ]] && sub=(dir_logger -o "${RECDIR[$name]}")
        mkdir -p "$TMP/ca_llm"
        "$bin" "${sub[@]}" --listen "127.0.0.1:$port" --ca_dir "$TMP/ca_llm" \
            --upstream-ca "$TMP/pki/testca.pem" \
            --connect-to "api.openai.com:443:127.0.0.1:$UPORT" \
            --connect-to "::127.0.0.1:$UPORT" --threads 1 "${filter[@]}" \
            >"$TMP/$name.log" 2>&1 &
        ;;
    mitmdump | mitmdump_stream)
        # mitmdump_stream (scenario C only): --set stream_large_bodies=1 makes mitmproxy relay
        # bodies as they arrive instead of buffering the whole response (its default).
        local extra=()
        [[ "$name" == mitmdump_stream ]] && extra=(--set stream_large_bodies=1)
        mkdir -p "$TMP/ca_mitm"
        mitmdump --listen-host 127.0.0.1 --listen-port "$port" --set "confdir=$TMP/ca_mitm" \
            --set "ssl_verify_upstream_trusted_ca=$TMP/pki/testca.pem" "${extra[@]}" -q \
            >"$TMP/$name.log" 2>&1 &
        ;;
    tinyproxy)
        cat >"$TMP/tinyproxy.conf" <<EOF
Port $port
Listen 127.0.0.1
Timeout 600
MaxClients 256
Allow 127.0.0.1
LogLevel Critical
DisableViaHeader Yes
EOF
        # No ConnectPort line: CONNECT is allowed to every port (the upstream's is ephemeral).
        tinyproxy -d -c "$TMP/tinyproxy.conf" >"$TMP/$name.log" 2>&1 &
        ;;
    *) die "unknown target $name" ;;
    esac
    PID[$name]=$!
    PORT[$name]=$port
    PIDS_TO_STOP+=("$!")
    wait_port "$port" "$!" "$name"
    log "$name pid ${PID[$name]} on 127.0.0.1:$port"
}

# ---------------------------------------------------------------- 5. one load run
describe_fs() {  # describe_fs DIR -> "ext4 on /dev/vda (no journal), mounted at /"
    local src fstype target journal=""
    read -r src fstype target < <(findmnt -n -o SOURCE,FSTYPE,TARGET -T "$1")
    if [[ "$fstype" == ext4 ]]; then
        if compgen -G "/proc/fs/jbd2/$(basename "$src")-*" >/dev/null; then
            journal=" (with journal)"
        else
            journal=" (no journal)"
        fi
    fi
    echo "$fstype on $src$journal, mounted at $target"
}

count_records() {  # count_records TARGET -> number of finished records in its directory
    find "${RECDIR[$1]}" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l
}

wait_records() {  # wait_records TARGET COUNT: until COUNT records exist, at most 10 s
    local i
    for ((i = 0; i < 200; i++)); do
        (($(count_records "$1") >= $2)) && return 0
        sleep 0.05
    done
    return 0
}

# run_hey REP SCENARIO CONC TARGET N [extra hey flags...] -> one TSV line in $RAW
run_hey() {
    local rep="$1" scen="$2" c="$3" target="$4" n="$5"
    shift 5
    local proxy_args=() pid="" t0=0 t1=0 hwm="" out
    if [[ "$target" != direct ]]; then
        proxy_args=(-x "http://127.0.0.1:${PORT[$target]}")
        pid="${PID[$target]}"
        kill -0 "$pid" 2>/dev/null || die "$target (pid $pid) is not running any more"
        echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true  # reset VmHWM to the current RSS
        t0="$(cpu_ticks "$pid")"
    fi
    local rec0=""
    [[ -n "${RECDIR[$target]:-}" ]] && rec0="$(count_records "$target")"
    out="$TMP/raw/${scen}_c${c}_${target}_r${rep}.txt"
    SSL_CERT_FILE="$TRUST" timeout "$RUN_TIMEOUT" hey -n "$n" -c "$c" -t 30 "$@" "${proxy_args[@]}" \
        -m POST -T application/json -d "$BODY" \
        "https://localhost:$UPORT/v1/chat/completions" >"$out" 2>&1 || true
    local ok
    ok="$(awk '$1=="[200]"{print $2}' "$out")"
    ok="${ok:-0}"
    local records=""
    if [[ -n "$rec0" ]]; then
        # The CPU figure includes writing every record of the run: wait (bounded) until the
        # writer has put them all on disk.
        wait_records "$target" $((rec0 + ok))
        records=$(($(count_records "$target") - rec0))
    fi
    local cpu_us="" rss=""
    if [[ -n "$pid" ]]; then
        t1="$(cpu_ticks "$pid")"
        hwm="$(hwm_kb "$pid")"
        rss="$(rss_kb "$pid")"
    fi
    local rps p50 p99
    rps="$(awk '/Requests\/sec:/{print $2}' "$out")"
    p50="$(awk '$1=="50%" && $2=="in"{printf "%.3f", $3*1000}' "$out")"
    p99="$(awk '$1=="99%" && $2=="in"{printf "%.3f", $3*1000}' "$out")"
    if [[ -n "$pid" ]]; then
        cpu_us="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v n="$ok" \
            'BEGIN{ if (n>0) printf "%.1f", (b-a)*1e6/hz/n; else print "" }')"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$scen" "$c" "$target" "$n" \
        "$ok" "${rps:-}" "${p50:-}" "${p99:-}" "$cpu_us" "${hwm:-}" "${rss:-}" "$records" >>"$RAW"
    log "$(printf 'r%s %-2s c=%-3s %-11s ok=%-5s req/s=%-9s p50=%-7sms p99=%-7sms cpu/req=%-6sus hwm=%sKB' \
        "$rep" "$scen" "$c" "$target" "$ok" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${cpu_us:--}" "${hwm:--}")"
    if [[ "$ok" != "$n" ]]; then
        log "  WARNING: $((n - ok)) of $n requests did not return 200 (see $out):"
        sed -n '/Error distribution/,$p;/Status code distribution/,/^$/p' "$out" | head -8 >&2
    fi
    if [[ -n "$records" && "$records" != "$ok" ]]; then
        log "  WARNING: $records records written for $ok responses"
    fi
    return 0
}

# curl_measured TARGET [curl args...]: one curl run, through TARGET's port unless TARGET is
# direct, capped by RUN_TIMEOUT, with the proxy's CPU time (utime+stime delta), peak RSS (VmHWM,
# reset just before) and RSS before taken around it (scenarios E and U). Sets CM_HTTP, CM_DOWN
# (bytes), CM_SECS (time_total), CM_PRE (time_pretransfer: connection, CONNECT and TLS set-up,
# the CA bundle load included), CM_CPU_US, CM_HWM, CM_RSS0 (the last three empty for direct).
# A proxy that dies during the run leaves them empty instead of stopping the script.
curl_measured() {
    local target="$1" pid="" t0=0 t1 px=() w
    shift
    CM_CPU_US="" CM_HWM="" CM_RSS0=""
    if [[ "$target" != direct ]]; then
        px=(-x "http://127.0.0.1:${PORT[$target]}")
        pid="${PID[$target]}"
        kill -0 "$pid" 2>/dev/null || log "  WARNING: $target (pid $pid) is not running any more"
        echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true  # reset VmHWM to the current RSS
        CM_RSS0="$(rss_kb "$pid" 2>/dev/null || true)"
        t0="$(cpu_ticks "$pid" 2>/dev/null || true)"
    fi
    w="$(timeout "$RUN_TIMEOUT" curl -s --cacert "$TRUST" "${px[@]}" \
        -w '%{http_code} %{size_download} %{time_total} %{time_pretransfer}' "$@" 2>/dev/null || true)"
    read -r CM_HTTP CM_DOWN CM_SECS CM_PRE <<<"${w:-000 0 0 0}"
    if [[ -n "$pid" ]]; then
        t1="$(cpu_ticks "$pid" 2>/dev/null || true)"
        CM_HWM="$(hwm_kb "$pid" 2>/dev/null || true)"
        [[ -n "$t0" && -n "$t1" ]] &&
            CM_CPU_US="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.0f", (b-a)*1e6/hz}')"
    fi
    return 0
}

mib_per_s() { awk -v s="$1" -v t="$2" 'BEGIN{ if (t>0) printf "%.1f", s/1048576/t }'; }  # BYTES SECS

# run_download REP TARGET BYTES -> one TSV line in $E_RAW (scenario E)
run_download() {
    local rep="$1" target="$2" bytes="$3" mbps
    curl_measured "$target" -o /dev/null "https://localhost:$UPORT/download?bytes=$bytes"
    mbps="$(mib_per_s "$CM_DOWN" "$CM_SECS")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$target" "$bytes" "$CM_HTTP" "$CM_DOWN" \
        "$CM_SECS" "$mbps" "$CM_CPU_US" "$CM_HWM" "$CM_RSS0" >>"$E_RAW"
    log "$(printf 'r%s E  %-11s http=%s bytes=%s MiB/s=%-8s cpu=%sus hwm=%sKB (rss before %sKB)' \
        "$rep" "$target" "$CM_HTTP" "$CM_DOWN" "${mbps:-?}" "${CM_CPU_US:--}" "${CM_HWM:--}" "${CM_RSS0:--}")"
    return 0
}

# make_upload_files: one random payload per size of BENCH_U_SIZES in the temp dir, and its
# sha256 in U_SHA[size]
declare -A U_SHA
make_upload_files() {
    local bytes
    for bytes in $U_SIZES; do
        head -c "$bytes" /dev/urandom >"$TMP/upload_$bytes.bin"
        U_SHA[$bytes]="$(sha256sum "$TMP/upload_$bytes.bin" | cut -d' ' -f1)"
    done
}

# run_upload REP TARGET BYTES -> one TSV line in $U_RAW (scenario U): a chunked upload of the
# BYTES payload to /sink, whose JSON answer must give the payload's exact length and sha256.
# MiB/s counts from the start of the request to the answer (time_total - time_pretransfer): the
# set-up before it (TLS handshakes, curl loading the CA bundle: 45-150 ms here) would otherwise
# dominate a 1 MiB upload.
run_upload() {
    local rep="$1" target="$2" bytes="$3" mbps="" xfer len="" sha="" framing="" ok=1
    local out="$TMP/raw/U_${bytes}_${target}_r$rep.json"
    curl_measured "$target" -o "$out" -H 'Transfer-Encoding: chunked' \
        --data-binary "@$TMP/upload_$bytes.bin" "https://localhost:$UPORT/sink"
    if [[ "$CM_HTTP" == 200 ]]; then
        read -r len sha framing < <(jq -r '[.body_length, .body_sha256, .framing] | @tsv' \
            "$out" 2>/dev/null || true) || true
    fi
    [[ "$CM_HTTP" == 200 && "$len" == "$bytes" && "$sha" == "${U_SHA[$bytes]}" ]] || ok=0
    xfer="$(awk -v t="$CM_SECS" -v p="$CM_PRE" 'BEGIN{printf "%.6f", t-p}')"
    ((ok)) && mbps="$(mib_per_s "$bytes" "$xfer")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$target" "$bytes" "$CM_HTTP" \
        "$CM_SECS" "$xfer" "$mbps" "$CM_CPU_US" "$CM_HWM" "$CM_RSS0" "${len:-}" "${framing:-}" "$ok" >>"$U_RAW"
    log "$(printf 'r%s U  %-11s http=%s bytes=%s in %ss (+%ss set-up) MiB/s=%-8s cpu=%sus hwm=%sKB (rss before %sKB) ok=%s' \
        "$rep" "$target" "$CM_HTTP" "$bytes" "$xfer" "$CM_PRE" "${mbps:-?}" "${CM_CPU_US:--}" "${CM_HWM:--}" \
        "${CM_RSS0:--}" "$ok")"
    if ((!ok)); then
        log "  WARNING: upload of $bytes bytes through $target: http=$CM_HTTP after ${CM_SECS}s," \
            "upstream saw body_length=${len:-?} sha256=${sha:-?} (framing ${framing:-?}), expected" \
            "$bytes / ${U_SHA[$bytes]} (answer in $out)"
    fi
    return 0
}

# ---------------------------------------------------------------- main
main() {
    local started load_start
    started="$(date +%s)"
    load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
    install_deps
    build
    TMP="$(mktemp -d /tmp/llm_proxy_bench.XXXXXX)"
    trap cleanup EXIT
    mkdir -p "$TMP/raw" bench/results
    RAW="$TMP/runs.tsv"
    printf 'rep\tscenario\tconc\ttarget\tn\tok\trps\tp50_ms\tp99_ms\tcpu_us_per_req\thwm_kb\trss_kb\trecords\n' >"$RAW"

    make_certs
    start_upstream
    local t
    for t in $TARGETS; do start_target "$t"; done
    SSE_TARGETS="${TARGETS/llm_dirlog_tmpfs/}"
    if [[ "$SSE" == 1 && " $TARGETS " == *" mitmdump "* ]]; then
        start_target mitmdump_stream
        SSE_TARGETS="$SSE_TARGETS mitmdump_stream"
    fi

    # Trust bundle for clients: system roots + test CA + both proxies' CAs (created at start-up).
    TRUST="$TMP/trust.pem"
    cat /etc/ssl/certs/ca-certificates.crt "$TMP/pki/testca.pem" >"$TRUST" 2>/dev/null ||
        cat "$TMP/pki/testca.pem" >"$TRUST"
    for f in "$TMP/ca_llm/mitmproxy-ca-cert.pem" "$TMP/ca_mitm/mitmproxy-ca-cert.pem"; do
        [[ -f "$f" ]] && cat "$f" >>"$TRUST"
    done

    # Sanity + warm-up: 200 requests per target (leaf certificates, Python imports, caches).
    log "warm-up (200 requests per target)"
    for t in $TARGETS; do run_hey 0 warm 10 "$t" 200; done

    TUN_RAW=""
    [[ "$TUNNELS" == 1 ]] && TUN_RAW="$TMP/tunnels.jsonl" && : >"$TUN_RAW"

    local rep c rot targets_arr
    read -r -a targets_arr <<<"$TARGETS"
    for ((rep = 1; rep <= REPEATS && AB == 1; rep++)); do
        # rotate the order every repeat so that no target always runs first/last
        rot=("${targets_arr[@]:$(( (rep - 1) % ${#targets_arr[@]} ))}" "${targets_arr[@]:0:$(( (rep - 1) % ${#targets_arr[@]} ))}")
        for c in $CONC; do
            for t in "${rot[@]}"; do run_hey "$rep" A "$c" "$t" "$N"; done
        done
        for t in "${rot[@]}"; do run_hey "$rep" B "$B_CONC" "$t" "$N_NEWCONN" -disable-keepalive; done
    done

    SSE_RAW=""
    if [[ "$SSE" == 1 ]]; then
        SSE_RAW="$TMP/sse.tsv"
        printf 'rep\ttarget\tttfe_ms\tevent_lat_ms_p50\tevent_lat_ms_p99\tstream_ms\tevents\n' >"$SSE_RAW"
        log "scenario C: SSE latency ($SSE_STREAMS streams x $SSE_EVENTS events, ${SSE_INTERVAL_MS} ms apart)"
        for ((rep = 1; rep <= REPEATS; rep++)); do
            for t in $SSE_TARGETS; do
                local px=""
                [[ "$t" != direct ]] && px="http://127.0.0.1:${PORT[$t]}"
                timeout "$RUN_TIMEOUT" "$PY" bench/sse_latency.py --url "https://localhost:$UPORT/v1/chat/completions" \
                    --proxy "$px" --cafile "$TRUST" --streams "$SSE_STREAMS" --events "$SSE_EVENTS" \
                    --interval-ms "$SSE_INTERVAL_MS" --label "$rep	$t" >>"$SSE_RAW" 2>"$TMP/sse_${t}_r$rep.err" ||
                    log "SSE run for $t failed: $(tail -1 "$TMP/sse_${t}_r$rep.err")"
            done
        done
    fi

    if [[ "$TUNNELS" == 1 && "$F" == 1 ]]; then
        log "scenario F: first connections to $F_HOSTS new host names"
        for ((rep = 1; rep <= REPEATS; rep++)); do
            # New host names need the proxy to reach h<i>.bench.test: only llm_proxy has
            # --connect-to; mitmdump would need DNS for them.
            for t in $TARGETS; do
                [[ "$t" == llm_simple ]] || continue
                timeout "$RUN_TIMEOUT" "$PY" bench/tunnels.py hosts --proxy-port "${PORT[$t]}" \
                    --pid "${PID[$t]}" --ca "$TRUST" --port "$UPORT" -n "$F_HOSTS" \
                    --run-id "r$rep" --time-limit $((RUN_TIMEOUT - 20)) \
                    2>"$TMP/hosts_${t}_r$rep.err" |
                    sed "s/^{/{\"rep\": $rep, \"target\": \"$t\", /" >>"$TUN_RAW" ||
                    log "hosts run for $t failed: $(tail -1 "$TMP/hosts_${t}_r$rep.err")"
            done
        done
    fi

    E_RAW=""
    if [[ "$E" == 1 ]]; then
        E_RAW="$TMP/download.tsv"
        printf 'rep\ttarget\tbytes\thttp\tsize\tsecs\tmib_s\tcpu_us\thwm_kb\trss_before_kb\n' >"$E_RAW"
        log "scenario E: GET /download?bytes=$E_BYTES with curl"
        for ((rep = 1; rep <= E_REPEATS; rep++)); do
            for t in $E_TARGETS; do run_download "$rep" "$t" "$E_BYTES"; done
        done
    fi

    U_RAW=""
    if [[ "$U" == 1 ]]; then
        U_RAW="$TMP/upload.tsv"
        printf 'rep\ttarget\tbytes\thttp\tsecs\txfer_secs\tmib_s\tcpu_us\thwm_kb\trss_before_kb\tbody_length\tframing\tok\n' >"$U_RAW"
        make_upload_files
        log "scenario U: chunked POST /sink of $U_SIZES bytes with curl"
        local bytes
        for ((rep = 1; rep <= U_REPEATS; rep++)); do
            for bytes in $U_SIZES; do
                for t in $U_TARGETS; do run_upload "$rep" "$t" "$bytes"; done
            done
        done
    fi

    if [[ "$TUNNELS" == 1 ]]; then
        # Scenario D on freshly started proxies: a process that served the earlier load keeps
        # that heap and would hand it to the new connections, understating their cost.
        log "scenario D: $D_IDLE idle intercepted connections or blind tunnels per target (fresh processes)"
        for ((rep = 1; rep <= D_REPEATS; rep++)); do
            for t in $TARGETS; do
                [[ "$t" == direct ]] && continue
                [[ "$t" == llm_dirlog_tmpfs ]] && continue  # same memory as llm_dirlog
                # Blind tunnels (llm_tunnel, tinyproxy): the client trusts the upstream's CA alone,
                # so each handshake is checked to be with the upstream, not with a minted leaf.
                local d_args=(--ca "$TRUST") d_n="$D_IDLE"
                if [[ "$t" == llm_tunnel || "$t" == llm_tunnel_before || "$t" == tinyproxy ]]; then
                    d_args=(--ca "$TMP/pki/testca.pem" --blind)
                fi
                [[ "$t" == tinyproxy ]] && ((d_n > 200)) && d_n=200  # MaxClients 256
                kill "${PID[$t]}" 2>/dev/null || true
                wait "${PID[$t]}" 2>/dev/null || true
                start_target "$t"
                timeout "$RUN_TIMEOUT" "$PY" bench/tunnels.py idle --proxy-port "${PORT[$t]}" \
                    --pid "${PID[$t]}" "${d_args[@]}" --port "$UPORT" -n "$d_n" \
                    --time-limit $((RUN_TIMEOUT - 20)) 2>"$TMP/tun_${t}_r$rep.err" |
                    sed "s/^{/{\"rep\": $rep, \"target\": \"$t\", /" >>"$TUN_RAW" ||
                    log "idle run for $t failed: $(tail -1 "$TMP/tun_${t}_r$rep.err")"
            done
        done
    fi

    # ------------------------------------------------------------ report
    local versions
    versions="$TMP/versions.txt"
    {
        echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "nproc=$(nproc)"
        echo "cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
        echo "kernel=$(uname -r)"
        echo "llm_proxy=$("$BUILD/llm_proxy" --version 2>&1 | head -1)"
        [[ -n "$BEFORE_BIN" ]] && echo "llm_before=$("$BEFORE_BIN" --version 2>&1 | head -1) ($BEFORE_BIN)"
        echo "llm_proxy_git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' (+uncommitted changes)')"
        echo "mitmdump=$(mitmdump --version 2>/dev/null | awk '/^Mitmproxy:/{print $2}')"
        echo "tinyproxy=$(tinyproxy -v 2>&1 | awk '{print $2}')"
        echo "hey=$(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?')"
        echo "openssl=$(openssl version)"
        echo "settings=BENCH_N=$N BENCH_N_NEWCONN=$N_NEWCONN BENCH_REPEATS=$REPEATS BENCH_CONC=\"$CONC\" BENCH_B_CONC=$B_CONC"
        echo "sse=streams:$SSE_STREAMS events:$SSE_EVENTS interval_ms:$SSE_INTERVAL_MS"
        local t
        for t in llm_dirlog llm_dirlog_tmpfs; do
            [[ -n "${RECDIR[$t]:-}" ]] && echo "records_fs_$t=$(describe_fs "${RECDIR[$t]}")"
        done
        echo "wall_s=$(( $(date +%s) - started ))"
        echo "loadavg=$load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1, 5, 15 min)"
    } >"$versions"
    local R="bench/results/$RESULTS_NAME"
    cp "$RAW" "${R}_runs.tsv"
    [[ -n "$SSE_RAW" ]] && cp "$SSE_RAW" "${R}_sse.tsv"
    [[ -n "$E_RAW" ]] && cp "$E_RAW" "${R}_download.tsv"
    [[ -n "$U_RAW" ]] && cp "$U_RAW" "${R}_upload.tsv"
    [[ -n "$TUN_RAW" ]] && cp "$TUN_RAW" "${R}_tunnels.jsonl"
    "$PY" bench/report.py --runs "$RAW" ${SSE_RAW:+--sse "$SSE_RAW"} ${E_RAW:+--download "$E_RAW"} \
        ${U_RAW:+--upload "$U_RAW"} ${TUN_RAW:+--tunnels "$TUN_RAW"} --versions "$versions" \
        --out "$R.md" --plot-data "$TMP/cpu_a.dat"
    if [[ "$AB" == 1 && -s "$TMP/cpu_a.dat" ]]; then
        gnuplot -e "datafile='$TMP/cpu_a.dat'; outfile='$CHART'" bench/cpu_chart.gp ||
            log "gnuplot failed"
    fi
    cat "$R.md"
    log "done in $(( $(date +%s) - started )) s; $R.md$([[ "$AB" == 1 ]] && echo ", $CHART")"
}

main "$@"

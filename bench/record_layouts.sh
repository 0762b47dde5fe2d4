#!/usr/bin/env bash
# bench/record_layouts.sh — what writing records costs per request: `simple` (no records)
# against `dir_logger` with one file per record (--format json) and JSONL segments
# (--format jsonl), with --fsync record / interval, and `simple` with Prometheus metrics or
# OpenTelemetry export on (BENCH_SETTINGS="simple simple-metrics simple-otlp simple-otlp-protobuf":
# JSON or protobuf spans, each setting's to a bench/otlp_sink.py of its own, and the CPU is read
# once the sink has every span), or with the web view
# (simple-web: --web, no browser; simple-web-browser: --web with headless chromium showing the
# page through bench/web_watch.js, puppeteer-core from .ci/install-deps' node directory), or
# `simple --no-llm` (simple-no-llm: what the LLM observer costs, by its absence).
#
# One command, from the repository root or anywhere:   bench/record_layouts.sh
#
#   1. builds llm_proxy + fake_upstream (Release, build-bench/) unless BENCH_SKIP_BUILD=1
#   2. for each round (BENCH_ROUNDS) and each setting, in turn: starts a fresh proxy writing to
#      BENCH_RECORDS_DIR (default: a temp dir in /tmp, the disk), sends `hey -n BENCH_REQUESTS
#      -c BENCH_CONC` keep-alive POSTs of a chat completion through an intercepted CONNECT to the
#      fake upstream over TLS, waits until every record is written, and reads the proxy's CPU
#      time (utime + stime of all its threads, the writer thread included)
#   3. prints a markdown table: per setting the median over the rounds of the proxy's CPU per
#      request and of requests per second, and the CPU ratio to `simple` of the same round
#
# Environment: BENCH_ROUNDS=3 BENCH_REQUESTS=20000 BENCH_CONC=10 BENCH_BUILD_DIR=build-bench
#              BENCH_RECORDS_DIR= BENCH_SETTINGS (names below, space-separated)
#              BENCH_QPS= (a total request rate for every setting, e.g. 1000: hey -q QPS/CONC)
#              BENCH_PARALLEL=1 (the settings of a round run at the same time, each with its
#              own proxy and load generator, instead of one after another)
#              BENCH_PROXY_ARGS= (more arguments for every proxy, e.g. "--threads 1")
#              BENCH_PIN=1 (the proxy on CPU 0, everything else on CPU 1: the load generator,
#              the upstream and the OTLP sink no longer share the proxy's core and caches)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROUNDS="${BENCH_ROUNDS:-3}"
REQUESTS="${BENCH_REQUESTS:-20000}"
CONC="${BENCH_CONC:-10}"
QPS="${BENCH_QPS:-}"
PIN="${BENCH_PIN:-0}"
PARALLEL="${BENCH_PARALLEL:-0}"
read -r -a EXTRA_ARGS <<<"${BENCH_PROXY_ARGS:-}"
PROXY_CPU=()
OTHER_CPU=()
if [[ "$PIN" == 1 ]]; then
    PROXY_CPU=(taskset -c 0)
    OTHER_CPU=(taskset -c 1)
fi
RATE=()
[[ -n "$QPS" ]] && RATE=(-q "$((QPS / CONC))")
NODE_DIR="${LLM_PROXY_TEST_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llm_proxy/test-node}"
BUILD="${BENCH_BUILD_DIR:-build-bench}"
PY=/usr/bin/python3
SETTINGS="${BENCH_SETTINGS:-simple json jsonl json-fsync-record jsonl-fsync-record jsonl-fsync-interval}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_script_setup record-layouts llm_proxy_record_layouts

command -v hey >/dev/null || die "hey is missing (bench/run.sh installs it)"
build
make_certs
start_upstream
[[ "$PIN" == 1 ]] && taskset -pc 1 "${PID[upstream]}" >/dev/null
RECORDS_ROOT="${BENCH_RECORDS_DIR:-$TMP}"
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}]}' \
    >"$TMP/body.json"
TICK="$(getconf CLK_TCK)"
declare -A SINK_PORT SPANS_BEFORE
for s in $SETTINGS; do
    [[ "$s" == simple-otlp* ]] || continue
    SINK_PORT[$s]="$(free_port)"
    "${OTHER_CPU[@]}" "$PY" "$ROOT/bench/otlp_sink.py" "${SINK_PORT[$s]}" "$TMP/spans-$s" &
    PIDS_TO_STOP+=("$!")
    wait_port "${SINK_PORT[$s]}" "$!" "otlp sink of $s"
done
spans_of() { cat "$TMP/spans-$1" 2>/dev/null || echo 0; }

args_of() {
    case "$1" in
        simple) echo "simple" ;;
        simple-metrics) echo "simple --metrics-listen 127.0.0.1:0" ;;
        simple-no-llm) echo "simple --no-llm" ;;
        simple-otlp) echo "simple --otlp-endpoint http://127.0.0.1:${SINK_PORT[$1]} --otlp-spool-dir $TMP/spool-$1" ;;
        simple-otlp-protobuf) echo "simple --otlp-endpoint http://127.0.0.1:${SINK_PORT[$1]} --otlp-spool-dir $TMP/spool-$1 --otlp-protocol http/protobuf" ;;
        simple-web | simple-web-browser) echo "simple --web 127.0.0.1:0" ;;
        json) echo "dir_logger --format json" ;;
        jsonl) echo "dir_logger --format jsonl" ;;
        json-fsync-record) echo "dir_logger --format json --fsync record" ;;
        jsonl-fsync-record) echo "dir_logger --format jsonl --fsync record" ;;
        jsonl-fsync-interval) echo "dir_logger --format jsonl --fsync interval" ;;
        *) die "unknown setting $1" ;;
    esac
}

records_in() {  # files + lines of segments
    local dir="$1" files lines
    files="$(find "$dir" -maxdepth 1 -name '*.json' | wc -l)"
    lines="$(cat "$dir"/*.jsonl 2>/dev/null | wc -l)"
    echo $((files + lines))
}

declare -A CPU RPS RATIO PROXY_PID PROXY_PORT OUT_DIR WATCHER T0 E0 HEY_PID ROUND_US
declare -A EXPORTER

# Starts the proxy of setting $1 (and, for simple-web-browser, the browser watching its page).
start_setting() {
    local s="$1" port out pid watcher=""
    port="$(free_port)"
    out="$RECORDS_ROOT/records-$s"
    rm -rf "$out" "$TMP/ca-$s"
    mkdir -p "$out" "$TMP/ca-$s"
    local outputs=(-o "$out")
    [[ "$s" == simple* ]] && outputs=()  # simple writes no records without -o
    # shellcheck disable=SC2046
    "${PROXY_CPU[@]}" "$BUILD/llm_proxy" $(args_of "$s") "${outputs[@]}" "${EXTRA_ARGS[@]}" --listen "127.0.0.1:$port" \
        --ca_dir "$TMP/ca-$s" --upstream-ca "$TMP/pki/testca.pem" >"$TMP/proxy-$s.log" 2>&1 &
    pid=$!
    PIDS_TO_STOP+=("$pid")
    wait_port "$port" "$pid" "proxy-$s"
    cat "$TMP/pki/testca.pem" "$TMP/ca-$s/mitmproxy-ca-cert.pem" >"$TMP/trust-$s.pem"
    if [[ "$s" == simple-web-browser ]]; then
        local web_url="" i
        for ((i = 0; i < 100; i++)); do
            web_url="$(grep -oE 'web view: open http://[^ ]+' "$TMP/proxy-$s.log" | awk '{print $4}' || true)"
            [[ -z "$web_url" ]] || break
            sleep 0.1
        done
        [[ -n "$web_url" ]] || die "$s: no web view address in the log"
        NODE_PATH="$NODE_DIR/node_modules" node "$ROOT/bench/web_watch.js" "$web_url" \
            >"$TMP/watch-$s.log" 2>&1 &
        watcher=$!
        PIDS_TO_STOP+=("$watcher")
        for ((i = 0; i < 300; i++)); do grep -q '^ready' "$TMP/watch-$s.log" && break; sleep 0.1; done
        grep -q '^ready' "$TMP/watch-$s.log" || die "$s: the browser did not load the page: $(cat "$TMP/watch-$s.log")"
    fi
    PROXY_PID[$s]="$pid"
    PROXY_PORT[$s]="$port"
    OUT_DIR[$s]="$out"
    WATCHER[$s]="$watcher"
}

# The load of setting $1, in the background (HEY_PID).
start_load() {
    local s="$1"
    SSL_CERT_FILE="$TMP/trust-$s.pem" timeout 600 "${OTHER_CPU[@]}" hey -n "$REQUESTS" -c "$CONC" "${RATE[@]}" \
        -x "http://127.0.0.1:${PROXY_PORT[$s]}" -m POST -T application/json -D "$TMP/body.json" \
        "https://localhost:$UPORT/v1/chat/completions" >"$TMP/hey-$s.txt" &
    HEY_PID[$s]=$!
}

# After the load of setting $1: waits for its records (or spans), reads its CPU, stops it.
finish_setting() {
    local s="$1" ok rps out="${OUT_DIR[$1]}" pid="${PROXY_PID[$1]}" i t1 e1 us
    wait "${HEY_PID[$s]}" || true
    ok="$(grep -oE '\[200\][[:space:]]+[0-9]+' "$TMP/hey-$s.txt" | head -1 | awk '{print $2}' || true)"
    rps="$(awk '/Requests\/sec/{print $2}' "$TMP/hey-$s.txt")"
    [[ -n "$ok" && "$ok" -gt 0 ]] || die "$s: no 200 responses: $(cat "$TMP/hey-$s.txt")"
    if [[ "$s" == simple-otlp* ]]; then
        for ((i = 0; i < 600 && $(spans_of "$s") - SPANS_BEFORE[$s] < ok; i++)); do
            sleep 0.1
        done
    fi
    if [[ "$s" != simple* ]]; then
        for ((i = 0; i < 600 && $(records_in "$out") < ok; i++)); do sleep 0.1; done
        [[ "$(records_in "$out")" -ge "$ok" ]] || die "$s: records missing"
    fi
    if [[ -n "${WATCHER[$s]}" ]]; then
        sleep 1  # the page's last event-stream poll
    fi
    t1="$(cpu_ticks "$pid")"
    e1="$(thread_cpu_ns "$pid" llm_proxy-otlp)"
    if [[ -n "${WATCHER[$s]}" ]]; then
        kill "${WATCHER[$s]}"
        wait "${WATCHER[$s]}" 2>/dev/null || true
        log "round $round $s: the page showed $(awk '/^rows/{print $2}' "$TMP/watch-$s.log") rows"
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    us="$(echo "($t1 - ${T0[$s]}) * 1000000 / $TICK / $ok" | bc -l)"
    CPU[$s]+="$us "
    RPS[$s]+="$rps "
    ROUND_US[$s]="$us"
    local extra=""
    if [[ "$s" == simple-otlp* ]]; then
        local eus
        eus="$(echo "($e1 - ${E0[$s]}) / 1000 / $ok" | bc -l)"
        EXPORTER[$s]+="$eus "
        extra=" (the exporter thread: $(printf '%.1f' "$eus") µs per span)"
    fi
    log "round $round $s: $ok responses, $(printf '%.1f' "$us") µs CPU per request, $rps req/s$extra"
    rm -rf "$out"
}

mark_start() {  # CPU readings (and spans received) before the load of setting $1
    SPANS_BEFORE[$1]="$(spans_of "$1")"
    T0[$1]="$(cpu_ticks "${PROXY_PID[$1]}")"
    E0[$1]="$(thread_cpu_ns "${PROXY_PID[$1]}" llm_proxy-otlp)"
}

for ((round = 1; round <= ROUNDS; round++)); do
    if [[ "$PARALLEL" == 1 ]]; then
        # Every setting at once, each with its own load: what the machine does to one round
        # (other tenants, frequency) it does to all of them. The order they start in turns
        # every round, so that no setting is always first.
        read -r -a order <<<"$SETTINGS"
        shift_by=$(((round - 1) % ${#order[@]}))
        order=("${order[@]:shift_by}" "${order[@]:0:shift_by}")
        for s in "${order[@]}"; do start_setting "$s"; done
        for s in "${order[@]}"; do mark_start "$s"; done
        for s in "${order[@]}"; do start_load "$s"; done
        for s in "${order[@]}"; do finish_setting "$s"; done
    else
        for s in $SETTINGS; do
            start_setting "$s"
            mark_start "$s"
            start_load "$s"
            finish_setting "$s"
        done
    fi
    # Each setting against simple in the same round: steadier than a ratio of medians on a
    # shared machine.
    for s in $SETTINGS; do
        [[ "$s" != simple && -n "${ROUND_US[simple]:-}" ]] || continue
        RATIO[$s]+="$(echo "${ROUND_US[$s]} / ${ROUND_US[simple]}" | bc -l) "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# "mean ± standard error" of the numbers read (the standard error: their standard deviation over
# the square root of their count).
mean_se() {
    tr ' ' '\n' | grep -v '^$' | awk '{n++; s+=$1; q+=$1*$1} END {
        m=s/n; v=(n>1)?(q-n*m*m)/(n-1):0; if (v<0) v=0; printf "%.3f ± %.3f", m, sqrt(v/n)}'
}
base="$(echo "${CPU[simple]:-}" | median)"
rows=()
for s in $SETTINGS; do
    c="$(echo "${CPU[$s]}" | median)"
    r="$(echo "${RPS[$s]}" | median)"
    ratio="-"
    [[ -n "$base" ]] && ratio="$(printf '%.2f' "$(echo "$c / $base" | bc -l)")"
    per_round="- | -"
    if [[ -n "${RATIO[$s]:-}" ]]; then
        per_round="$(printf '%.2f' "$(echo "${RATIO[$s]}" | median)") | $(echo "${RATIO[$s]}" | mean_se)"
    fi
    label="$(args_of "$s")"
    [[ "$s" == simple-web-browser ]] && label+=" + a browser showing the page"
    rows+=("| $label | $(printf '%.1f' "$c") | ${ratio} | ${per_round} | $(printf '%.0f' "$r") |")
done

exporter_note=""
for s in $SETTINGS; do
    [[ -n "${EXPORTER[$s]:-}" ]] || continue
    e="$(echo "${EXPORTER[$s]}" | median)"
    share=""
    [[ -n "$base" ]] && share=", $(printf '%.1f' "$(echo "100 * $e / $base" | bc -l)") % of simple's CPU per request"
    exporter_note+="
The OTLP exporter thread of $s (named \`llm_proxy-otlp\`, CPU from its schedstat) alone: $(printf '%.2f' "$e") µs per span (median of the rounds)${share}. It renders and sends the spans; the workers' share is capturing what a span needs as its flow ends (\`bench_render\`: \"OTLP capture\")."
done
cat <<EOT
## What records cost per request

Run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg); $("$BUILD/llm_proxy" --version | head -1), git $(git rev-parse --short HEAD).
\`hey -n ${REQUESTS} -c ${CONC}${QPS:+ -q $((QPS / CONC))}\` keep-alive POSTs through an intercepted CONNECT to the fake upstream (TLS, 1 thread), ${ROUNDS} rounds, $(if [[ "$PARALLEL" == 1 ]]; then echo "the settings of a round at the same time (a proxy and a load generator each, started in an order that turns every round)"; else echo "settings in turn within each round"; fi); records on $(df --output=fstype "$RECORDS_ROOT" | tail -1) at ${RECORDS_ROOT}. CPU: the proxy's utime + stime until every record is written, per 200 response; medians over the rounds. $(if [[ "$PIN" == 1 ]]; then echo "The proxies run on CPU 0 (taskset); the load generators, the upstream and the OTLP sink on CPU 1."; else echo "Load generator, upstream and proxy share the cores."; fi)

| proxy${EXTRA_ARGS[*]:+ (all with ${EXTRA_ARGS[*]})} | CPU µs per request | ÷ simple (medians) | ÷ simple (median of per-round ratios) | ÷ simple (mean of per-round ratios ± s.e.) | requests/s |
|---|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")
${exporter_note}
EOT

#!/usr/bin/env bash
# bench/cache.sh — loopback benchmark of `llm_proxy cache`: HIT vs MISS for every engine
# (sqlite, memory, redis), with `llm_proxy simple` (no cache) on the same requests as reference.
#
# One command, from the repository root or anywhere:   bench/cache.sh
#
# Same conventions as bench/run.sh (whose helpers are copied here, not shared, so that run.sh
# stays exactly as it is); see docs/benchmarks.md, section "Cache (llm_proxy cache)":
#   1. apt-get installs what is missing (hey redis-server openssl cmake ninja-build curl python3)
#   2. builds llm_proxy + fake_upstream, Release, in build-bench/ (ccache when installed)
#   3. makes a throwaway test CA and server certificate with the openssl CLI in a temp dir
#   4. starts on free 127.0.0.1 ports: the fake upstream (1 thread), redis-server
#      (--save "" --appendonly no), `llm_proxy simple` and one `llm_proxy cache` per engine
#      (--threads 1 each)
#   5. per repeat and concurrency, in an order rotated every repeat, with hey (keep-alive HTTPS
#      through CONNECT + MITM, POST /v1/chat/completions, one fixed JSON body):
#        simple  N requests through `llm_proxy simple`
#        HIT     per engine: one curl warms the entry, then N identical requests; the fake
#                upstream's /stats "requests" counter must not move, and a curl -i sample
#                afterwards must say X-Llm_proxy-Cache: HIT
#        MISS    per engine: N requests with `Cache-Control: no-cache` (lookup skipped, upstream
#                request, answer stored: the full MISS path on every request); the counter
#                must move by N
#   6. writes medians (and per-repeat ratios) as markdown to stdout and bench/results/cache.md,
#      raw rows to bench/results/cache_runs.tsv
#
# Environment (defaults: about 2-3 minutes of benchmark on 2 busy cores):
#   BENCH_N=5000            requests per hey run
#   BENCH_REPEATS=3         repeats; the report shows medians
#   BENCH_CONC="1 10"       concurrency levels
#   BENCH_ENGINES="sqlite memory redis"
#   BENCH_RESULTS_NAME=cache  results go to bench/results/<name>.md (+ <name>_runs.tsv)
#   BENCH_RUN_TIMEOUT=120   seconds; hard cap on each hey run
#   BENCH_SKIP_INSTALL=1    do not call apt-get
#   BENCH_SKIP_BUILD=1      reuse build-bench/ as it is
#   BENCH_BUILD_DIR=DIR     build directory (default build-bench)
#   BENCH_KEEP_TMP=1        keep the temp dir (certificates, logs, sqlite file, raw hey output)
#
# Everything runs under `nice -n 19` (the script re-executes itself that way) and on 127.0.0.1.
set -euo pipefail

if [[ "${BENCH_NICED:-0}" != 1 ]]; then
    export BENCH_NICED=1
    exec nice -n 19 "$0" "$@"
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

N="${BENCH_N:-5000}"
REPEATS="${BENCH_REPEATS:-3}"
CONC="${BENCH_CONC:-1 10}"
ENGINES="${BENCH_ENGINES:-sqlite memory redis}"
RUN_TIMEOUT="${BENCH_RUN_TIMEOUT:-120}"
RESULTS_NAME="${BENCH_RESULTS_NAME:-cache}"
PY=/usr/bin/python3
BUILD="${BENCH_BUILD_DIR:-build-bench}"
BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}]}'
CLK_TCK="$(getconf CLK_TCK)"
TMP=""

log() { printf '[cache-bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Shared helpers: build, free_port, wait_port, cpu_ticks, hwm_kb, rss_kb, make_certs,
# start_upstream.
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- 1. dependencies
install_deps() {
    local missing=()
    command -v hey >/dev/null || missing+=(hey)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v cmake >/dev/null || missing+=(cmake)
    command -v curl >/dev/null || missing+=(curl)
    command -v ninja >/dev/null || missing+=(ninja-build)
    [[ -x "$PY" ]] || missing+=(python3)
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

# Waits (at most 5 s) until the process stops using CPU, so that work a run queued (the sqlite
# writer thread's batches, Redis commands still in flight) is counted in that run.
settle() {  # settle PID
    local i a b
    b="$(cpu_ticks "$1")"
    for ((i = 0; i < 25; i++)); do
        sleep 0.2
        a="$b"
        b="$(cpu_ticks "$1")"
        [[ "$a" == "$b" ]] && return 0
    done
}

declare -A PORT PID
PIDS_TO_STOP=()

cleanup() {
    local p i alive
    for p in "${PIDS_TO_STOP[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for p in "${PIDS_TO_STOP[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${PIDS_TO_STOP[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    [[ -n "$TMP" ]] || return 0
    if [[ "${BENCH_KEEP_TMP:-0}" == 1 ]]; then
        log "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
}

# ---------------------------------------------------------------- 4. processes

start_redis() {
    local port
    port="$(free_port)"
    mkdir -p "$TMP/redis"
    # No persistence, loopback only, no config file: a throwaway in-memory Redis.
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP/redis" \
        --daemonize no --protected-mode yes --logfile "" >"$TMP/redis_server.log" 2>&1 &
    PID[redis_server]=$!
    PORT[redis_server]=$port
    PIDS_TO_STOP+=("$!")
    wait_port "$port" "$!" redis_server
    log "redis-server pid ${PID[redis_server]} on 127.0.0.1:$port ($(redis-server --version | awk '{print $3}' | sed 's/^v=//'))"
}

start_target() {  # start_target NAME   (simple | sqlite | memory | redis)
    local name="$1" port sub
    port="$(free_port)"
    case "$name" in
    simple) sub=(simple) ;;
    sqlite) sub=(cache --cache-engine sqlite --cache-dir "$TMP/sqlite_cache") ;;
    memory) sub=(cache --cache-engine memory) ;;
    redis) sub=(cache --cache-engine redis --redis-url "redis://127.0.0.1:${PORT[redis_server]}/0") ;;
    *) die "unknown target $name" ;;
    esac
    mkdir -p "$TMP/ca_llm"
    "$BUILD/llm_proxy" "${sub[@]}" --listen "127.0.0.1:$port" --ca_dir "$TMP/ca_llm" \
        --upstream-ca "$TMP/pki/testca.pem" \
        --connect-to "api.openai.com:443:127.0.0.1:$UPORT" --threads 1 \
        >"$TMP/$name.log" 2>&1 &
    PID[$name]=$!
    PORT[$name]=$port
    PIDS_TO_STOP+=("$!")
    wait_port "$port" "$!" "$name"
    log "llm_proxy ${sub[0]} ($name) pid ${PID[$name]} on 127.0.0.1:$port"
}

upstream_requests() {  # the fake upstream's request counter (/stats is not counted itself)
    curl -s --max-time 10 --cacert "$TMP/pki/testca.pem" "https://localhost:$UPORT/stats" |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["requests"])'
}

# One request through TARGET with curl; prints the X-Llm_proxy-Cache value ("-" if none).
curl_sample() {  # curl_sample TARGET [extra curl args...]
    local t="$1"
    shift
    timeout 20 curl -s -i --max-time 10 --cacert "$TRUST" -x "http://127.0.0.1:${PORT[$t]}" \
        -H 'Content-Type: application/json' -d "$BODY" "$@" \
        "https://localhost:$UPORT/v1/chat/completions" 2>/dev/null |
        awk 'BEGIN{v="-"} tolower($1)=="x-llm_proxy-cache:"{v=$2} END{gsub("\r","",v); print v}'
}

# ---------------------------------------------------------------- 5. one load run
# run_hey REP CONC TARGET PATH N  -> one TSV line in $RAW.  PATH: plain | HIT | MISS
run_hey() {
    local rep="$1" c="$2" t="$3" path="$4" n="$5"
    local pid="${PID[$t]}" rpid="" hdr=() warm="-" sample="-"
    kill -0 "$pid" 2>/dev/null || die "$t (pid $pid) is not running any more"
    [[ "$t" == redis ]] && rpid="${PID[redis_server]}"
    case "$path" in
    HIT) warm="$(curl_sample "$t")" ;;  # stores the entry if it is not there yet
    MISS) hdr=(-H 'Cache-Control: no-cache') ;;
    esac
    settle "$pid"
    [[ -n "$rpid" ]] && settle "$rpid"
    local u0 u1 t0 t1 r0=0 r1=0 out
    u0="$(upstream_requests)"
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true  # reset VmHWM to the current RSS
    t0="$(cpu_ticks "$pid")"
    [[ -n "$rpid" ]] && r0="$(cpu_ticks "$rpid")"
    out="$TMP/raw/c${c}_${t}_${path}_r${rep}.txt"
    SSL_CERT_FILE="$TRUST" timeout "$RUN_TIMEOUT" hey -n "$n" -c "$c" -t 30 "${hdr[@]}" \
        -x "http://127.0.0.1:${PORT[$t]}" -m POST -T application/json -d "$BODY" \
        "https://localhost:$UPORT/v1/chat/completions" >"$out" 2>&1 || true
    settle "$pid"
    [[ -n "$rpid" ]] && settle "$rpid"
    t1="$(cpu_ticks "$pid")"
    [[ -n "$rpid" ]] && r1="$(cpu_ticks "$rpid")"
    local hwm
    hwm="$(hwm_kb "$pid")"
    [[ "$path" == HIT ]] && sample="$(curl_sample "$t")"  # must be HIT, and not reach the upstream
    u1="$(upstream_requests)"
    local rps p50 p99 ok cpu_us rcpu_us=""
    rps="$(awk '/Requests\/sec:/{print $2}' "$out")"
    p50="$(awk '$1=="50%" && $2=="in"{printf "%.3f", $3*1000}' "$out")"
    p99="$(awk '$1=="99%" && $2=="in"{printf "%.3f", $3*1000}' "$out")"
    ok="$(awk '$1=="[200]"{print $2}' "$out")"
    ok="${ok:-0}"
    cpu_us="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v n="$ok" \
        'BEGIN{ if (n>0) printf "%.1f", (b-a)*1e6/hz/n; else print "" }')"
    [[ -n "$rpid" ]] && rcpu_us="$(awk -v a="$r0" -v b="$r1" -v hz="$CLK_TCK" -v n="$ok" \
        'BEGIN{ if (n>0) printf "%.1f", (b-a)*1e6/hz/n; else print "" }')"
    local delta=$((u1 - u0))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$c" "$t" "$path" \
        "$n" "$ok" "${rps:-}" "${p50:-}" "${p99:-}" "$cpu_us" "$rcpu_us" "$delta" "$warm" "$sample" \
        "${hwm:-}" >>"$RAW"
    log "$(printf 'r%s c=%-3s %-6s %-5s ok=%-5s req/s=%-9s p50=%-6sms p99=%-6sms cpu/req=%-6sus redis=%-5sus upstream+%-5s warm=%s sample=%s' \
        "$rep" "$c" "$t" "$path" "$ok" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${cpu_us:--}" "${rcpu_us:--}" \
        "$delta" "$warm" "$sample")"
    if [[ "$ok" != "$n" ]]; then
        log "  WARNING: $((n - ok)) of $n requests did not return 200 (see $out):"
        sed -n '/Error distribution/,$p;/Status code distribution/,/^$/p' "$out" | head -8 >&2
    fi
    case "$path" in
    HIT)
        if [[ "$delta" != 0 || "$sample" != HIT ]]; then
            log "  WARNING: HIT run of $t reached the upstream ($delta requests) or the sample said '$sample'"
            BAD=1
        fi
        ;;
    *)
        if [[ "$delta" != "$ok" ]]; then
            log "  WARNING: $path run of $t: $delta upstream requests for $ok answers"
            BAD=1
        fi
        ;;
    esac
    return 0
}

# ---------------------------------------------------------------- 6. report
report() {  # report RAW VERSIONS OUT
    "$PY" - "$@" <<'PYEOF'
import csv, statistics, sys
from collections import defaultdict

raw, versions, out = sys.argv[1:4]
info = {}
with open(versions) as f:
    for line in f:
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            info[k] = v
with open(raw, newline="") as f:
    rows = [r for r in csv.DictReader(f, delimiter="\t") if r["rep"] != "0"]

def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None

def med(vs):
    vs = [v for v in vs if v is not None]
    return statistics.median(vs) if vs else None

def fmt(v, d=1, suffix=""):
    return "–" if v is None else f"{v:,.{d}f}{suffix}"

def spread(vs, d=0):
    vs = [v for v in vs if v is not None]
    return f" ({min(vs):,.{d}f}–{max(vs):,.{d}f})" if len(vs) > 1 else ""

# by[conc][(target, path)][rep] = row
by = defaultdict(lambda: defaultdict(dict))
for r in rows:
    by[int(r["conc"])][(r["target"], r["path"])][int(r["rep"])] = r
concs = sorted(by)
engines = [e for e in ("sqlite", "memory", "redis") if any((e, "HIT") in by[c] for c in concs)]
order = [("simple", "plain")] + [(e, p) for e in engines for p in ("MISS", "HIT")]
label = {"simple": "llm_proxy simple (no cache)", "sqlite": "cache sqlite", "memory": "cache memory",
         "redis": "cache redis"}

def metric(c, key, field):
    return [num(r[field]) for r in by[c].get(key, {}).values()]

def rep_ratio(c, k1, k2, field):
    a, b = by[c].get(k1, {}), by[c].get(k2, {})
    vs = []
    for rep in a:
        if rep in b:
            x, y = num(a[rep][field]), num(b[rep][field])
            if x is not None and y:
                vs.append(x / y)
    return med(vs)

L = ["## Results", ""]
L.append(f"Run {info.get('date_utc', '?')} on {info.get('nproc', '?')} × {info.get('cpu', '?')} "
         f"(kernel {info.get('kernel', '?')}); wall time of bench/cache.sh: {info.get('wall_s', '?')} s.  ")
L.append(f"llm_proxy: `{info.get('llm_proxy', '?')}` (git {info.get('llm_proxy_git', '?')}); "
         f"redis-server {info.get('redis', '?')}; SQLite {info.get('sqlite', '?')}; hey {info.get('hey', '?')}; "
         f"{info.get('openssl', '?')}; sqlite file on {info.get('sqlite_fs', '?')}.  ")
L.append(f"Settings: `{info.get('settings', '')}`; every llm_proxy with `--threads 1`, the fake upstream "
         "with 1 thread; keep-alive HTTPS through CONNECT + MITM, `POST /v1/chat/completions`, "
         "one fixed body (the 661-byte non-stream answer).")
L.append("")
L.append("Medians of the repeats, (min–max) in brackets. **HIT**: identical requests after one warming "
         "request. **MISS**: the same request with `Cache-Control: no-cache`, which skips the lookup, goes "
         "upstream and stores the answer every time. Proxy CPU µs/req = utime+stime of the proxy process "
         "(all threads) during the run ÷ 200 responses; redis-server's own CPU is a separate column. "
         "Upstream requests = the fake upstream's `/stats` counter after − before the run, summed over "
         "the repeats (a HIT run must add 0).")
L.append("")
L.append("| conc | target | path | req/s | p50 ms | p99 ms | proxy CPU µs/req | redis-server CPU µs/req | "
         "upstream requests / 200s | `X-Llm_proxy-Cache` of a sample after the run |")
L.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---|")
for c in concs:
    for key in order:
        reps = by[c].get(key)
        if not reps:
            continue
        ok = sum(int(r["ok"] or 0) for r in reps.values())
        up = sum(int(r["upstream_delta"] or 0) for r in reps.values())
        samples = sorted({r["sample"] for r in reps.values()})
        rc = metric(c, key, "redis_cpu_us_per_req")
        L.append("| {} | {} | {} | {} | {} | {} | {} | {} | {:,} / {:,} | {} |".format(
            c, label[key[0]], "–" if key[1] == "plain" else key[1],
            fmt(med(metric(c, key, "rps")), 0) + spread(metric(c, key, "rps")),
            fmt(med(metric(c, key, "p50_ms")), 2), fmt(med(metric(c, key, "p99_ms")), 2),
            fmt(med(metric(c, key, "cpu_us_per_req")), 0) + spread(metric(c, key, "cpu_us_per_req")),
            fmt(med(rc), 0) + spread(rc) if key[0] == "redis" else "–",
            up, ok, "–" if key[1] != "HIT" else ", ".join(samples)))
L.append("")
L.append("### Ratios (within each repeat, then median)")
L.append("")
L.append("| conc | engine | req/s HIT ÷ MISS | proxy CPU/req MISS ÷ HIT | req/s HIT ÷ simple | "
         "proxy CPU/req HIT ÷ simple | proxy CPU/req MISS ÷ simple |")
L.append("|---:|---|---:|---:|---:|---:|---:|")
for c in concs:
    for e in engines:
        hit, miss, simple = (e, "HIT"), (e, "MISS"), ("simple", "plain")
        L.append("| {} | {} | {} | {} | {} | {} | {} |".format(
            c, e,
            fmt(rep_ratio(c, hit, miss, "rps"), 2, "×"),
            fmt(rep_ratio(c, miss, hit, "cpu_us_per_req"), 2, "×"),
            fmt(rep_ratio(c, hit, simple, "rps"), 2, "×"),
            fmt(rep_ratio(c, hit, simple, "cpu_us_per_req"), 2, "×"),
            fmt(rep_ratio(c, miss, simple, "cpu_us_per_req"), 2, "×")))
L.append("")
with open(out, "w") as f:
    f.write("\n".join(L) + "\n")
PYEOF
}

# ---------------------------------------------------------------- main
main() {
    local started
    started="$(date +%s)"
    install_deps
    build
    TMP="$(mktemp -d /tmp/llm_proxy_cache_bench.XXXXXX)"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$TMP/raw" bench/results
    RAW="$TMP/runs.tsv"
    BAD=0
    printf 'rep\tconc\ttarget\tpath\tn\tok\trps\tp50_ms\tp99_ms\tcpu_us_per_req\tredis_cpu_us_per_req\tupstream_delta\twarm\tsample\thwm_kb\n' >"$RAW"

    make_certs
    start_upstream
    [[ " $ENGINES " == *" redis "* ]] && start_redis
    local t
    for t in simple $ENGINES; do start_target "$t"; done

    # Trust bundle for clients: system roots + test CA + llm_proxy's CA (created at start-up).
    TRUST="$TMP/trust.pem"
    cat /etc/ssl/certs/ca-certificates.crt "$TMP/pki/testca.pem" >"$TRUST" 2>/dev/null ||
        cat "$TMP/pki/testca.pem" >"$TRUST"
    cat "$TMP/ca_llm/mitmproxy-ca-cert.pem" >>"$TRUST"

    # Sanity + warm-up (leaf certificates, connection pools, the entry, the sqlite file).
    log "warm-up (200 requests per target and path)"
    run_hey 0 10 simple plain 200
    for t in $ENGINES; do
        run_hey 0 10 "$t" MISS 200
        run_hey 0 10 "$t" HIT 200
    done

    local rep c i k runs=()
    for t in simple $ENGINES; do
        if [[ "$t" == simple ]]; then runs+=("simple:plain"); else runs+=("$t:HIT" "$t:MISS"); fi
    done
    for ((rep = 1; rep <= REPEATS; rep++)); do
        for c in $CONC; do
            # rotate the order every repeat so that no run always comes first/last
            k=$(( (rep - 1) * 2 % ${#runs[@]} ))
            for i in "${runs[@]:$k}" "${runs[@]:0:$k}"; do
                run_hey "$rep" "$c" "${i%%:*}" "${i##*:}" "$N"
            done
        done
    done

    local versions="$TMP/versions.txt"
    {
        echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "nproc=$(nproc)"
        echo "cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
        echo "kernel=$(uname -r)"
        echo "llm_proxy=$("$BUILD/llm_proxy" --version 2>&1 | head -1)"
        echo "llm_proxy_git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' (+uncommitted changes)')"
        echo "redis=$(redis-server --version | awk '{print $3}' | sed 's/^v=//')"
        echo "sqlite=$(dpkg-query -W -f='${Version}' libsqlite3-0 2>/dev/null || echo '?')"
        echo "sqlite_fs=$(df -T "$TMP" | awk 'NR==2{print $2}')"
        echo "hey=$(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?')"
        echo "openssl=$(openssl version)"
        echo "settings=BENCH_N=$N BENCH_REPEATS=$REPEATS BENCH_CONC=\"$CONC\" BENCH_ENGINES=\"$ENGINES\""
        echo "wall_s=$(( $(date +%s) - started ))"
    } >"$versions"
    local R="bench/results/$RESULTS_NAME"
    cp "$RAW" "${R}_runs.tsv"
    report "$RAW" "$versions" "$R.md"
    cat "$R.md"
    ((BAD == 0)) || log "WARNING: some runs did not behave as expected (see the WARNING lines above)"
    log "done in $(( $(date +%s) - started )) s; $R.md"
}

main "$@"

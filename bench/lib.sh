# bench/lib.sh — helpers shared by the bench/*.sh scripts (sourced, not run).
# Expects from the caller: log, die, $ROOT, $BUILD, $TMP, the associative array PID and the
# array PIDS_TO_STOP (or bench_script_setup, which makes them). start_upstream sets UPORT.

# bench_script_setup TAG TMP_PREFIX: log/die printing "[TAG hh:mm:ss]", a fresh $TMP, PID and
# PIDS_TO_STOP, and a trap that stops every process in PIDS_TO_STOP and removes $TMP on exit.
bench_script_setup() {
    BENCH_TAG="$1"
    TMP="$(mktemp -d "/tmp/$2.XXXXXX")"
    declare -gA PID=()
    PIDS_TO_STOP=()
    trap bench_cleanup EXIT
}
# (scripts that define their own log/die before sourcing keep them)
declare -F log >/dev/null || log() { printf '[%s %s] %s\n' "${BENCH_TAG:-bench}" "$(date -u +%H:%M:%S)" "$*" >&2; }
declare -F die >/dev/null || die() { log "ERROR: $*"; exit 1; }
bench_cleanup() {
    local p
    for p in "${PIDS_TO_STOP[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}

build() {
    if [[ "${BENCH_SKIP_BUILD:-0}" == 1 && -x "$BUILD/llm_proxy" && -x "$BUILD/tests/fake_upstream" ]]; then
        log "reusing $BUILD/"
        return
    fi
    log "building Release in $BUILD/"
    local launcher=()
    command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLM_PROXY_BUILD_TESTS=ON "${launcher[@]}" >&2
    cmake --build "$BUILD" --target llm_proxy fake_upstream >&2
}

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {  # wait_port PORT PID NAME
    local i
    for ((i = 0; i < 200; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || die "$3 exited during start-up (see $TMP/$3.log)"
        sleep 0.05
    done
    die "$3 did not listen on 127.0.0.1:$1 within 10 s"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime+stime, all threads (live+dead)
# Nanoseconds on CPU (schedstat) of the live threads of process $1 named $2
# (pthread_setname_np), 0 when none: finer than the ticks of cpu_ticks.
thread_cpu_ns() {
    local t sum=0
    for t in /proc/"$1"/task/*; do
        [[ "$(cat "$t/comm" 2>/dev/null)" == "$2" ]] || continue
        sum=$((sum + $(awk '{print $1}' "$t/schedstat")))
    done
    echo "$sum"
}
hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
make_certs() {
    local d="$TMP/pki"
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
        -keyout "$d/testca.key" -out "$d/testca.pem" -subj "/CN=llm_proxy bench throwaway CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$d/server.key" -out "$d/server.csr" \
        -subj "/CN=localhost" 2>/dev/null
    cat >"$d/server.ext" <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:api.openai.com,DNS:*.bench.test,IP:127.0.0.1
EOF
    openssl x509 -req -in "$d/server.csr" -CA "$d/testca.pem" -CAkey "$d/testca.key" \
        -CAcreateserial -days 2 -sha256 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
}

start_upstream() {  # start_upstream [extra fake_upstream args...]; UPSTREAM_THREADS (default 1)
    "$BUILD/tests/fake_upstream" --cert "$TMP/pki/server.pem" --key "$TMP/pki/server.key" \
        --port 0 --threads "${UPSTREAM_THREADS:-1}" "$@" >"$TMP/upstream.out" 2>"$TMP/upstream.log" &
    PID[upstream]=$!
    PIDS_TO_STOP+=("$!")
    local i
    UPORT=""
    for ((i = 0; i < 200; i++)); do
        UPORT="$(awk '/^PORT /{print $2; exit}' "$TMP/upstream.out" 2>/dev/null || true)"
        [[ -n "$UPORT" ]] && break
        sleep 0.05
    done
    [[ -n "$UPORT" ]] || die "fake_upstream did not print PORT"
    log "fake_upstream pid ${PID[upstream]} on 127.0.0.1:$UPORT"
}

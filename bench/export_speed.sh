#!/usr/bin/env bash
# bench/export_speed.sh — how fast `llm_proxy export` turns records into each format, on one
# core, and how much memory it takes as the number of records grows.
#
# One command, from the repository root or anywhere:
#     bench/export_speed.sh > bench/results/export_speed.md
#
#   1. builds llm_proxy (Release, build-bench/) unless BENCH_SKIP_BUILD=1
#   2. writes BENCH_SMALL and BENCH_LARGE synthetic records (a fixed mix, the same for both
#      sets: OpenAI chat answers with the llm object, streamed chat with a tool call, Anthropic
#      messages, and records written before the llm object existed, whose call export computes
#      from the bodies; 2 to 6 messages each, about 3 KB per record)
#   3. runs `taskset -c 0 llm_proxy export DIR --format F -o OUT --no-progress` for each format
#      (and openai-chat with --dedupe --longest) BENCH_REPEATS times per set, and reports the
#      medians of records per second of CPU time (user+sys, /usr/bin/time: what one core does),
#      of wall time, and the peak RSS (maximum resident set size)
#
# Environment: BENCH_SMALL=20000 BENCH_LARGE=200000 BENCH_REPEATS=3 BENCH_BUILD_DIR=build-bench
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SMALL="${BENCH_SMALL:-20000}"
LARGE="${BENCH_LARGE:-200000}"
REPEATS="${BENCH_REPEATS:-3}"
BUILD="${BENCH_BUILD_DIR:-build-bench}"
PY=/usr/bin/python3
TMP="$(mktemp -d /tmp/llm_proxy_export_bench.XXXXXX)"
PIDS_TO_STOP=()

log() { printf '[export-bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

source "$ROOT/bench/lib.sh"
for tool in taskset bc; do command -v "$tool" >/dev/null || die "$tool is missing"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
build

generate() {  # generate DIR COUNT
    "$PY" - "$1" "$2" <<'EOF'
import json, os, random, sys
out, count = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
rng = random.Random(42)
words = ("the quick brown fox jumps over lazy dog paris weather time city river museum "
         "train ticket price book hotel room night day morning evening rain sun cloud").split()
def text(n):
    return " ".join(rng.choice(words) for _ in range(n)).capitalize() + "."
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}}]
def record(i, url, req, status, body, ctype, llm):
    r = {"connection_stats": {"client_address": "127.0.0.1:53122", "duration_ms": 300 + i % 700,
                              "proxy_id": "0b7c5d0e-3f2a-4c61-9a8e-5d4f2b1c7e90", "url": url},
         "object_type": "llm_proxy_traffic_log", "schema": "v2",
         "timestamp": "2026-11-%02dT%02d:%02d:%02d.%06dZ" % (1 + i % 28, i % 24, i % 60, (i // 60) % 60, i % 1000000),
         "request": {"body": json.dumps(req), "method": "POST", "proto": "HTTP/1.1", "url": url,
                     "header": {"Accept": ["application/json"], "Content-Type": ["application/json"],
                                "Host": [url.split("/")[2]], "User-Agent": ["OpenAI/Python 1.54.4"]}},
         "response": {"body": body, "status": status,
                      "header": {"Content-Type": [ctype], "Date": ["Fri, 27 Nov 2026 05:23:07 GMT"],
                                 "Server": ["cloudflare"]}}}
    if llm is not None:
        r["llm"] = llm
    return r
def chat_llm(model, answer, calls, pin, pout, stream):
    out = {"role": "assistant", "content": answer}
    if calls:
        out["tool_calls"] = calls
    return {"provider": "openai", "api": "chat_completions", "request_model": "gpt-4o-mini",
            "response_model": model, "stream": stream,
            "usage": {"input_tokens": pin, "output_tokens": pout},
            "cost_usd": {"input": 0.0000153, "output": 0.0000054, "total": 0.0000207},
            "priced_as": "gpt-4o-mini", "output": out,
            "finish_reason": "tool_calls" if calls else "stop", "first_token_ms": 180 + i % 300,
            "incomplete": False}
for i in range(count):
    kind = i % 4
    turns = 1 + i % 3
    msgs = [{"role": "system", "content": "You are a helpful travel assistant. " + text(12)}]
    for t in range(turns):
        msgs.append({"role": "user", "content": text(20 + t)})
        if t + 1 < turns:
            msgs.append({"role": "assistant", "content": text(30)})
    answer = text(40) + " #%d" % i
    model = "gpt-4o-mini-2024-07-18"
    if kind == 0 or kind == 3:
        body = {"id": "chatcmpl-%d" % i, "object": "chat.completion", "created": 1764480000,
                "model": model, "choices": [{"index": 0, "message": {"role": "assistant",
                "content": answer, "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100 + i % 50, "completion_tokens": 40,
                          "total_tokens": 140 + i % 50}, "system_fingerprint": "fp_0ba0d124f1"}
        llm = chat_llm(model, answer, None, 100 + i % 50, 40, False) if kind == 0 else None
        r = record(i, "https://api.openai.com/v1/chat/completions",
                   {"model": "gpt-4o-mini", "messages": msgs}, 200, json.dumps(body, indent=2),
                   "application/json", llm)
    elif kind == 1:
        call = {"id": "call_%d" % i, "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
        chunks = [{"id": "chatcmpl-%d" % i, "object": "chat.completion.chunk", "model": model,
                   "choices": [{"index": 0, "delta": {"role": "assistant", "content": None,
                   "tool_calls": [{"index": 0, **call, "function": {"name": "get_weather", "arguments": ""}}]},
                   "finish_reason": None}]}]
        for piece in ["{\"city\":", "\"Paris\"}"]:
            chunks.append({"id": "chatcmpl-%d" % i, "object": "chat.completion.chunk", "model": model,
                           "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
                           "function": {"arguments": piece}}]}, "finish_reason": None}]})
        chunks.append({"id": "chatcmpl-%d" % i, "object": "chat.completion.chunk", "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        sse = "".join("data: " + json.dumps(c) + "\n\n" for c in chunks) + "data: [DONE]\n\n"
        r = record(i, "https://api.openai.com/v1/chat/completions",
                   {"model": "gpt-4o-mini", "stream": True, "messages": msgs, "tools": tools},
                   200, sse, "text/event-stream", chat_llm(model, None, [call], 120, 15, True))
    else:
        amsgs = [m for m in msgs if m["role"] != "system"]
        body = {"id": "msg_%d" % i, "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-20250514", "content": [{"type": "text", "text": answer}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 90, "output_tokens": 45}}
        llm = {"provider": "anthropic", "api": "messages", "request_model": "claude-sonnet-4-0",
               "response_model": "claude-sonnet-4-20250514", "stream": False,
               "usage": {"input_tokens": 90, "output_tokens": 45}, "cost_usd": None,
               "output": {"role": "assistant", "content": answer}, "finish_reason": "end_turn",
               "first_token_ms": 400, "incomplete": False}
        r = record(i, "https://api.anthropic.com/v1/messages",
                   {"model": "claude-sonnet-4-0", "max_tokens": 1024, "system": msgs[0]["content"],
                    "messages": amsgs}, 200, json.dumps(body), "application/json", llm)
    with open(os.path.join(out, "%08d-%04x.json" % (i, rng.randrange(65536))), "w") as f:
        json.dump(r, f, indent=2, sort_keys=True)
EOF
}

measure() {  # measure DIR N ARGS... -> "cpu_rate wall_rate peak_rss_mib" medians
    local dir="$1" n="$2" r cpu=() wall=() rss=()
    shift 2
    find "$dir" -name '*.json' -exec cat {} + >/dev/null  # warm the page cache
    for ((r = 0; r < REPEATS; ++r)); do
        local out
        out="$(/usr/bin/time -f '%U %S %e %M' taskset -c 0 "$BUILD/llm_proxy" export "$dir" \
            -o "$TMP/out" --no-progress "$@" 2>&1 >/dev/null | tail -1)"
        read -r u s e m <<<"$out"
        cpu+=("$(echo "$n / ($u + $s)" | bc)")
        wall+=("$(echo "$n / $e" | bc)")
        rss+=("$(echo "scale=1; $m / 1024" | bc)")
    done
    local mid=$(((REPEATS + 1) / 2))
    echo "$(printf '%s\n' "${cpu[@]}" | sort -n | sed -n "${mid}p")" \
        "$(printf '%s\n' "${wall[@]}" | sort -n | sed -n "${mid}p")" \
        "$(printf '%s\n' "${rss[@]}" | sort -n | sed -n "${mid}p")"
}

log "generating $SMALL and $LARGE records"
generate "$TMP/small" "$SMALL"
generate "$TMP/large" "$LARGE"
bytes_small="$(find "$TMP/small" -name '*.json' -printf '%s\n' | awk '{s += $1} END {print s}')"

rows=""
for args in "--format openai-chat" "--format anthropic" "--format jsonl" "--format har" \
    "--format openai-chat --dedupe --longest"; do
    log "export $args"
    # shellcheck disable=SC2086
    read -r c1 w1 m1 <<<"$(measure "$TMP/small" "$SMALL" $args)"
    # shellcheck disable=SC2086
    read -r c2 w2 m2 <<<"$(measure "$TMP/large" "$LARGE" $args)"
    rows+="| \`$args\` | $c1 | $w1 | $m1 | $c2 | $w2 | $m2 |"$'\n'
done
load="$(cut -d' ' -f1-3 /proc/loadavg)"

cat <<EOF
## llm_proxy export: records per second on one core, memory

Run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $("$BUILD/llm_proxy" --version | head -1), git $(git rev-parse --short HEAD).
Synthetic records (bench/export_speed.sh: OpenAI chat with the llm object, streamed chat with a tool call, Anthropic messages, and records without the llm object, a quarter each; $((bytes_small / SMALL)) bytes per record on average), $REPEATS runs each, medians; \`taskset -c 0\`, page cache warm. Load average at the end: $load.

| export | $SMALL records: records/s (CPU) | records/s (wall) | peak RSS MiB | $LARGE records: records/s (CPU) | records/s (wall) | peak RSS MiB |
|---|---:|---:|---:|---:|---:|---:|
$rows
EOF

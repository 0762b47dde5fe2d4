#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets to fuzz/corpus/<target>/.

Run from anywhere: python3 fuzz/make_corpus.py. Needs openssl (test CA keys made here, never
used anywhere else), libbrotlienc and libzstd (through ctypes) and Python's zlib. The seeds are
committed; rerunning rewrites them (the CA keys change, everything else is deterministic).

Targets that read their input with libFuzzer's FuzzedDataProvider take integers from the end
of the input and bytes from the front: `fdp(front, ends)` lays a seed out that way, `ends` in
the order the target consumes them (one byte each).
"""
import ctypes
import gzip
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import zlib

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def brotli(data: bytes) -> bytes:
    lib = ctypes.CDLL("libbrotlienc.so.1")
    out = ctypes.create_string_buffer(len(data) + 1024)
    size = ctypes.c_size_t(len(out))
    ok = lib.BrotliEncoderCompress(5, 22, 0, ctypes.c_size_t(len(data)), data, ctypes.byref(size), out)
    assert ok
    return out.raw[: size.value]


def zstd(data: bytes) -> bytes:
    lib = ctypes.CDLL("libzstd.so.1")
    lib.ZSTD_compressBound.restype = ctypes.c_size_t
    lib.ZSTD_compress.restype = ctypes.c_size_t
    cap = lib.ZSTD_compressBound(ctypes.c_size_t(len(data)))
    out = ctypes.create_string_buffer(cap)
    n = lib.ZSTD_compress(out, ctypes.c_size_t(cap), data, ctypes.c_size_t(len(data)), 3)
    return out.raw[:n]


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def deflate(data: bytes) -> bytes:
    return zlib.compress(data)


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


def fdp(front: bytes, ends) -> bytes:
    return front + bytes(reversed([e & 0xFF for e in ends]))


# Inputs that campaigns found and that stay in the corpora as regression inputs (see
# docs/reliability.md, "Crashes found and fixed"): kept when the seeds are written again.
KEPT_PREFIXES = ("crash-", "check-", "oom-", "stale-", "zstd-content-size-cut")


def write(target: str, seeds):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.iterdir():
        if not old.name.startswith(KEPT_PREFIXES):
            old.unlink()
    for name, data in seeds:
        if isinstance(data, str):
            data = data.encode()
        (d / name).write_bytes(data)


CHAT_REQ = b'{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hi"}]}'
ANTH_REQ = b'{"model":"claude-3-5-haiku-20241022","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hi"}]}'
GEMINI_REQ = b'{"contents":[{"role":"user","parts":[{"text":"Say hi"}]}]}'
RESP_REQ = b'{"model":"gpt-4.1-mini","input":"Say hi","stream":true}'

OPENAI_SSE = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"Hi \xf0\x9f\x91\x8b"},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\\"a\\""}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}\n\n'
    b"data: [DONE]\n\n"
)
OPENAI_JSON = b'{"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}'
OPENAI_ERROR = b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}'
ANTH_SSE = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[],"stop_reason":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b"event: ping\ndata: {\"type\": \"ping\"}\n\n"
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi!"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":4}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)
ANTH_THINKING = (
    b'event: message_start\r\ndata: {"type":"message_start","message":{"id":"msg_2","model":"claude-sonnet-4-20250514","usage":{"input_tokens":40,"output_tokens":1}}}\r\n\r\n'
    b'event: content_block_start\r\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}\r\n\r\n'
    b'event: content_block_delta\r\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}\r\n\r\n'
    b'event: content_block_start\r\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get","input":{}}}\r\n\r\n'
    b'event: content_block_delta\r\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"q\\": 1}"}}\r\n\r\n'
    b'event: error\r\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\r\n\r\n'
)
GEMINI_SSE = (
    b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3},"modelVersion":"gemini-2.0-flash"}\r\n\r\n'
    b'data: {"candidates":[{"content":{"parts":[{"text":" there"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5,"thoughtsTokenCount":4,"cachedContentTokenCount":1},"modelVersion":"gemini-2.0-flash"}\r\n\r\n'
)
GEMINI_ARRAY = b'[{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"}}],"modelVersion":"gemini-1.5-pro"}\n,\r\n{"candidates":[{"content":{"parts":[{"text":"!"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":2,"totalTokenCount":4}}\n]'
RESPONSES_SSE = (
    b'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1","model":"gpt-4.1-mini-2025-04-14","status":"in_progress"}}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"Hi"}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_1","model":"gpt-4.1-mini-2025-04-14","status":"completed","usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6,"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":0}}}}\n\n'
)
TEXT = b"The quick brown fox jumps over the lazy dog. " * 8 + "caf\u00e9 \u2603\n".encode()


def engine_client():
    chat = CHAT_REQ
    seeds = [
        ("get_absolute", "GET http://upstream.test/cl HTTP/1.1\r\nHost: upstream.test\r\nUser-Agent: fuzz\r\n\r\n"),
        ("post_length_llm", b"POST http://api.openai.com/v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer sk-test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(chat), chat)),
        ("post_chunked_trailers", b"POST http://upstream.test/echo HTTP/1.1\r\nHost: upstream.test\r\nTransfer-Encoding: chunked\r\n\r\n4;name=v\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n"),
        ("pipelined", "GET http://upstream.test/chunked HTTP/1.1\r\nHost: upstream.test\r\n\r\nHEAD http://upstream.test/cl HTTP/1.1\r\nHost: upstream.test\r\n\r\nGET http://upstream.test/204 HTTP/1.1\r\nHost: upstream.test\r\n\r\nGET http://upstream.test/304 HTTP/1.1\r\nHost: upstream.test\r\nIf-None-Match: \"x\"\r\n\r\n"),
        ("connect_plain_inside", "CONNECT upstream.test:80 HTTP/1.1\r\nHost: upstream.test:80\r\n\r\nGET /sse HTTP/1.1\r\nHost: upstream.test\r\n\r\nGET /gzip HTTP/1.1\r\nHost: upstream.test\r\nAccept-Encoding: gzip\r\n\r\n"),
        ("connect_blind", "CONNECT blind.test:443 HTTP/1.1\r\nHost: blind.test:443\r\n\r\nopaque bytes through the tunnel"),
        ("connect_tls_garbage", b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"),
        ("expect_continue", "POST http://upstream.test/continue HTTP/1.1\r\nHost: upstream.test\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\nhello world"),
        ("http10_close", "GET http://upstream.test/close HTTP/1.0\r\n\r\n"),
        ("early_hints", "GET http://upstream.test/early-hints HTTP/1.1\r\nHost: upstream.test\r\n\r\n"),
        ("upgrade", "GET http://upstream.test/switch HTTP/1.1\r\nHost: upstream.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nclient bytes after"),
        ("origin_form_no_host", "GET /relative HTTP/1.1\r\n\r\n"),
        ("bad_chunk", "POST http://upstream.test/echo HTTP/1.1\r\nHost: upstream.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"),
        ("cl_and_te", "POST http://upstream.test/echo HTTP/1.1\r\nHost: upstream.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        ("truncated_body", "POST http://upstream.test/echo HTTP/1.1\r\nHost: upstream.test\r\nContent-Length: 100\r\n\r\nshort"),
        ("anthropic_gzip_body", b"POST http://api.anthropic.com/v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(gz(ANTH_REQ)) + gz(ANTH_REQ)),
        ("gemini_sse", b"POST http://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse HTTP/1.1\r\nHost: generativelanguage.googleapis.com\r\nContent-Length: %d\r\n\r\n%s" % (len(GEMINI_REQ), GEMINI_REQ)),
        ("options_star", "OPTIONS * HTTP/1.1\r\nHost: upstream.test\r\n\r\n"),
        ("proxy_headers", "GET http://upstream.test:8080/cl?q=1 HTTP/1.1\r\nHost: other.test\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic dTpw\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\r\n"),
    ]
    write("fuzz_engine_client", seeds)


def engine_upstream():
    sse = OPENAI_SSE
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(sse[i:i + 300]), sse[i:i + 300]) for i in range(0, len(sse), 300))
    seeds = [
        ("cl", b"\x00HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"),
        ("head_cl", b"\x01HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"),
        ("openai_sse_chunked", b"\x02HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-Trailer: t\r\n\r\n"),
        ("anthropic_sse_close", b"\x03HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + ANTH_SSE),
        ("inside_tunnel", b"\x04HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ("http10", b"\x05HTTP/1.0 200 OK\r\n\r\nclose-delimited body"),
        ("gemini_gzip", b"\x06HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(gz(GEMINI_SSE)) + gz(GEMINI_SSE)),
        ("pipelined_second", b"\x07HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"),
        ("continue_then_200", b"\x08HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        ("responses_br", b"\x09HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: br\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(brotli(RESPONSES_SSE)) + brotli(RESPONSES_SSE) + b"\r\n0\r\n\r\n"),
        ("json_zstd", b"\x02HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: zstd\r\nContent-Length: %d\r\n\r\n" % len(zstd(OPENAI_JSON)) + zstd(OPENAI_JSON)),
        ("error_401", b"\x02HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(OPENAI_ERROR), OPENAI_ERROR)),
        ("cl_and_te", b"\x00HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        ("two_cl", b"\x00HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        ("204_with_body", b"\x00HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc"),
        ("switching", b"\x00HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframes"),
        ("truncated_chunk", b"\x02HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort"),
        ("obs_fold", b"\x00HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    ]
    write("fuzz_engine_upstream", seeds)


def body_decoder():
    seeds = []
    samples = [("gzip", 0, gz), ("deflate", 1, deflate), ("br", 2, brotli), ("zstd", 3, zstd)]
    for name, idx, enc in samples:
        data = enc(TEXT)
        # mode 0, limit bool -> big, pick a named coding, index idx
        seeds.append((f"{name}_whole", fdp(data, [0, 1, 1, idx])))
        seeds.append((f"{name}_cut", fdp(data[: len(data) // 2], [0, 1, 1, idx])))
        seeds.append((f"{name}_roundtrip", fdp(TEXT, [1, 1, idx, idx, 0, 7])))
    seeds.append(("raw_deflate", fdp(raw_deflate(TEXT), [0, 1, 1, 1])))
    seeds.append(("gzip_then_br", fdp(brotli(gz(TEXT)), [0, 1, 1, 6])))
    seeds.append(("br_then_gzip", fdp(gz(brotli(TEXT)), [0, 1, 1, 7])))
    seeds.append(("stacked_roundtrip", fdp(TEXT, [2, 1, 0, 3, 0, 5])))
    seeds.append(("capped", fdp(gz(TEXT * 4), [0, 0, 40, 0, 1, 0])))
    seeds.append(("gzip_members", fdp(gz(b"one") + gz(b"two"), [0, 1, 1, 0])))
    write("fuzz_body_decoder", seeds)


def stream_decoder():
    seeds = []
    for name, idx, enc in [("gzip", 0, gz), ("deflate", 1, deflate), ("br", 2, brotli), ("zstd", 3, zstd)]:
        data = enc(TEXT)
        seeds.append((name, fdp(data, [1, idx, 1, 4, 7, 1, 30, 2])))
        seeds.append((name + "_truncated", fdp(data[:-5], [1, idx, 1, 0])))
    seeds.append(("gzip_br", fdp(brotli(gz(TEXT)), [1, 6, 1, 2, 3, 50])))
    seeds.append(("zstd_gzip", fdp(gz(zstd(TEXT)), [1, 7, 0, 10, 0])))
    seeds.append(("raw_deflate", fdp(raw_deflate(TEXT), [1, 1, 1, 0])))
    write("fuzz_stream_decoder", seeds)


def record_render():
    seeds = [
        ("plain", b"id-1\\;127.0.0.1:5555\\;POST\\;https\\;api.openai.com\\;/v1/chat/completions\\;" + CHAT_REQ + b"\\;" + b"\x01" * 40),
        ("utf8_mixed", "m\u00e9thode\\;h\u00f4te\\;/\u2603\\;caf\u00e9\\;".encode() + b"\xff\xfe\xc3(\\;" + b"\x00\x01\x02\x03" * 10),
        ("gzip_body", b"x\\;y\\;GET\\;http\\;h\\;/\\;" + gz(b'{"a":1}') + b"\\;" + b"\x02" * 30),
    ]
    write("fuzz_record_render", seeds)


def ca_loader():
    tmp = pathlib.Path(tempfile.mkdtemp())
    try:
        def run(*args):
            subprocess.run(args, check=True, cwd=tmp, capture_output=True)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out", "rsa.crt",
            "-days", "3650", "-subj", "/CN=llm_proxy fuzz test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            "ec.key", "-out", "ec.crt", "-days", "3650", "-subj", "/CN=llm_proxy fuzz test EC CA",
            "-addext", "basicConstraints=critical,CA:TRUE")
        run("openssl", "pkey", "-in", "rsa.key", "-traditional", "-out", "rsa_trad.key")
        run("openssl", "ec", "-in", "ec.key", "-out", "ec_trad.key")
        run("openssl", "pkcs8", "-topk8", "-in", "rsa.key", "-passout", "pass:x", "-out", "rsa_enc.key")
        r = lambda n: (tmp / n).read_bytes()
        seeds = [
            ("mitm_rsa_pkcs8", b"\x00" + r("rsa.key") + r("rsa.crt")),
            ("mitm_rsa_traditional", b"\x00" + r("rsa_trad.key") + r("rsa.crt")),
            ("mitm_ec", b"\x00" + r("ec.key") + r("ec.crt")),
            ("mitm_cert_first", b"\x00" + r("ec.crt") + r("ec_trad.key")),
            ("mitm_mismatch", b"\x00" + r("rsa.key") + r("ec.crt")),
            ("mitm_encrypted", b"\x00" + r("rsa_enc.key") + r("rsa.crt")),
            ("recipe_rsa", b"\x01" + r("rsa_trad.key") + b"\n====\n" + r("rsa.crt")),
            ("recipe_ec", b"\x01" + r("ec.key") + b"\n====\n" + r("ec.crt")),
            ("recipe_no_cert", b"\x01" + r("ec.key")),
            ("mitm_truncated", b"\x00" + r("rsa.key")[:400]),
        ]
        write("fuzz_ca_loader", seeds)
    finally:
        shutil.rmtree(tmp)


def redis_url():
    seeds = [
        "redis://127.0.0.1:6379/0", "redis://localhost", "redis://:secret@cache.internal:6380/3",
        "redis://alice:p%40ss@[::1]:6380/2", "redis://alice:p@ss:w0rd@host/1", "unix:///run/redis.sock",
        "unix:///run/redis/redis.sock?db=4&user=bob&password=pw", "rediss://host", "redis://[fe80::1%25eth0]:1/0",
        "redis://host:99999/0", "redis://host/2147483648", "unix://relative?db=1",
    ]
    write("fuzz_redis_url", [(hashlib.sha1(s.encode()).hexdigest()[:12], s) for s in seeds])


def redis_reply():
    replies = [
        b"+OK\r\n", b"-NOSCRIPT No matching script. Please use EVAL.\r\n", b":42\r\n", b"$5\r\nhello\r\n", b"$-1\r\n",
        b"*2\r\n$1\r\n0\r\n*3\r\n$3\r\nk:1\r\n$3\r\nk:2\r\n$14\r\nllm_proxy:lru\r\n", b"*-1\r\n",
        b"_\r\n", b",3.14\r\n", b"#t\r\n", b"%1\r\n+key\r\n:1\r\n", b"~2\r\n:1\r\n:2\r\n", b">2\r\n+message\r\n+x\r\n",
        b"=15\r\ntxt:Some string\r\n", b"(3492890328409238509324850943850943825024385\r\n", b"!21\r\nSYNTAX invalid syntax\r\n",
        b"*3\r\n*1\r\n*1\r\n:1\r\n$0\r\n\r\n-ERR x\r\n",
    ]
    seeds = [(f"reply{i}", fdp(r, [len(r) - 1, 10, 10, 10])) for i, r in enumerate(replies)]
    seeds.append(("pipelined", fdp(b"".join(replies[:6]), [7, 13, 1, 64, 2, 30, 5, 64, 64, 64])))
    write("fuzz_redis_reply", seeds)


def sse():
    seeds = [
        ("openai", fdp(OPENAI_SSE, [255, 6, 3, 17, 1, 40, 2, 9])),
        ("anthropic", fdp(ANTH_SSE, [200, 3, 5, 1, 31])),
        ("crlf_gemini", fdp(GEMINI_SSE, [255, 4, 1, 1, 1, 1])),
        ("cr_only_bom", fdp(b"\xef\xbb\xbfevent: a\rdata: 1\rdata: 2\r\r: comment\rid: 7\rretry: 10\rdata\r\rdata: x", [64, 2, 2, 7])),
        ("oversized", fdp(b"data: " + b"x" * 100 + b"\n\ndata: small\n\n", [16, 1, 9])),
    ]
    write("fuzz_sse", seeds)


def llm_parser():
    # ends: line index, body_complete, custom limits (0: no), pieces, cuts...
    seeds = [
        ("openai_stream", fdp(CHAT_REQ + b"\\;" + OPENAI_SSE, [0, 1, 0, 5, 7, 33, 1, 48, 20])),
        ("openai_json", fdp(b'{"model":"gpt-4o"}\\;' + OPENAI_JSON, [0, 1, 0, 0])),
        ("openai_error", fdp(b'{"model":"gpt-4o"}\\;' + OPENAI_ERROR, [0, 1, 0, 0])),
        ("responses_stream", fdp(RESP_REQ + b"\\;" + RESPONSES_SSE, [2, 1, 0, 2, 11, 40])),
        ("anthropic_stream", fdp(ANTH_REQ + b"\\;" + ANTH_SSE, [4, 1, 0, 3, 13, 2, 47])),
        ("anthropic_thinking_cut", fdp(ANTH_REQ + b"\\;" + ANTH_THINKING, [4, 0, 0, 1, 19])),
        ("gemini_sse", fdp(GEMINI_REQ + b"\\;" + GEMINI_SSE, [5, 1, 0, 2, 5, 5])),
        ("gemini_array", fdp(GEMINI_REQ + b"\\;" + GEMINI_ARRAY, [6, 1, 0, 4, 1, 2, 3, 4])),
        ("gemini_json", fdp(GEMINI_REQ + b"\\;" + GEMINI_ARRAY[1:GEMINI_ARRAY.index(b"\n")], [7, 1, 0, 0])),
        ("gateway_stream_limits", fdp(CHAT_REQ + b"\\;" + OPENAI_SSE, [8, 1, 1, 0, 0, 200, 1, 100, 1, 1, 2, 9])),
        ("embeddings", fdp(b'{"model":"text-embedding-3-small","input":"x"}\\;{"object":"list","data":[],"model":"text-embedding-3-small","usage":{"prompt_tokens":1,"total_tokens":1}}', [3, 1, 0, 0])),
    ]
    write("fuzz_llm_parser", seeds)


def price_match():
    table = b'[{"id":"p","name":"P","api_pattern":"https://api\\\\.p\\\\.com","models":[{"id":"m1","match":{"or":[{"starts_with":"m1"},{"regex":"^m-?1$"}]},"prices":{"input_mtok":1.5,"output_mtok":{"base":2,"tiers":[{"start":1000,"price":3}]}}},{"id":"m2","match":{"equals":"m2"},"prices":[{"prices":{"input_mtok":1}},{"constraint":{"start_date":"2025-01-01","start_time":"08:00:00Z","end_time":"20:00:00Z"},"prices":{"input_mtok":0.5,"requests_kcount":1}}]}]}]'
    seeds = [
        ("builtin_gpt4o", fdp(b"gpt-4o-2024-08-06\\;", [0, 1, 1, 200, 1, 1, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        ("builtin_claude", fdp(b"claude-3-5-sonnet-latest\\;", [1, 1, 1, 50, 1, 1, 9, 1, 1, 3])),
        ("builtin_gemini", fdp(b"models/gemini-1.5-pro-002\\;", [0, 1, 0, 255, 255, 255, 255, 255, 255, 255, 255])),
        ("clause_or", fdp(b'{"or":[{"starts_with":"gpt-4o"},{"regex":"^o[13](-mini)?$"},{"and":[{"contains":"x"},{"ends_with":"y"}]}]}\\;gpt-4o-mini\\;o3-mini\\;xy\\;', [2])),
        ("clause_regex_bad", fdp(b'{"regex":"(unclosed"}\\;', [2])),
        ("table", fdp(table + b"\\;m1\\;", [3, 1, 1, 100, 1, 1, 10])),
        ("table_bad_price", fdp(b'[{"id":"p","name":"P","api_pattern":"x","models":[{"id":"m","match":{"equals":"m"},"prices":{"input_mtok":"1e999"}}]}]\\;', [3])),
    ]
    write("fuzz_price_match", seeds)


def http_framing():
    seeds = [
        ("chunked", fdp(b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-A: b\r\n\r\nNEXT", [0, 1, 1, 3, 5, 7, 11])),
        ("chunked_bad_lf", fdp(b"3\nabc\r\n0\r\n\r\n", [0, 1, 1, 0])),
        ("chunked_big_size", fdp(b"fffffffffffffffff\r\n", [0, 1, 1, 0])),
        ("chunked_truncated", fdp(b"a\r\n01234", [0, 1, 1, 0])),
        ("length", fdp(b"hello worldEXTRA", [1, 1, 11, 1, 2, 3, 4])),
        ("until_close", fdp(b"everything until the end", [2, 1, 0, 1, 2, 9])),
        ("trailer_fold", fdp(b"0\r\nA: b\r\n c\r\n\r\n", [0, 1, 1, 0])),
    ]
    write("fuzz_http_framing", seeds)


if __name__ == "__main__":
    engine_client()
    engine_upstream()
    body_decoder()
    stream_decoder()
    record_render()
    ca_loader()
    redis_url()
    redis_reply()
    sse()
    llm_parser()
    price_match()
    http_framing()
    print("seeds written to", ROOT)

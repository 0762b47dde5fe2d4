#!/usr/bin/env python3
"""Connection-level benchmarks through an intercepting proxy (loopback only).

idle  (scenario D): opens N intercepted connections (CONNECT + TLS + one keep-alive request,
      so the proxy also holds the upstream side), keeps them all open, and reports the
      proxy's RSS growth per connection.
      With --blind the proxy relays each CONNECT as a blind tunnel (llm_proxy --ignore-hosts .,
      or tinyproxy): the TLS handshake is with the upstream itself, so --ca must be the
      upstream's CA alone (the proxy's CA is not trusted: a handshake that succeeds saw the
      upstream's certificate, not a minted one). The request and the idle period are the same.
hosts (scenario F): opens one new connection per host name h<i>.<domain> (a leaf certificate
      minted per name) and, for comparison, new connections to a name whose leaf is already
      cached; reports the p50/p99 time to the first response of each kind. Meanwhile a probe
      connection sends keep-alive requests back to back and reports its worst latency, which
      shows whether minting ever stalls the event loop.

Output: one JSON object on stdout.
"""
import argparse
import json
import resource
import socket
import ssl
import statistics
import threading
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_tunnel(proxy_host, proxy_port, host, port, ctx, timeout=10.0):
    s = socket.create_connection((proxy_host, proxy_port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("proxy closed the CONNECT")
        head += chunk
    if b" 200" not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"CONNECT failed: {head[:80]!r}")
    return ctx.wrap_socket(s, server_hostname=host)


def request(tls, host, path="/v1/models"):
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = tls.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = tls.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed in the body")
        body += chunk
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        raise RuntimeError(f"status {status}")
    return status


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def idle(args, ctx):
    before = rss_kib(args.pid)
    conns = []
    t0 = time.monotonic()
    for i in range(args.n):
        tls = open_tunnel(args.proxy_host, args.proxy_port, args.host, args.port, ctx)
        request(tls, args.host)
        conns.append(tls)
        if time.monotonic() - t0 > args.time_limit:
            break
    time.sleep(args.settle)
    after = rss_kib(args.pid)
    opened = len(conns)
    # Whose certificate the client verified: the upstream's through a blind tunnel, a leaf of
    # the proxy's CA when it intercepts.
    issuer = dict(x[0] for x in conns[0].getpeercert()["issuer"]).get("commonName") if conns else None
    # Every connection still works after the idle period.
    alive = 0
    for tls in conns[:: max(1, opened // 20)]:
        try:
            request(tls, args.host)
            alive += 1
        except Exception:
            pass
    for tls in conns:
        tls.close()
    return {
        "mode": "idle",
        "blind": args.blind,
        "peer_issuer": issuer,
        "opened": opened,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": round((after - before) / max(1, opened), 1),
        "checked_alive": alive,
        "seconds": round(time.monotonic() - t0, 2),
    }


def hosts(args, ctx):
    stop = threading.Event()
    probe_lat = []

    def probe():
        tls = open_tunnel(args.proxy_host, args.proxy_port, args.host, args.port, ctx)
        request(tls, args.host)
        while not stop.is_set():
            t = time.perf_counter()
            request(tls, args.host)
            probe_lat.append((time.perf_counter() - t) * 1000.0)
            time.sleep(0.001)
        tls.close()

    def first_response_ms(host):
        """(ms until the TLS handshake with the proxy is done, ms until the first response).
        The handshake waits for the leaf certificate; the response also waits for the proxy's
        first upstream connection to that host name."""
        t = time.perf_counter()
        tls = open_tunnel(args.proxy_host, args.proxy_port, host, args.port, ctx)
        hs = (time.perf_counter() - t) * 1000.0
        request(tls, host)
        ms = (time.perf_counter() - t) * 1000.0
        tls.close()
        return hs, ms

    warm_host = f"warm.{args.domain}"
    first_response_ms(warm_host)  # mints the warm host's leaf
    # Probe latency with nothing else going on.
    baseline = []
    th = threading.Thread(target=probe)
    th.start()
    time.sleep(1.0)
    baseline = list(probe_lat)
    probe_lat.clear()
    new_hs, new_ms, warm_hs, warm_ms = [], [], [], []
    t0 = time.monotonic()
    for i in range(args.n):
        hs, ms = first_response_ms(f"h{i:05d}-{args.run_id}.{args.domain}")
        new_hs.append(hs)
        new_ms.append(ms)
        hs, ms = first_response_ms(warm_host)
        warm_hs.append(hs)
        warm_ms.append(ms)
        if time.monotonic() - t0 > args.time_limit:
            break
    during = list(probe_lat)
    stop.set()
    th.join()
    p50_new, p50_warm = statistics.median(new_ms), statistics.median(warm_ms)
    return {
        "mode": "hosts",
        "hosts": len(new_ms),
        "new_host_handshake_p50_ms": round(statistics.median(new_hs), 3),
        "cached_host_handshake_p50_ms": round(statistics.median(warm_hs), 3),
        "minting_added_p50_ms": round(statistics.median(new_hs) - statistics.median(warm_hs), 3),
        "new_host_p50_ms": round(p50_new, 3),
        "new_host_p99_ms": round(percentile(new_ms, 99), 3),
        "cached_host_p50_ms": round(p50_warm, 3),
        "cached_host_p99_ms": round(percentile(warm_ms, 99), 3),
        "added_p50_ms": round(p50_new - p50_warm, 3),
        "probe_idle_p50_ms": round(statistics.median(baseline), 3) if baseline else None,
        "probe_idle_max_ms": round(max(baseline), 3) if baseline else None,
        "probe_during_p50_ms": round(statistics.median(during), 3) if during else None,
        "probe_during_p99_ms": round(percentile(during, 99), 3) if during else None,
        "probe_during_max_ms": round(max(during), 3) if during else None,
        "probe_requests": len(during),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=["idle", "hosts"])
    ap.add_argument("--proxy-host", default="127.0.0.1")
    ap.add_argument("--proxy-port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="proxy process id (RSS)")
    ap.add_argument("--ca", required=True,
                    help="CA certificates the client trusts (PEM): the proxy's, or with --blind "
                         "the upstream's alone")
    ap.add_argument("--blind", action="store_true",
                    help="idle mode: the proxy relays CONNECT blind (recorded in the output)")
    ap.add_argument("--host", default="localhost", help="idle mode / probe: target host")
    ap.add_argument("--port", type=int, required=True, help="target port")
    ap.add_argument("--domain", default="bench.test", help="hosts mode: h<i>.<domain>")
    ap.add_argument("--run-id", default="0", help="hosts mode: makes names unique per run")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=1.0, help="idle mode: seconds before RSS")
    ap.add_argument("--time-limit", type=float, default=120.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.create_default_context(cafile=args.ca)
    result = idle(args, ctx) if args.mode == "idle" else hosts(args, ctx)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

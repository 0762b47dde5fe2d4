#!/usr/bin/python3
"""Scenario C: SSE time-to-first-event and per-event latency, directly or through a proxy.

Uses Debian's /usr/bin/python3 with python3-httpx (0.23; `proxies=`, newer httpx `proxy=`).
One httpx.Client (one keep-alive connection) runs --streams streaming chat completions one after
the other against the fake upstream, which sends --events events --interval-ms apart, each with
its send time `sent_at_us` (CLOCK_REALTIME, µs). Same machine, so the clocks agree.

Prints one TSV line: LABEL ttfe_ms event_lat_ms_p50 event_lat_ms_p99 stream_ms events
  ttfe_ms            median over streams of (first event received - request sent)
  event_lat_ms_p50   median over all events of (received - sent_at_us)
  event_lat_ms_p99   99th percentile of the same
  stream_ms          median over streams of (last event received - request sent)
The first stream (connection set-up, leaf certificate) is left out when there are 3 or more.
With --new-connection every stream opens its own connection and ttfe_ms includes its set-up.
"""

import argparse
import json
import socket
import statistics
import sys
import time

import httpx


_create_connection = socket.create_connection


def _create_connection_nodelay(*args, **kwargs):
    # httpx/httpcore (sync) leave Nagle on and write request head and body separately; on loopback
    # that adds a ~40 ms Nagle/delayed-ACK stall before the body reaches the server, in every path
    # (direct too), which would swamp what the proxies add. --nagle keeps the stall.
    sock = _create_connection(*args, **kwargs)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))
    return values[k]


def make_client(proxy, cafile, keep_alive=True):
    kwargs = {"verify": cafile or True, "timeout": httpx.Timeout(60.0)}
    if not keep_alive:
        # Every request on a new connection, closed after its response; the client (and its
        # TLS context, the CA file loaded) is made once, outside the timing.
        kwargs["limits"] = httpx.Limits(max_keepalive_connections=0)
    if proxy:
        try:
            return httpx.Client(proxy=proxy, **kwargs)
        except TypeError:
            return httpx.Client(proxies=proxy, **kwargs)
    return httpx.Client(**kwargs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--proxy", default="")
    ap.add_argument("--cafile", default="")
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--interval-ms", type=int, default=10)
    ap.add_argument("--label", default="")
    ap.add_argument("--new-connection", action="store_true",
                    help="a new connection per stream (time to first event includes its set-up)")
    ap.add_argument("--nagle", action="store_true", help="leave Nagle's algorithm on in the client")
    a = ap.parse_args()
    if not a.nagle:
        socket.create_connection = _create_connection_nodelay

    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": "Count to twenty."}]}
    headers = {"X-Fake-Events": str(a.events), "X-Fake-Interval-Ms": str(a.interval_ms)}
    ttfe, stream_ms, lat = [], [], []
    shared = make_client(a.proxy, a.cafile, keep_alive=not a.new_connection)
    try:
        for i in range(a.streams):
            keep = a.streams < 3 or i > 0
            t0 = time.time()
            # --new-connection: each stream opens its own connection (CONNECT and TLS through a
            # proxy), and the time to first event includes setting it up.
            client = shared
            first = None
            last = None
            n = 0
            with client.stream("POST", a.url, json=body, headers=headers) as r:
                if r.status_code != 200:
                    sys.exit(f"HTTP {r.status_code}: {r.read()[:200]!r}")
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    now = time.time()
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        continue
                    try:
                        sent = json.loads(payload).get("sent_at_us")
                    except ValueError:
                        continue
                    if sent is None:
                        continue
                    n += 1
                    if first is None:
                        first = now
                    last = now
                    if keep:
                        lat.append((now * 1e6 - sent) / 1000.0)
            if n == 0:
                sys.exit("no events with sent_at_us received")
            if keep:
                ttfe.append((first - t0) * 1000.0)
                stream_ms.append((last - t0) * 1000.0)
    finally:
        shared.close()
    print("\t".join([a.label, f"{statistics.median(ttfe):.3f}", f"{pct(lat, 0.5):.3f}",
                     f"{pct(lat, 0.99):.3f}", f"{statistics.median(stream_ms):.3f}", str(n)]))


if __name__ == "__main__":
    main()

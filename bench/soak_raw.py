#!/usr/bin/env python3
"""Malformed and abandoned client connections for bench/soak.sh (loopback only).

Until --until (a Unix time), every --interval seconds, opens one connection to the proxy and
does one of the cases below in turn; prints "<case>\t<outcome>\t1" per attempt on stdout
(the soak script sums them). Each attempt is bounded by --timeout seconds.

  te_cl          POST with Transfer-Encoding: chunked and Content-Length (a desync vector): 400
  bad_line       a request line that is not HTTP: 400
  bare_lf        a head whose lines end in LF alone: 400
  huge_head      a request head of 256 KiB of fields (over any sane limit): 4xx or closed
  half_head      half a request head, then close (the proxy must drop the connection)
  connect_close  connect and close at once without a byte
  connect_junk   CONNECT api.openai.com:443, then bytes that are neither TLS nor HTTP inside the
                 tunnel
  tls_abort      CONNECT, a TLS ClientHello cut in the middle, then close
  bad_chunk      chunked request body with an invalid chunk size: 400
  short_body     Content-Length: 100000, 10 bytes, then close (body cut short)

The outcome is the status code of the proxy's answer ("400", "431", ...), "closed" when the
proxy closed without an answer, or "timeout" when it neither answered nor closed in time.
"""
import argparse
import socket
import sys
import time

CASES = [
    "te_cl", "bad_line", "bare_lf", "huge_head", "half_head", "connect_close", "connect_junk",
    "tls_abort", "bad_chunk", "short_body",
]

# The first bytes of a TLS 1.2 ClientHello record header and handshake header, then garbage
# (the record announces more than is sent).
CUT_CLIENT_HELLO = bytes.fromhex("160301020001000200" "0303") + b"\x11" * 40


def read_answer(s, timeout):
    s.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        return "timeout"
    except OSError:
        return "closed"
    if not buf:
        return "closed"
    line = buf.split(b"\r\n", 1)[0].split()
    return line[1].decode() if len(line) > 1 and line[1].isdigit() else "garbage"


def run_case(case, port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        host = "api.openai.com"
        if case == "te_cl":
            s.sendall(b"POST http://%s/v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
                      b"Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n"
                      % (host.encode(), host.encode()))
            return read_answer(s, timeout)
        if case == "bad_line":
            s.sendall(b"HELLO THERE\r\n\r\n")
            return read_answer(s, timeout)
        if case == "bare_lf":
            s.sendall(b"GET http://%s/v1/models HTTP/1.1\nHost: %s\n\n" % (host.encode(), host.encode()))
            return read_answer(s, timeout)
        if case == "huge_head":
            head = b"GET http://%s/v1/models HTTP/1.1\r\nHost: %s\r\n" % (host.encode(), host.encode())
            head += b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 200) for i in range(1200))
            try:
                s.sendall(head + b"\r\n")
            except OSError:
                return "closed"
            return read_answer(s, timeout)
        if case == "half_head":
            s.sendall(b"GET http://%s/v1/models HTTP/1.1\r\nHost: %s\r\nX-Half" % (host.encode(), host.encode()))
            return "sent"
        if case == "connect_close":
            return "sent"
        if case in ("connect_junk", "tls_abort"):
            s.sendall(b"CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" % (host.encode(), host.encode()))
            ans = read_answer(s, timeout)
            if ans != "200":
                return "connect_" + ans
            # read_answer may have left the rest of the CONNECT answer unread: that is fine.
            if case == "connect_junk":
                # Neither TLS nor HTTP (no request line, so no host name to resolve).
                s.sendall(b"\x00\xff" * 64 + b"\r\n\r\n")
                s.settimeout(timeout)
                try:
                    while s.recv(4096):
                        pass
                except socket.timeout:
                    return "timeout"
                except OSError:
                    pass
                return "closed"
            s.sendall(CUT_CLIENT_HELLO)
            return "sent"
        if case == "bad_chunk":
            s.sendall(b"POST http://%s/v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
                      b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
                      b"zz\r\nhello\r\n0\r\n\r\n" % (host.encode(), host.encode()))
            return read_answer(s, timeout)
        if case == "short_body":
            s.sendall(b"POST http://%s/v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"model\":"
                      % (host.encode(), host.encode()))
            return "sent"
        raise ValueError(case)
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--until", type=float, required=True)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--max", type=int, default=1_000_000, help="most attempts")
    a = ap.parse_args()
    i = 0
    while time.time() < a.until and i < a.max:
        case = CASES[i % len(CASES)]
        i += 1
        try:
            outcome = run_case(case, a.port, a.timeout)
        except OSError as e:
            outcome = "error_" + type(e).__name__
        print(f"raw_{case}\t{outcome}\t1", flush=True)
        time.sleep(a.interval)


if __name__ == "__main__":
    sys.exit(main())

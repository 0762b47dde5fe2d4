#!/usr/bin/env python3
"""A minimal OTLP/HTTP sink for the benchmarks: answers every POST 200 and keeps the number of
spans received (JSON or protobuf bodies) in a file (argv[2]). Usage: otlp_sink.py PORT COUNT_FILE"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

count = 0


def fields(data):
    """(field number, bytes) of the length-delimited fields of a protobuf message."""
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        wire = key & 7
        if wire == 0:
            _, i = varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = varint(data, i)
            yield key >> 3, data[i:i + n]
            i += n
        else:
            raise ValueError("wire type %d" % wire)


def varint(data, i):
    v, shift = 0, 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def protobuf_spans(body):
    """Spans of an ExportTraceServiceRequest: resource_spans (1) > scope_spans (2) > spans (2)."""
    return sum(1 for n, rs in fields(body) if n == 1
               for m, ss in fields(rs) if m == 2
               for k, _ in fields(ss) if k == 2)


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Type") == "application/x-protobuf":
            count += protobuf_spans(body)
        else:
            count += body.count(b'"spanId"')
        with open(sys.argv[2], "w") as f:
            f.write(str(count))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()

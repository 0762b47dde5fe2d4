#!/usr/bin/env python3
"""A minimal OTLP/HTTP sink for the benchmarks: answers every POST 200 and keeps the number of
spans received in a file (argv[2]). Usage: otlp_sink.py PORT COUNT_FILE"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

count = 0


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
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

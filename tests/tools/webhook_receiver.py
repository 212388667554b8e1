#!/usr/bin/env python3
"""A webhook receiver for tests: every POST body becomes one line of a JSON-lines file.

Standard library only, so it runs on a bare Debian host (python3) as well as on the machine:

    python3 webhook_receiver.py --listen 127.0.0.1:9099 --output /tmp/alerts.jsonl

Each line is {"path": ..., "received": <unix time>, "body": <the parsed JSON, or the text>}.
A body over --max-body bytes is refused (413) and the file stops growing at --max-file bytes
(later POSTs get 507), so a test that loops cannot fill a disk. Answers 200 with an empty body,
as Alertmanager expects of a webhook. GET / answers 200 "ok" (a readiness probe).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(BaseHTTPRequestHandler):
    server: ReceiverServer

    def do_GET(self) -> None:
        self.answer(200, b"ok\n")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.server.max_body:
            self.answer(413, b"body too large\n")
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        line = json.dumps({"path": self.path, "received": time.time(), "body": body}) + "\n"
        if not self.server.append(line.encode()):
            self.answer(507, b"output file full\n")
            return
        self.answer(200, b"")

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class ReceiverServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], output: str, max_body: int, max_file: int) -> None:
        super().__init__(address, Receiver)
        self.output, self.max_body, self.max_file = output, max_body, max_file
        self.lock = threading.Lock()

    def append(self, data: bytes) -> bool:
        """Append one line unless the file would grow over max_file; False when refused."""
        with self.lock:
            size = os.path.getsize(self.output) if os.path.exists(self.output) else 0
            if size + len(data) > self.max_file:
                return False
            with open(self.output, "ab") as handle:
                handle.write(data)
            return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9099", help="HOST:PORT (default %(default)s)")
    parser.add_argument("--output", required=True, help="the JSON-lines file to append to")
    parser.add_argument("--max-body", type=int, default=1 << 20, help="largest body in bytes (default 1 MiB)")
    parser.add_argument("--max-file", type=int, default=16 << 20, help="largest output file in bytes (default 16 MiB)")
    options = parser.parse_args()
    host, _, port = options.listen.rpartition(":")
    server = ReceiverServer((host.strip("[]"), int(port)), options.output, options.max_body, options.max_file)
    server.serve_forever()


if __name__ == "__main__":
    main()

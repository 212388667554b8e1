#!/usr/bin/env python3
"""A stand-in upstream for the nginx role's molecule scenario (molecule/nginx): standard library only.

:8000  HTTP API: GET / answers JSON naming the host and the colour; GET /health answers "ok".
:8080  WebSocket echo (RFC 6455, text and binary frames, ping/pong, close).
:8001  metrics in Prometheus text format (never exposed by the edge).
Set CORVID_STANDIN_COLOUR (blue by default) and CORVID_STANDIN_OFFSET (added to every port)
to run a second colour beside the first. A lab tool, not part of the platform.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COLOUR = os.environ.get("CORVID_STANDIN_COLOUR", "blue")
OFFSET = int(os.environ.get("CORVID_STANDIN_OFFSET", "0"))
HOST = socket.gethostname()
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_FRAME = 1 << 20
REQUESTS = {"count": 0}


class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # peer's delayed ACK add 40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        REQUESTS["count"] += 1
        if self.path == "/health":
            self.answer(200, "ok\n", "text/plain")
        elif self.path == "/metrics" and self.server.server_address[1] == 8001 + OFFSET:
            self.answer(200, f"corvid_standin_requests_total {REQUESTS['count']}\n", "text/plain")
        elif self.path == "/metrics":
            self.answer(404, "metrics are on their own port\n", "text/plain")
        else:
            self.answer(200, json.dumps({"service": "corvid-standin", "host": HOST, "colour": COLOUR}) + "\n")


def read_exact(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def send_frame(conn, opcode, payload):
    header = bytes([0x80 | opcode])
    if len(payload) < 126:
        header += bytes([len(payload)])
    elif len(payload) < 65536:
        header += bytes([126]) + struct.pack("!H", len(payload))
    else:
        header += bytes([127]) + struct.pack("!Q", len(payload))
    conn.sendall(header + payload)


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        key = self.headers.get("Sec-WebSocket-Key")
        if self.headers.get("Upgrade", "").lower() != "websocket" or not key:
            body = b"WebSocket only\n"
            self.send_response(426)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode(), usedforsecurity=False).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        conn = self.connection
        try:
            while True:
                first, second = read_exact(conn, 2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    length = struct.unpack("!H", read_exact(conn, 2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", read_exact(conn, 8))[0]
                if length > MAX_FRAME:
                    send_frame(conn, 0x8, struct.pack("!H", 1009))
                    return
                mask = read_exact(conn, 4) if second & 0x80 else b"\0\0\0\0"
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(read_exact(conn, length)))
                if opcode == 0x8:
                    send_frame(conn, 0x8, payload[:2])
                    return
                if opcode == 0x9:
                    send_frame(conn, 0xA, payload)
                elif opcode in (0x1, 0x2):
                    send_frame(conn, opcode, payload)
        except (ConnectionError, OSError, ValueError):
            return


def serve(port, handler):
    server = ThreadingHTTPServer(("", port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    threads = [
        threading.Thread(target=serve, args=(8000 + OFFSET, Api), daemon=True),
        threading.Thread(target=serve, args=(8001 + OFFSET, Api), daemon=True),
    ]
    for thread in threads:
        thread.start()
    serve(8080 + OFFSET, Echo)

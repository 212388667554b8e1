"""Test fixture of the nginx scenario: an HTTPS server (TLS 1.3 only) that requires basic auth.

It stands for an upstream such as Prometheus's or Alertmanager's TLS listener. Without the
right Authorization header it answers 401 with a WWW-Authenticate challenge; with it, 200 and
a JSON object of what it saw: the path, the Host header, the TLS version and the SNI name.
Settings from the environment: TLS_BACKEND_CERT, TLS_BACKEND_KEY, TLS_BACKEND_PORT,
TLS_BACKEND_USER, TLS_BACKEND_PASSWORD.
"""

import base64
import http.server
import json
import os
import ssl

EXPECTED = (
    "Basic "
    + base64.b64encode(f"{os.environ['TLS_BACKEND_USER']}:{os.environ['TLS_BACKEND_PASSWORD']}".encode()).decode()
)


def remember_sni(sock, name, _context):
    sock.corvid_sni = name


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != EXPECTED:
            body = b"authentication required\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="tls-backend"')
            self.send_header("Content-Type", "text/plain")
        else:
            seen = {
                "path": self.path,
                "host": self.headers.get("Host"),
                "tls": self.connection.version(),
                "sni": getattr(self.connection, "corvid_sni", None),
            }
            body = json.dumps(seen).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.minimum_version = ssl.TLSVersion.TLSv1_3
context.load_cert_chain(os.environ["TLS_BACKEND_CERT"], os.environ["TLS_BACKEND_KEY"])
context.sni_callback = remember_sni
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["TLS_BACKEND_PORT"])), Handler)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()

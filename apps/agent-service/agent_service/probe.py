"""python3 -m agent_service.probe: exit 0 when /healthz answers 200 (the image's HEALTHCHECK)."""

from __future__ import annotations

import http.client
import os


def main() -> int:
    port = int(os.environ.get("AGENT_API_PORT", "8000"))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return 0 if conn.getresponse().status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

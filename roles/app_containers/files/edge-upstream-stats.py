"""Error rate and p95 latency of some upstream servers, from nginx's JSON access log.

    edge-upstream-stats.py LOG OFFSET HOST:PORT [HOST:PORT ...]

Reads LOG (corvid.platform.nginx's corvid_json format: status, upstream, upstream_time) from
byte OFFSET (from the start when the file is now smaller: it was rotated) and counts the
requests that the given servers answered. nginx logs upstreams by address, so HOST is
resolved here as nginx resolved it. A request that went to one of them first and was then
passed to another server (the first attempt failed) counts as an error of theirs. Prints JSON:
{"requests", "errors", "error_rate", "p95_seconds", "size"}.
"""

import json
import math
import os
import socket
import sys


def addresses(server):
    host, port = server.rsplit(":", 1)
    found = {f"{host}:{port}"}
    for info in socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP):
        family, address = info[0], info[4]
        found.add(f"[{address[0]}]:{port}" if family == socket.AF_INET6 else f"{address[0]}:{port}")
    return found


def attempts(value):
    """nginx lists one value per attempt, "a, b" (and "a : b" across an internal redirect)."""
    return [part.strip() for part in str(value or "").replace(" : ", ",").split(",")]


def main(log, offset, servers):
    watched = set().union(*(addresses(server) for server in servers))
    size = os.path.getsize(log)
    requests = errors = 0
    times = []
    with open(log, "rb") as handle:
        handle.seek(offset if offset <= size else 0)
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            tried = attempts(entry.get("upstream"))
            upstream_times = attempts(entry.get("upstream_time"))
            if not watched.intersection(tried):
                continue
            requests += 1
            if tried[-1] not in watched or int(entry.get("status", 0)) >= 500:
                errors += 1
            for address, seconds in zip(tried, upstream_times, strict=False):
                if address in watched and seconds.replace(".", "", 1).isdigit():
                    times.append(float(seconds))
    times.sort()
    p95 = times[max(0, math.ceil(0.95 * len(times)) - 1)] if times else 0.0
    print(
        json.dumps(
            {
                "requests": requests,
                "errors": errors,
                "error_rate": errors / requests if requests else 0.0,
                "p95_seconds": p95,
                "size": size,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])

"""Benchmark: corvid.platform.mcp_check over 1, 10 and 100 endpoints in one module call, beside the same
checks made one after the other with the official MCP Python SDK client in one process.

Servers are built with the official SDK and listen on 127.0.0.1 only; every loop is bounded and the
script stops by itself. Run it from the repository root:

    .venv/bin/python tests/bench/bench_mcp.py [--sizes 1,10,100] [--repeat 3] [--servers 2] [--mode stateless_json]

"module wall time" is the time the module spends checking (its ``elapsed`` return value, measured on the
managed host, here localhost with /usr/bin/python3); "ansible wall time" adds Ansible's own start-up and
module transfer; "SDK sequential" is ``mcp.Client(url, mode="legacy")`` doing initialize, tools/list and
ping, endpoint after endpoint. Each number is the median of ``--repeat`` runs.

Then (unless ``--no-oauth``, and when Authlib is installed) ``--oauth-size`` endpoints behind one OAuth
authorization server (client credentials, over TLS) in one task, beside as many with a static bearer token:
the module's time and the token requests the authorization server answered.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # benchkit, without PYTHONPATH

from benchkit import ROOT

sys.path.insert(0, str(ROOT / "tests" / "functional" / "mcp"))

from conftest import HAVE_AUTHLIB, _ca, _leaf, _write_key, run_module, start_servers, stop_servers
from cryptography.hazmat.primitives import serialization

OAUTH_CLIENT = {"client_id": "corvid-basic", "client_secret": "basic-secret-7d1e"}  # see oauth_server.CLIENTS

MAX_ENDPOINTS = 500
MAX_REPEAT = 10


def endpoint_urls(ports: dict[str, int], count: int, mode: str) -> list[str]:
    path = "/sse" if mode == "legacy_sse" else "/mcp"
    urls = [f"http://127.0.0.1:{port}{path}" for port in ports.values()]
    return [urls[i % len(urls)] for i in range(count)]


def module_run(urls: list[str], workers: int, ping: bool = True) -> tuple[float, float]:
    endpoints = [{"name": f"ep{i:03d}", "url": url, "ping": ping} for i, url in enumerate(urls)]
    started = time.monotonic()
    run = run_module({"endpoints": endpoints, "workers": workers, "timeout": 10})
    wall = time.monotonic() - started
    summary = run.result.get("summary", {})
    if run.rc != 0 or summary.get("healthy") != len(urls):
        raise SystemExit(f"module run failed: {run.result.get('msg')}\n{run.stderr[-2000:]}")
    return run.result["elapsed"], wall


async def sdk_sequential(urls: list[str], ping: bool = True) -> float:
    from mcp import Client

    started = time.monotonic()
    for url in urls:
        async with Client(url, mode="legacy", cache=None) as client:
            tools = await client.list_tools()
            if not tools.tools:
                raise SystemExit(f"SDK client: no tools at {url}")
            if ping:
                await client.send_ping()
    return time.monotonic() - started


def test_pki(directory: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 (the authorization server speaks TLS) in ``directory``."""
    ca_key, ca_cert = _ca("corvid bench CA")
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    key, cert = _leaf(ca_key, ca_cert, "corvid bench server", server=True)
    (directory / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "server.key", key)
    return directory


def token_requests(base_url: str, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(base_url + "/stats", context=context, timeout=10) as response:  # noqa: S310 - https
        return int(json.loads(response.read()).get("all", 0))


def fetch_token(as_url: str, ca: Path, resource: str) -> str:
    """A token of the authorization server for ``resource``, fetched once by hand for the bearer case."""
    context = ssl.create_default_context(cafile=str(ca))
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "mcp:read", "resource": resource})
    basic = base64.b64encode(f"{OAUTH_CLIENT['client_id']}:{OAUTH_CLIENT['client_secret']}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - https
        as_url + "/token",
        data=form.encode(),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310 - https
        return json.loads(response.read())["access_token"]


def oauth_comparison(size: int, repeat: int, workers: int) -> list[tuple[str, float, float, int]]:
    """(label, module time, ansible wall time, token requests) for OAuth and for a static bearer token, both
    against the same SDK server (stateless JSON) behind the same authorization server."""
    directory = test_pki(Path(tempfile.mkdtemp(prefix="bench-mcp-oauth-")))
    process, ports = start_servers("oauth_as,oauth_mcp", directory, directory / "servers.log")
    as_url = f"https://127.0.0.1:{ports['oauth_as']}"
    url = f"http://127.0.0.1:{ports['oauth_mcp']}/mcp"
    static = fetch_token(as_url, directory / "ca.pem", url)
    cases = {
        "OAuth client credentials": [{"name": f"o{i:03d}", "url": url, "oauth": OAUTH_CLIENT} for i in range(size)],
        "static bearer token": [{"name": f"b{i:03d}", "url": url, "bearer_token": static} for i in range(size)],
    }
    rows = []
    try:
        for label, endpoints in cases.items():
            module_times, walls, requests = [], [], []
            for _ in range(repeat):
                before = token_requests(as_url, directory / "ca.pem")
                started = time.monotonic()
                args = {"endpoints": endpoints, "workers": workers, "timeout": 10, "ca_path": str(directory / "ca.pem")}
                run = run_module(args)
                walls.append(time.monotonic() - started)
                if run.rc != 0 or run.result["summary"]["healthy"] != size:
                    raise SystemExit(f"{label}: module run failed: {run.result.get('msg')}")
                module_times.append(run.result["elapsed"])
                requests.append(token_requests(as_url, directory / "ca.pem") - before)
            rows.append((label, statistics.median(module_times), statistics.median(walls), max(requests)))
    finally:
        stop_servers(process)
    return rows


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms" if seconds < 10 else f"{seconds:9.2f} s "


def main() -> None:
    warnings.simplefilter("ignore")  # the SDK flags ping as removed in 2026-07-28; these servers speak 2025-11-25
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100", help="endpoint counts (comma-separated, each <= 500)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median is reported (<= 10)")
    parser.add_argument("--servers", type=int, default=2, help="MCP server processes the endpoints spread over")
    parser.add_argument(
        "--mode", default="stateless_json", choices=["stateless_json", "stateful_json", "stateful_sse", "legacy_sse"]
    )
    parser.add_argument("--workers", type=int, default=100, help="the module's workers option")
    parser.add_argument("--no-ping", dest="ping", action="store_false", help="check without ping (both sides)")
    parser.add_argument("--no-oauth", dest="oauth", action="store_false", help="skip the OAuth comparison")
    parser.add_argument("--oauth-size", type=int, default=100, help="endpoints of the OAuth comparison (<= 500)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if any(size < 1 or size > MAX_ENDPOINTS for size in sizes) or not 1 <= args.repeat <= MAX_REPEAT:
        raise SystemExit(f"sizes must be 1..{MAX_ENDPOINTS} and --repeat 1..{MAX_REPEAT}")

    log = Path(tempfile.mkdtemp(prefix="bench-mcp-")) / "servers.log"
    process, ports = start_servers(f"{args.mode}*{max(1, args.servers)}", None, log)
    try:
        # Warm up both sides once (imports, first connections at full width) so no size is penalised.
        module_run(endpoint_urls(ports, max(sizes), args.mode), args.workers, args.ping)
        asyncio.run(sdk_sequential(endpoint_urls(ports, 2, args.mode), args.ping))
        rows = []
        for size in sizes:
            urls = endpoint_urls(ports, size, args.mode)
            module_times, ansible_times, sdk_times = [], [], []
            for _ in range(args.repeat):
                elapsed, wall = module_run(urls, args.workers, args.ping)
                module_times.append(elapsed)
                ansible_times.append(wall)
                sdk_times.append(asyncio.run(sdk_sequential(urls, args.ping)))
            rows.append(
                (size, statistics.median(module_times), statistics.median(ansible_times), statistics.median(sdk_times))
            )
    finally:
        stop_servers(process)

    checks = "initialize, tools/list" + (", ping" if args.ping else "")
    print(
        f"\nMCP endpoint checks ({checks}) against {args.servers} local SDK server process(es), mode {args.mode}, "
        f"workers {args.workers}, median of {args.repeat}\n"
    )
    header = (
        "| endpoints | module wall time | module time per endpoint | ansible wall time | SDK sequential time "
        "| SDK per endpoint |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell) + 0) for cell in header.split("|")[1:-1]) + "|")
    for size, module, ansible, sdk in rows:
        print(
            f"| {size:9d} | {fmt(module):>16} | {fmt(module / size):>24} | {fmt(ansible):>17} | {fmt(sdk):>19} "
            f"| {fmt(sdk / size):>16} |"
        )
    print()
    keys = ("endpoints", "module_s", "ansible_s", "sdk_s")
    report = {"rows": [dict(zip(keys, row, strict=True)) for row in rows]}
    if args.oauth and not HAVE_AUTHLIB:
        print("OAuth comparison skipped: the test authorization server needs Authlib\n")
    elif args.oauth:
        size = min(max(1, args.oauth_size), MAX_ENDPOINTS)
        oauth_rows = oauth_comparison(size, args.repeat, args.workers)
        print(f"{size} endpoints in one task, one authorization server, median of {args.repeat}\n")
        print("| authentication | module wall time | ansible wall time | token requests |")
        print("|----------------|------------------|-------------------|----------------|")
        for label, module, ansible, requests in oauth_rows:
            print(f"| {label} | {fmt(module):>16} | {fmt(ansible):>17} | {requests:14d} |")
        print()
        oauth_keys = ("authentication", "module_s", "ansible_s", "token_requests")
        report["oauth"] = [dict(zip(oauth_keys, row, strict=True)) for row in oauth_rows]
    print(json.dumps(report))


if __name__ == "__main__":
    main()

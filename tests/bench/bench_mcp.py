"""Benchmark: corvid.platform.mcp_check over 1, 10 and 100 endpoints in one module call, beside the same
checks made one after the other with the official MCP Python SDK client in one process.

Servers are built with the official SDK and listen on 127.0.0.1 only; every loop is bounded and the
script stops by itself. Run it from the repository root:

    .venv/bin/python tests/bench/bench_mcp.py [--sizes 1,10,100] [--repeat 3] [--servers 2] [--mode stateless_json]

"module wall time" is the time the module spends checking (its ``elapsed`` return value, measured on the
managed host, here localhost with /usr/bin/python3); "ansible wall time" adds Ansible's own start-up and
module transfer; "SDK sequential" is ``mcp.Client(url, mode="legacy")`` doing initialize, tools/list and
ping, endpoint after endpoint. Each number is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "mcp"))

from conftest import run_module, start_servers, stop_servers  # noqa: E402

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
    print(json.dumps({"rows": [dict(zip(keys, row, strict=True)) for row in rows]}))


if __name__ == "__main__":
    main()

"""Run the three listeners in one event loop; drain gracefully on SIGTERM.

SIGTERM (or SIGINT): /readyz turns 503 and both listeners stop accepting; uvicorn finishes
the requests in flight; open WebSocket sessions get AGENT_DRAIN_SECONDS, then are closed
with 1001; then the backends' connections are closed and the process exits 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from agent_service.app import State, create_app
from agent_service.backends import Backends
from agent_service.config import ConfigError, Settings
from agent_service.metrics import BUILD_INFO, MetricsServer
from agent_service.ws import WebSocketService

log = logging.getLogger("agent_service")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for docker's json-file log driver."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The websockets library logs every failed handshake (probes, scanners) at error level.
    logging.getLogger("websockets").setLevel(logging.WARNING)


# A request's headers must be in this long after its first byte (a slowloris client that
# sends them a byte at a time loses the connection).
HEADER_SECONDS = 10.0


class BoundedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 with two deadlines uvicorn lacks: a new connection that sends nothing
    is closed after timeout_keep_alive, and a request's headers must arrive within
    HEADER_SECONDS of their first byte. After a response uvicorn's own keep-alive timeout runs."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._headers_due = False
        self._set_deadline(self.timeout_keep_alive)

    def data_received(self, data: bytes) -> None:
        if not self._headers_due and (self.cycle is None or self.cycle.response_complete):
            self._headers_due = True
            self._set_deadline(HEADER_SECONDS)
        super().data_received(data)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers are in
            self._headers_due = False
            self._set_deadline(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_deadline(None)
        super().connection_lost(exc)

    def _set_deadline(self, seconds: float | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(seconds, self._too_slow) if seconds else None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class ApiServer(uvicorn.Server):
    """uvicorn, without its own signal handlers: the service decides when to stop."""

    def install_signal_handlers(self) -> None:
        return None


async def run(settings: Settings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    BUILD_INFO.labels(settings.version, settings.colour).set(1)
    backends = Backends(settings)
    state = State()
    api = ApiServer(
        uvicorn.Config(
            create_app(settings, backends, state),
            host=settings.bind,
            port=settings.api_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=75,  # longer than the edge's keepalive_timeout
            http=BoundedH11Protocol,
        )
    )
    websocket = WebSocketService(settings)
    metrics = MetricsServer(settings)

    await metrics.start()
    await websocket.start()
    api_task = asyncio.create_task(api.serve())
    # Warm the connections; a backend that is down now is retried on the next call.
    problems = await backends.readiness()
    log.info(
        "agent service started",
        extra={
            "fields": {
                "version": settings.version,
                "colour": settings.colour,
                "ports": {"api": settings.api_port, "ws": settings.ws_port, "metrics": settings.metrics_port},
                "backends": problems or "ready",
            }
        },
    )

    done, _pending = await asyncio.wait(
        {api_task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    if api_task in done:
        log.error("the API server stopped by itself")
        await websocket.drain(0)
        await metrics.stop()
        await backends.close()
        return 1

    log.info("stopping: draining", extra={"fields": {"drain_seconds": settings.drain_seconds}})
    state.draining = True
    websocket.stop_accepting()
    api.should_exit = True
    await asyncio.gather(api_task, websocket.drain(settings.drain_seconds), return_exceptions=True)
    await metrics.stop()
    await backends.close()
    log.info("stopped")
    return 0


def main() -> int:
    configure_logging()
    try:
        settings = Settings.from_environment()
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    try:
        return asyncio.run(run(settings))
    except OSError as exc:  # a port taken, a certificate that does not load
        log.error("cannot start: %s", exc)
        return 1

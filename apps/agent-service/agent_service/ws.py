"""WebSocket echo and broadcast on AGENT_WS_PORT, path /ws.

A text message is echoed back to its sender; "broadcast:TEXT" goes to every open session.
On drain the listener stops at once, open sessions keep working for AGENT_DRAIN_SECONDS and
are then closed with 1001 (going away).
"""

from __future__ import annotations

import asyncio
import http
import logging

import websockets
from websockets.exceptions import AbortHandshake, ConnectionClosed
from websockets.server import WebSocketServer, WebSocketServerProtocol

from agent_service.config import Settings
from agent_service.metrics import WEBSOCKET_CONNECTIONS, WEBSOCKET_MESSAGES

log = logging.getLogger("agent_service.ws")
BROADCAST_PREFIX = "broadcast:"
# The opening handshake must be done this long after the connection opens (this websockets
# has no open_timeout on the server side: an idle or slowloris client would hold it forever).
HANDSHAKE_SECONDS = 10.0


class BoundedProtocol(WebSocketServerProtocol):
    async def handshake(self, *args: object, **kwargs: object) -> str:
        try:
            return await asyncio.wait_for(super().handshake(*args, **kwargs), HANDSHAKE_SECONDS)
        except TimeoutError:
            raise AbortHandshake(http.HTTPStatus.REQUEST_TIMEOUT, [], b"handshake too slow\n") from None


class WebSocketService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sessions: set[WebSocketServerProtocol] = set()
        self.server: WebSocketServer | None = None
        self.draining = False

    async def start(self) -> None:
        self.server = await websockets.serve(
            self._session,
            self.settings.bind,
            self.settings.ws_port,
            process_request=self._admit,
            create_protocol=BoundedProtocol,
            max_size=self.settings.ws_max_message_bytes,
            max_queue=16,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=5,
        )

    async def _admit(self, path: str, headers: object) -> tuple[int, list[tuple[str, str]], bytes] | None:
        if path.split("?", 1)[0] != "/ws":
            return http.HTTPStatus.NOT_FOUND, [], b"not found\n"
        if self.draining or len(self.sessions) >= self.settings.ws_max_connections:
            return http.HTTPStatus.SERVICE_UNAVAILABLE, [("Retry-After", "1")], b"no capacity\n"
        return None

    async def _session(self, websocket: WebSocketServerProtocol) -> None:
        self.sessions.add(websocket)
        WEBSOCKET_CONNECTIONS.set(len(self.sessions))
        try:
            async for message in websocket:
                if isinstance(message, str) and message.startswith(BROADCAST_PREFIX):
                    WEBSOCKET_MESSAGES.labels("broadcast").inc()
                    websockets.broadcast(self.sessions, message)
                else:
                    WEBSOCKET_MESSAGES.labels("echo").inc()
                    await websocket.send(message)
        except ConnectionClosed:
            pass
        finally:
            self.sessions.discard(websocket)
            WEBSOCKET_CONNECTIONS.set(len(self.sessions))

    def stop_accepting(self) -> None:
        self.draining = True
        if self.server is not None:
            # The listening sockets only; websockets' own close() would end the sessions too.
            self.server.server.close()

    async def drain(self, seconds: float) -> None:
        """Give open sessions SECONDS to finish, then close them all with 1001."""
        self.stop_accepting()
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while self.sessions and loop.time() < end:
            await asyncio.sleep(min(0.2, end - loop.time()))
        if self.sessions:
            log.info(
                "closing WebSocket sessions after the drain window", extra={"fields": {"sessions": len(self.sessions)}}
            )
        await asyncio.gather(
            *(ws.close(1001, "server shutting down") for ws in list(self.sessions)), return_exceptions=True
        )
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

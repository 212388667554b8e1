"""The HTTP API: health, readiness, version, items, MCP."""

from __future__ import annotations

import json
import logging
import random
import time
from typing import Any

from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_service.backends import BackendError, Backends
from agent_service.config import Settings
from agent_service.mcp import SUPPORTED_VERSIONS, McpServer
from agent_service.metrics import BACKEND_ERRORS, HTTP_DURATION, HTTP_REQUESTS

log = logging.getLogger("agent_service.api")
MAX_VALUE_CHARS = 4096
MAX_ITEM_ID = 2**63 - 1  # bigserial


class ItemIn(BaseModel):
    value: str = Field(..., max_length=MAX_VALUE_CHARS)


class State:
    """What the SIGTERM handler changes while requests are being answered."""

    def __init__(self) -> None:
        self.draining = False


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing passes it on as 413, not as a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class Guard:
    """ASGI middleware: bounded request bodies (413) and the http_* metrics per route."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False
        received = 0

        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        too_large = declared.isdigit() and int(declared) > self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        try:
            if too_large:
                raise BodyTooLarge(self.max_body_bytes)
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            response = JSONResponse({"error": f"request body larger than {self.max_body_bytes} bytes"}, status_code=413)
            await response(scope, receive, tracked_send)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(scope["method"], label, str(status)).inc()
            HTTP_DURATION.labels(scope["method"], label).observe(time.perf_counter() - start)


def create_app(settings: Settings, backends: Backends, state: State) -> ASGIApp:
    app = FastAPI(
        title="corvid agent service", version=settings.version, docs_url=None, redoc_url=None, openapi_url=None
    )
    mcp = McpServer(settings, backends)

    def injected_error() -> JSONResponse | None:
        # The fault switch of the v4-errors build: a share of the items answers fail.
        if settings.error_rate > 0 and random.random() < settings.error_rate:
            return JSONResponse({"error": "injected error (AGENT_ERROR_RATE)"}, status_code=500)
        return None

    def unavailable(exc: BackendError) -> JSONResponse:
        BACKEND_ERRORS.labels(exc.backend).inc()
        log.warning("backend call failed", extra={"fields": {"backend": exc.backend, "reason": exc.reason}})
        return JSONResponse({"error": f"{exc.backend} unavailable", "reason": exc.reason}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request", "detail": exc.errors()}, status_code=422)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=413)

    @app.get("/healthz", response_class=PlainTextResponse)
    @app.get("/api/health", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok\n"

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if settings.fail_readiness:
            return JSONResponse({"ready": False, "reason": "AGENT_FAIL_READINESS is set"}, status_code=503)
        if state.draining:
            return JSONResponse({"ready": False, "reason": "shutting down"}, status_code=503)
        problems = await backends.readiness()
        if problems:
            for backend in problems:
                BACKEND_ERRORS.labels(backend).inc()
            return JSONResponse({"ready": False, "reason": problems}, status_code=503)
        return JSONResponse({"ready": True})

    @app.get("/version")
    async def version() -> dict[str, str]:
        return {"version": settings.version, "colour": settings.colour}

    @app.post("/api/items", status_code=201)
    async def create_item(item: ItemIn) -> Any:
        if (failure := injected_error()) is not None:
            return failure
        try:
            item_id = await backends.insert_item(item.value)
        except BackendError as exc:
            return unavailable(exc)
        try:
            await backends.cache_set({"id": item_id, "value": item.value})
        except BackendError as exc:  # the row is written; the cache fills on the first read
            BACKEND_ERRORS.labels(exc.backend).inc()
        return JSONResponse({"id": item_id}, status_code=201)

    @app.get("/api/items/{item_id}")
    async def read_item(item_id: int = Path(..., ge=1, le=MAX_ITEM_ID)) -> Any:
        if (failure := injected_error()) is not None:
            return failure
        try:
            cached = await backends.cache_get(item_id)
        except BackendError as exc:  # read through to PostgreSQL
            BACKEND_ERRORS.labels(exc.backend).inc()
            cached = None
        if cached is not None:
            return JSONResponse(cached, headers={"X-Cache": "hit"})
        try:
            item = await backends.fetch_item(item_id)
        except BackendError as exc:
            return unavailable(exc)
        if item is None:
            return JSONResponse({"error": f"no item {item_id}"}, status_code=404)
        try:
            await backends.cache_set(item)
        except BackendError as exc:
            BACKEND_ERRORS.labels(exc.backend).inc()
        return JSONResponse(item, headers={"X-Cache": "miss"})

    @app.post("/mcp")
    async def mcp_post(request: Request) -> Response:
        problem = _mcp_problem(request, settings)
        if problem is not None:
            return problem
        answer = await mcp.handle_body(await request.body())
        if answer is None:
            return Response(status_code=202)
        return Response(json.dumps(answer), media_type="application/json")

    @app.api_route("/mcp", methods=["GET", "DELETE"])
    async def mcp_other() -> Response:
        # No server-to-client stream and no sessions to end.
        return Response(status_code=405, headers={"Allow": "POST"})

    return Guard(app, settings.max_body_bytes)


def _mcp_problem(request: Request, settings: Settings) -> Response | None:
    origin = request.headers.get("origin")
    if origin is not None and origin not in settings.mcp_allowed_origins:
        # DNS rebinding: a browser page must not reach the MCP endpoint.
        return JSONResponse({"error": f"origin {origin!r} is not allowed"}, status_code=403)
    version = request.headers.get("mcp-protocol-version")
    if version is not None and version not in SUPPORTED_VERSIONS:
        return JSONResponse({"error": f"unsupported MCP-Protocol-Version {version!r}"}, status_code=400)
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        return JSONResponse({"error": "Content-Type must be application/json"}, status_code=415)
    accept = request.headers.get("accept", "*/*").lower()
    if not any(kind in accept for kind in ("application/json", "application/*", "*/*")):
        return JSONResponse({"error": "Accept must include application/json"}, status_code=406)
    return None

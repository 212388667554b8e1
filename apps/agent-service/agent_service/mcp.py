"""An MCP server over the streamable HTTP transport, JSON-RPC written out by hand.

POST /mcp takes one JSON-RPC message (or, for 2025-03-26 clients, a batch) and answers with
application/json. The server keeps no sessions and offers no server-to-client stream (GET
answers 405). Its tools are read-only: version, item_count, echo.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent_service.backends import BackendError, Backends
from agent_service.config import Settings

SUPPORTED_VERSIONS = ("2025-06-18", "2025-03-26")
LATEST_VERSION = SUPPORTED_VERSIONS[0]
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
MAX_ECHO_CHARS = 4096
# A batch is answered at once (its messages run together), and only this many: each may wait
# up to AGENT_CALL_TIMEOUT_SECONDS on a backend.
MAX_BATCH = 32

TOOLS: list[dict[str, Any]] = [
    {
        "name": "version",
        "title": "Service version",
        "description": "The version and colour of the running agent service.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
    },
    {
        "name": "item_count",
        "title": "Item count",
        "description": "How many items the service has stored in PostgreSQL.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
    },
    {
        "name": "echo",
        "title": "Echo",
        "description": "Returns the text it is given.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": MAX_ECHO_CHARS}},
            "required": ["text"],
            "additionalProperties": False,
        },
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
    },
]


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error(message_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": code, "message": message}}


class McpServer:
    def __init__(self, settings: Settings, backends: Backends) -> None:
        self.settings = settings
        self.backends = backends

    async def handle_body(self, body: bytes) -> Any:
        """The JSON answer to a POST body, or None when it held only notifications/responses."""
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(None, PARSE_ERROR, "the body is not JSON")
        if isinstance(message, list):
            if not message:
                return _error(None, INVALID_REQUEST, "empty batch")
            if len(message) > MAX_BATCH:
                return _error(None, INVALID_REQUEST, f"a batch of {len(message)} messages: at most {MAX_BATCH}")
            results = await asyncio.gather(*(self.handle_message(item) for item in message))
            answers = [answer for answer in results if answer is not None]
            return answers or None
        return await self.handle_message(message)

    async def handle_message(self, message: Any) -> dict[str, Any] | None:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _error(None, INVALID_REQUEST, "not a JSON-RPC 2.0 message")
        if "method" not in message:
            return None  # a response from the client (we never ask it anything)
        method, message_id = message.get("method"), message.get("id")
        is_notification = "id" not in message
        params = message.get("params") or {}
        if not isinstance(method, str) or not isinstance(params, dict):
            return (
                None
                if is_notification
                else _error(message_id, INVALID_REQUEST, "method must be a string, params an object")
            )
        try:
            result = await self.dispatch(method, params)
        except RpcError as exc:
            return None if is_notification else _error(message_id, exc.code, exc.message)
        if is_notification:
            return None
        return {"jsonrpc": "2.0", "id": message_id, "result": result}

    async def dispatch(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "initialize":
            offered = params.get("protocolVersion")
            version = offered if offered in SUPPORTED_VERSIONS else LATEST_VERSION
            return {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {
                    "name": "corvid-agent-service",
                    "title": "corvid agent service",
                    "version": self.settings.version,
                },
                "instructions": "Read-only tools of the corvid agent service.",
            }
        if method.startswith("notifications/"):
            return {}
        if method == "ping":
            return {}
        if method == "tools/list":
            return {"tools": TOOLS}
        if method == "tools/call":
            return await self.call_tool(params.get("name"), params.get("arguments") or {})
        raise RpcError(METHOD_NOT_FOUND, f"method not found: {method}")

    async def call_tool(self, name: Any, arguments: Any) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, "arguments must be an object")
        if name == "version":
            data: dict[str, Any] = {"version": self.settings.version, "colour": self.settings.colour}
        elif name == "item_count":
            try:
                data = {"item_count": await self.backends.item_count()}
            except BackendError as exc:
                return {"content": [{"type": "text", "text": f"item_count failed: {exc}"}], "isError": True}
        elif name == "echo":
            text = arguments.get("text")
            if not isinstance(text, str) or len(text) > MAX_ECHO_CHARS:
                raise RpcError(
                    INVALID_PARAMS, f"echo needs a string argument 'text' of at most {MAX_ECHO_CHARS} characters"
                )
            return {"content": [{"type": "text", "text": text}], "isError": False}
        else:
            raise RpcError(INVALID_PARAMS, f"unknown tool: {name!r}")
        return {"content": [{"type": "text", "text": json.dumps(data)}], "structuredContent": data, "isError": False}

"""Fixtures for the module_utils unit tests."""

from __future__ import annotations

import pytest
from mcp_scripted import ScriptedServer


@pytest.fixture
def scripted():
    servers: list[ScriptedServer] = []

    def start(handler) -> ScriptedServer:
        server = ScriptedServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()

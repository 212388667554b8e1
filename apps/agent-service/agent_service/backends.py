"""PostgreSQL (through PgBouncer) and Redis, each call bounded by a deadline.

Connections are made lazily and retried on the next call, so the process starts (and
/healthz answers) while a backend is down; /readyz says which one is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg
import redis.asyncio as aioredis

from agent_service.config import Settings

log = logging.getLogger("agent_service.backends")
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id bigserial PRIMARY KEY,
    value text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


class BackendError(Exception):
    """A backend did not answer in time or refused; the message names the backend."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend}: {reason}")
        self.backend = backend
        self.reason = reason


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


class Backends:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: asyncpg.Pool | None = None
        # One connection attempt at a time, shared: callers wait for it at most call_timeout
        # each (a PostgreSQL that accepts and never answers must not queue them up).
        self._connecting: asyncio.Task[asyncpg.Pool] | None = None
        self._redis: aioredis.Redis | None = None

    # -- PostgreSQL -------------------------------------------------------------------------
    def _pg_ssl(self) -> ssl.SSLContext:
        # verify-full: the chain up to AGENT_CA_FILE and the host name in the certificate.
        context = ssl.create_default_context(cafile=self.settings.ca_file or None)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        if not self.settings.database_host:
            raise BackendError("postgresql", "AGENT_DATABASE_URL_HOST is not set")
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._connect())
            # Its failure is each waiter's; one nobody waited for any more is not logged.
            self._connecting.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(self._connecting), self.settings.call_timeout)
        except TimeoutError:
            raise BackendError("postgresql", "timed out") from None

    async def _connect(self) -> asyncpg.Pool:
        s = self.settings
        pool = asyncpg.create_pool(
            host=s.database_host,
            port=s.database_port,
            database=s.database_name,
            user=s.database_user,
            password=s.database_password or None,
            ssl=self._pg_ssl(),
            min_size=1,
            max_size=s.database_pool_size,
            timeout=s.call_timeout,
            command_timeout=s.call_timeout,
            # PgBouncer pools by transaction: no named prepared statements.
            statement_cache_size=0,
            max_inactive_connection_lifetime=60.0,
        )
        try:
            await asyncio.wait_for(pool, s.call_timeout * 2)
            await asyncio.wait_for(self._create_schema(pool), s.call_timeout * 2)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise BackendError("postgresql", _reason(exc)) from exc
        self._pool = pool
        log.info("connected to PostgreSQL", extra={"fields": {"host": s.database_host, "port": s.database_port}})
        return pool

    @staticmethod
    async def _create_schema(pool: asyncpg.Pool) -> None:
        # The other colour may create it at the same moment.
        with contextlib.suppress(asyncpg.UniqueViolationError, asyncpg.DuplicateTableError):
            await pool.execute(SCHEMA)

    async def _pg(self, make: Any) -> Any:
        pool = await self._get_pool()
        try:
            return await asyncio.wait_for(make(pool), self.settings.call_timeout)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise BackendError("postgresql", _reason(exc)) from exc

    async def pg_ping(self) -> None:
        value = await self._pg(lambda pool: pool.fetchval("SELECT 1"))
        if value != 1:
            raise BackendError("postgresql", f"SELECT 1 answered {value!r}")

    async def insert_item(self, value: str) -> int:
        return int(
            await self._pg(lambda pool: pool.fetchval("INSERT INTO items (value) VALUES ($1) RETURNING id", value))
        )

    async def fetch_item(self, item_id: int) -> dict[str, Any] | None:
        row = await self._pg(lambda pool: pool.fetchrow("SELECT id, value FROM items WHERE id = $1", item_id))
        return {"id": row["id"], "value": row["value"]} if row else None

    async def item_count(self) -> int:
        return int(await self._pg(lambda pool: pool.fetchval("SELECT count(*) FROM items")))

    # -- Redis ------------------------------------------------------------------------------
    def _get_redis(self) -> aioredis.Redis:
        s = self.settings
        if not s.redis_host:
            raise BackendError("redis", "AGENT_REDIS_HOST is not set")
        if self._redis is None:
            tls: dict[str, Any] = {}
            if s.redis_tls:
                tls = {"ssl": True, "ssl_ca_certs": s.ca_file, "ssl_cert_reqs": "required", "ssl_check_hostname": True}
            self._redis = aioredis.Redis(
                host=s.redis_host,
                port=s.redis_port,
                username=s.redis_user or None,
                password=s.redis_password or None,
                socket_timeout=s.call_timeout,
                socket_connect_timeout=s.call_timeout,
                max_connections=s.database_pool_size * 2,
                decode_responses=True,
                **tls,
            )
        return self._redis

    async def _rd(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self.settings.call_timeout)
        except (TimeoutError, OSError, aioredis.RedisError) as exc:
            raise BackendError("redis", _reason(exc)) from exc

    async def redis_ping(self) -> None:
        client = self._get_redis()
        if not await self._rd(client.ping()):
            raise BackendError("redis", "PING did not answer PONG")

    async def cache_get(self, item_id: int) -> dict[str, Any] | None:
        raw = await self._rd(self._get_redis().get(f"items:{item_id}"))
        return json.loads(raw) if raw else None

    async def cache_set(self, item: dict[str, Any]) -> None:
        client = self._get_redis()
        await self._rd(client.set(f"items:{item['id']}", json.dumps(item), ex=self.settings.cache_ttl_seconds))

    # -- Both -------------------------------------------------------------------------------
    async def readiness(self) -> dict[str, str]:
        """{backend: reason} for each backend that did not answer in call_timeout; empty when both did."""
        results = await asyncio.gather(
            *(asyncio.wait_for(ping, self.settings.call_timeout) for ping in (self.pg_ping(), self.redis_ping())),
            return_exceptions=True,
        )
        problems: dict[str, str] = {}
        for name, result in zip(("postgresql", "redis"), results, strict=True):
            if isinstance(result, BackendError):
                problems[name] = result.reason
            elif isinstance(result, BaseException):
                problems[name] = _reason(result)
        return problems

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self.settings.call_timeout)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self._pool.terminate()
        if self._redis is not None:
            with contextlib.suppress(TimeoutError, OSError, aioredis.RedisError):
                await asyncio.wait_for(self._redis.close(), self.settings.call_timeout)

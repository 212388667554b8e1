"""The container contract: every setting comes from an AGENT_* environment variable.

Secrets are never environment values: the variables ending in _FILE name files (mounted
read-only) that hold them, so that `docker inspect` does not show them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def _text(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = _text(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _float(name: str, default: float, low: float, high: float) -> float:
    raw = _text(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _flag(name: str) -> bool:
    raw = _text(name, "0").lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be 0 or 1, not {raw!r}")


def _secret(name: str) -> str:
    """The content of the file named by NAME (one line; trailing newline dropped)."""
    path = _text(name)
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path} ({exc.strerror})") from None


def _readable(name: str) -> str:
    path = _text(name)
    if path and not os.access(path, os.R_OK):
        raise ConfigError(f"{name}: {path} is not a readable file")
    return path


@dataclass(frozen=True)
class Settings:
    version: str = "dev"
    colour: str = ""
    fail_readiness: bool = False
    error_rate: float = 0.0
    bind: str = "0.0.0.0"
    api_port: int = 8000
    ws_port: int = 8080
    metrics_port: int = 8001
    database_host: str = ""
    database_port: int = 6432
    database_name: str = "ai_agent_sdk"
    database_user: str = "app"
    database_password: str = field(default="", repr=False)
    database_pool_size: int = 10
    redis_host: str = ""
    redis_port: int = 6379
    redis_user: str = "app"
    redis_password: str = field(default="", repr=False)
    redis_tls: bool = False
    ca_file: str = ""
    metrics_tls_cert_file: str = ""
    metrics_tls_key_file: str = ""
    metrics_user: str = "prometheus"
    metrics_password: str = field(default="", repr=False)
    call_timeout: float = 2.0
    drain_seconds: float = 10.0
    max_body_bytes: int = 65536
    ws_max_connections: int = 100
    ws_max_message_bytes: int = 65536
    cache_ttl_seconds: int = 300
    mcp_allowed_origins: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls) -> Settings:
        settings = cls(
            version=_text("AGENT_VERSION", "dev") or "dev",
            colour=_text("AGENT_COLOUR"),
            fail_readiness=_flag("AGENT_FAIL_READINESS"),
            error_rate=_float("AGENT_ERROR_RATE", 0.0, 0.0, 1.0),
            bind=_text("AGENT_BIND", "0.0.0.0") or "0.0.0.0",
            api_port=_int("AGENT_API_PORT", 8000, 1, 65535),
            ws_port=_int("AGENT_WS_PORT", 8080, 1, 65535),
            metrics_port=_int("AGENT_METRICS_PORT", 8001, 1, 65535),
            database_host=_text("AGENT_DATABASE_URL_HOST"),
            database_port=_int("AGENT_DATABASE_PORT", 6432, 1, 65535),
            database_name=_text("AGENT_DATABASE_NAME", "ai_agent_sdk"),
            database_user=_text("AGENT_DATABASE_USER", "app"),
            database_password=_secret("AGENT_DATABASE_PASSWORD_FILE"),
            database_pool_size=_int("AGENT_DATABASE_POOL_SIZE", 10, 1, 100),
            redis_host=_text("AGENT_REDIS_HOST"),
            redis_port=_int("AGENT_REDIS_PORT", 6379, 1, 65535),
            redis_user=_text("AGENT_REDIS_USER", "app"),
            redis_password=_secret("AGENT_REDIS_PASSWORD_FILE"),
            redis_tls=_flag("AGENT_REDIS_TLS"),
            ca_file=_readable("AGENT_CA_FILE"),
            metrics_tls_cert_file=_readable("AGENT_METRICS_TLS_CERT_FILE"),
            metrics_tls_key_file=_readable("AGENT_METRICS_TLS_KEY_FILE"),
            metrics_user=_text("AGENT_METRICS_USER", "prometheus") or "prometheus",
            metrics_password=_secret("AGENT_METRICS_PASSWORD_FILE"),
            call_timeout=_float("AGENT_CALL_TIMEOUT_SECONDS", 2.0, 0.05, 60.0),
            drain_seconds=_float("AGENT_DRAIN_SECONDS", 10.0, 0.0, 3600.0),
            max_body_bytes=_int("AGENT_MAX_BODY_BYTES", 65536, 1024, 16 * 1024 * 1024),
            ws_max_connections=_int("AGENT_WS_MAX_CONNECTIONS", 100, 1, 100000),
            ws_max_message_bytes=_int("AGENT_WS_MAX_MESSAGE_BYTES", 65536, 128, 16 * 1024 * 1024),
            cache_ttl_seconds=_int("AGENT_CACHE_TTL_SECONDS", 300, 1, 86400),
            mcp_allowed_origins=tuple(o for o in _text("AGENT_MCP_ALLOWED_ORIGINS").split(",") if o.strip()),
        )
        settings.check()
        return settings

    def check(self) -> None:
        ports = {
            "AGENT_API_PORT": self.api_port,
            "AGENT_WS_PORT": self.ws_port,
            "AGENT_METRICS_PORT": self.metrics_port,
        }
        if len(set(ports.values())) != len(ports):
            raise ConfigError(f"AGENT_API_PORT, AGENT_WS_PORT and AGENT_METRICS_PORT must differ: {ports}")
        if bool(self.metrics_tls_cert_file) != bool(self.metrics_tls_key_file):
            raise ConfigError(
                "AGENT_METRICS_TLS_CERT_FILE and AGENT_METRICS_TLS_KEY_FILE go together: set both or neither"
            )
        if self.database_host and not self.ca_file:
            raise ConfigError("AGENT_CA_FILE is required with AGENT_DATABASE_URL_HOST: TLS to PgBouncer is verify-full")
        if self.redis_tls and not self.ca_file:
            raise ConfigError("AGENT_REDIS_TLS=1 needs AGENT_CA_FILE (the CA that signed the Redis certificate)")

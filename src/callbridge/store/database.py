"""Engines from `DATABASE_URL`: SQLite through aiosqlite (the default), PostgreSQL through asyncpg.

Owns URL normalisation (`postgresql://` → `postgresql+asyncpg://`, `sqlite:///` →
`sqlite+aiosqlite:///`) and engine options per backend.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from callbridge.errors import ConfigError

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg"}


def parse_url(url: str) -> URL:
    """`url` parsed; one SQLAlchemy cannot read is a one-line `ConfigError` naming DATABASE_URL."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"DATABASE_URL is not a database URL: {exc}") from exc


def async_url(url: str) -> str:
    """`url` with the async driver this project uses for its backend."""
    parsed = parse_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    return parsed.render_as_string(hide_password=False)


def describe(url: str) -> str:
    """The URL with any password hidden, for logs and messages."""
    return parse_url(url).render_as_string(hide_password=True)


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url` (any of sqlite://, postgresql://, or their async forms)."""
    full = async_url(url)
    if full.startswith("sqlite"):
        # How long a write waits for a lock; `?timeout=` in the URL overrides the 5 s default.
        connect_args = {} if "timeout" in make_url(full).query else {"timeout": 5}
        engine = create_async_engine(full, connect_args=connect_args)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(
        full, pool_size=5, max_overflow=5, pool_pre_ping=True, pool_timeout=5,
        connect_args={"timeout": 5, "command_timeout": 10},
    )

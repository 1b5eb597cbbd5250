"""Real databases for tests: a SQLite file, and a fresh PostgreSQL database per test, with the
`database_url` (both backends) and `store` fixtures a conftest or test module imports.

PostgreSQL is the one at 127.0.0.1:5432 (user postgres, trust auth; `CALLBRIDGE_TEST_PG` overrides
the server URL). Without it a user's run skips those tests with the reason; with `CI=true` they
fail instead, because CI must prove both backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callbridge.store.migrate import upgrade_async
from callbridge.store.repository import CallStore

PG_SERVER = os.environ.get("CALLBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
BACKENDS = ["sqlite", "postgresql"]


async def _pg_admin() -> object:
    import asyncpg

    return await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=3)


async def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        connection = await _pg_admin()
    except Exception as exc:  # any failure to connect means "not available here"
        return f"PostgreSQL at {PG_SERVER} is not reachable ({type(exc).__name__}: {exc})"
    await connection.close()  # type: ignore[attr-defined]
    return None


async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """Yield the URL of an empty, migrated database of `backend`; drop it afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'calls.db'}"
        await upgrade_async(url)
        yield url
        return
    reason = await postgres_available()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    name = f"callbridge_test_{uuid.uuid4().hex[:12]}"
    admin = await _pg_admin()
    await admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    await admin.close()  # type: ignore[attr-defined]
    url = f"{PG_SERVER}/{name}"
    try:
        await upgrade_async(url)
        yield url
    finally:
        admin = await _pg_admin()
        await admin.execute(  # type: ignore[attr-defined]
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty, migrated database: once SQLite, once PostgreSQL."""
    async for url in fresh_database(request.param, tmp_path):
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[CallStore]:
    """A `CallStore` on `database_url`, closed afterwards."""
    call_store = CallStore(database_url)
    yield call_store
    await call_store.close()

"""Every store test runs against SQLite and against a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callbridge.store.repository import CallStore
from tests.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async for url in fresh_database(request.param, tmp_path):
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[CallStore]:
    call_store = CallStore(database_url)
    yield call_store
    await call_store.close()

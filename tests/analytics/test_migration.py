"""Migration 0002: the database it makes matches the tables the code uses, and it rolls back."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from callbridge.store.database import create_engine
from callbridge.store.migrate import alembic_config
from callbridge.store.schema import include_object, metadata


async def differences(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={
                    "include_object": include_object(sync.dialect.name)}), metadata))
    finally:
        await engine.dispose()


async def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_the_migrated_schema_matches_the_code(database_url: str) -> None:
    """Columns, types, keys and indexes of every table are what schema.py declares."""
    assert await differences(database_url) == []


async def test_downgrading_to_0001_removes_only_the_analytics_tables(database_url: str) -> None:
    """The call record stays; jobs, analyses and deliveries go."""
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0001")
    left = await tables(database_url)
    assert {"calls", "turns"} <= left
    assert not {"jobs", "analyses", "webhook_deliveries"} & left

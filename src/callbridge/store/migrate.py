"""Schema migrations with Alembic, run programmatically: `callbridge db upgrade` and the check
`serve` makes before it starts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError

from callbridge.errors import ConfigError
from callbridge.store.database import create_engine, describe

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


def upgrade(database_url: str) -> None:
    """Apply every pending migration (blocking; runs its own event loop)."""
    command.upgrade(alembic_config(database_url), "head")


async def upgrade_async(database_url: str) -> None:
    """`upgrade()` from inside a running event loop."""
    await asyncio.to_thread(upgrade, database_url)


async def current_revision(database_url: str) -> str | None:
    """The schema revision the database is at, or None for an empty database."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            has_table = await connection.run_sync(
                lambda sync: inspect(sync).has_table("alembic_version"))
            if not has_table:
                return None
            query = text("SELECT version_num FROM alembic_version")
            row = (await connection.execute(query)).first()
            return None if row is None else str(row[0])
    finally:
        await engine.dispose()


async def require_current_schema(database_url: str) -> None:
    """Raise a one-line `ConfigError` unless the database is at the head revision."""
    try:
        current = await current_revision(database_url)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise ConfigError(f"cannot reach the database {describe(database_url)}: {reason}") from exc
    head = head_revision()
    if current != head:
        at = "empty" if current is None else f"at revision {current}"
        raise ConfigError(
            f"the database schema is out of date ({at}, need {head}): "
            "run `callbridge db upgrade` first"
        )

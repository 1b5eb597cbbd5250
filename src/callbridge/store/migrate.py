"""Schema migrations with Alembic, run programmatically: `callbridge db upgrade` and the check
`serve` makes before it starts.

`serve` on the embedded default needs no setup step: an empty SQLite database (a brand-new file)
gets the schema created. Any other database — PostgreSQL, or SQLite that already holds tables —
must be at the latest revision, or start-up stops with one line naming `callbridge db upgrade`:
migrating a shared database is an operator's decision, not a side effect of starting a server.
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
    revision, _ = await _survey(database_url)
    return revision


async def _survey(database_url: str) -> tuple[str | None, bool]:
    """(the schema revision or None, whether the database holds no table at all)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            if "alembic_version" not in tables:
                return None, not tables
            query = text("SELECT version_num FROM alembic_version")
            row = (await connection.execute(query)).first()
            return (None if row is None else str(row[0])), False
    finally:
        await engine.dispose()


async def _reachable_survey(database_url: str) -> tuple[str | None, bool]:
    try:
        return await _survey(database_url)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise ConfigError(f"cannot reach the database {describe(database_url)}: {reason}") from exc


async def prepare_for_serving(database_url: str) -> bool:
    """Make the database ready for `serve`: create the schema in an empty SQLite database, else
    require the latest revision (one-line `ConfigError`). True when the schema was created."""
    current, empty = await _reachable_survey(database_url)
    if empty and database_url.lower().startswith("sqlite"):
        await upgrade_async(database_url)
        return True
    _require_head(current)
    return False


async def require_current_schema(database_url: str) -> None:
    """Raise a one-line `ConfigError` unless the database is at the head revision."""
    current, _ = await _reachable_survey(database_url)
    _require_head(current)


def _require_head(current: str | None) -> None:
    head = head_revision()
    if current != head:
        at = "empty" if current is None else f"at revision {current}"
        raise ConfigError(
            f"the database schema is out of date ({at}, need {head}): "
            "run `callbridge db upgrade` first"
        )

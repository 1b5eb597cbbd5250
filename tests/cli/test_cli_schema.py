"""`serve` and the schema: a new SQLite file gets it created, anything else must be current."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from alembic import command

from callbridge.store.migrate import alembic_config, head_revision
from tests.cli.test_cli import run_cli
from tests.databases import PG_SERVER, postgres_available

SERVING = {"CALLBRIDGE_PUBLIC_URL": "https://v.example.com", "TWILIO_AUTH_TOKEN": "x",
           "OPENAI_API_KEY": "sk-test"}


def sqlite_env(path: Path) -> dict[str, str]:
    return {**SERVING, "DATABASE_URL": f"sqlite:///{path}"}


def serve_until_listening(env: dict[str, str]) -> str:
    """Start `callbridge serve --port 0`, wait until it listens, stop it; its stderr."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("CALLBRIDGE_", "TWILIO_", "OPENAI_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "callbridge", "serve", "--host", "127.0.0.1", "--port", "0"],
        env={**base, **env}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "Uvicorn running on" in line or "Application startup complete" in line:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[1]
    return "".join(lines) + rest


def test_serve_creates_the_schema_in_a_new_sqlite_file(tmp_path: Path) -> None:
    """A brand-new embedded database needs no `db upgrade`: serve creates the schema and runs."""
    env = sqlite_env(tmp_path / "new.db")
    stderr = serve_until_listening(env)
    assert "created the call record in the new database" in stderr
    assert "Uvicorn running on" in stderr or "Application startup complete" in stderr
    current = run_cli("db", "current", env=env)
    assert current.returncode == 0, current.stderr
    assert f"at {head_revision()}, latest is {head_revision()}" in current.stdout


def test_serve_refuses_sqlite_at_an_older_revision_and_db_upgrade_fixes_it(
        tmp_path: Path) -> None:
    """An older schema is never migrated behind the operator's back: one line names the command;
    after `db upgrade`, db current reports the latest revision."""
    path = tmp_path / "old.db"
    command.upgrade(alembic_config(f"sqlite:///{path}"), "0001")
    env = sqlite_env(path)
    refused = run_cli("serve", "--port", "0", env=env)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "at revision 0001" in line
    assert "callbridge db upgrade" in line
    upgraded = run_cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    current = run_cli("db", "current", env=env)
    assert f"at {head_revision()}, latest is {head_revision()}" in current.stdout


def test_serve_refuses_a_sqlite_file_that_holds_other_tables(tmp_path: Path) -> None:
    """A SQLite file with someone else's tables is not empty: serve refuses it, creates nothing."""
    path = tmp_path / "theirs.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    refused = run_cli("serve", "--port", "0", env=sqlite_env(path))
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "callbridge db upgrade" in line
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert tables == {"orders"}


def test_serve_refuses_an_empty_postgresql_database() -> None:
    """PostgreSQL is shared infrastructure: even empty, its schema is created by `db upgrade`."""
    reason = asyncio.run(postgres_available())
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    import asyncpg

    name = f"callbridge_test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=3)
        await connection.execute(statement)
        await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        refused = run_cli("serve", "--port", "0",
                          env={**SERVING, "DATABASE_URL": f"{PG_SERVER}/{name}"})
        assert refused.returncode == 2
        [line] = refused.stderr.strip().splitlines()
        assert "empty" in line
        assert "callbridge db upgrade" in line
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}"'))

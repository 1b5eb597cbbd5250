"""SQLite is one instance: a second instance on the same file says so at start-up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from callbridge.server.cluster import Cluster
from callbridge.store.migrate import upgrade_async
from callbridge.store.repository import CallStore


async def test_an_instance_sharing_a_sqlite_file_with_a_live_one_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Another instance heartbeated into the file moments ago: a warning naming it."""
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    await upgrade_async(url)
    store = CallStore(url)
    try:
        await store.heartbeat("other-box", time.time())
        await Cluster("this-box", store).start()
        said = capsys.readouterr().out
        assert "another instance is using this SQLite database" in said
        assert "other-box" in said
        await Cluster("other-box", store).start()
        assert "SQLite" not in capsys.readouterr().out, "its own heartbeat is no other one"
    finally:
        await store.close()

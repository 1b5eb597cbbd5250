"""SQLite is one instance: a second instance on the same file says so at start-up."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from callbridge.server.cluster import Cluster
from callbridge.store.migrate import upgrade_async
from callbridge.store.repository import CallStore


def logged(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """What was logged since the last call, wherever the process's logging sends it (a
    terminal renderer on stdout, stderr once `logs.configure` ran in this process, or the
    standard library's handlers)."""
    captured = capsys.readouterr()
    text = captured.out + captured.err + caplog.text
    caplog.clear()
    return text


async def test_an_instance_sharing_a_sqlite_file_with_a_live_one_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    """Another instance heartbeated into the file moments ago: a warning naming it."""
    # An in-process `callbridge eval` earlier in the run quiets the callbridge loggers.
    caplog.set_level(logging.WARNING, logger="callbridge")
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    await upgrade_async(url)
    store = CallStore(url)
    try:
        await store.heartbeat("other-box", time.time())
        await Cluster("this-box", store).start()
        said = logged(capsys, caplog)
        assert "another instance is using this SQLite database" in said
        assert "other-box" in said
        await Cluster("other-box", store).start()
        assert "SQLite" not in logged(capsys, caplog), "its own heartbeat is no other one"
    finally:
        await store.close()

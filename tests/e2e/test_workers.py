"""`callbridge serve --workers 2` on PostgreSQL: two processes on one port, any request to
either; and one instance ID never runs twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.cluster import api, cluster, owner_of, read_stream
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e


async def test_two_workers_share_one_port_and_obey_the_api_for_each_others_calls(
    tmp_path: Path,
) -> None:
    """Inbound calls to one port: both workers registered, each call carried by one upstream,
    say and the SSE stream answered for every call, hang-ups end them all."""
    async with cluster(tmp_path, size=1, workers=2) as c:
        url = c.servers[0].url
        async with asyncio.timeout(10):
            while sorted(await _instances(c.database_url)) != [  # noqa: ASYNC110 - the database
                    "node-0-w0", "node-0-w1"]:
                await asyncio.sleep(0.1)
        callers = []
        for _ in range(4):
            caller = c.rest.inbound_caller(to_number="+15550002222", server_url=url)
            await caller.dial()
            await caller.connect()
            await caller.wait_for_agent_audio(timeout=5.0)
            callers.append(caller)
        await c.fake.wait_for(
            lambda: sum(not conn.closed for conn in c.fake.connections) == 4, timeout=2.0)
        for caller in callers:
            await owner_of(c, caller.call_sid)
            await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
            said = await api(url, "POST", f"/api/calls/{caller.call_sid}/say",
                             {"text": "Still with us?"})
            assert said.status_code == 202, said.text
        events: list[tuple[str, dict[str, Any]]] = []
        reader = asyncio.create_task(read_stream(url, callers[0].call_sid, events))
        await asyncio.sleep(0.5)
        for caller in callers:
            hung = await api(url, "POST", f"/api/calls/{caller.call_sid}/hangup")
            assert hung.status_code == 202, hung.text
            await caller.wait_closed(timeout=5.0)
        assert await asyncio.wait_for(reader, 5.0) == 200
        assert events[-1][0] == "end"
        for caller in callers:
            await caller.aclose()


async def test_a_second_process_with_the_same_instance_id_refuses_to_start(
    tmp_path: Path,
) -> None:
    """Two processes named node-0 on one database: the second exits non-zero and says why."""
    async with cluster(tmp_path, size=1) as c:
        twin = ServerProcess({**c.servers[0].env}, tmp_path / "twin.log")
        with pytest.raises(RuntimeError, match="already uses CALLBRIDGE_INSTANCE_ID=node-0"):
            await twin.start()
        assert twin.wait(within=10) != 0
        live = await api(c.servers[0].url, "GET", "/api/calls/live")
        assert live.status_code == 200, "the first one runs on"


async def _instances(database_url: str) -> list[str]:
    connection = await asyncpg.connect(database_url)
    try:
        return [row[0] for row in await connection.fetch("SELECT id FROM instances")]
    finally:
        await connection.close()

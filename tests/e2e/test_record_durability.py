"""The call record survives a database outage during live calls, and a kill -9 of the server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from benchmarks.store_throughput import loop_lags
from sqlalchemy.engine import make_url

from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply
from callbridge.testing.fault_proxy import FaultProxy
from callbridge.testing.speech import speechlike
from tests.databases import BACKENDS, fresh_database
from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL, connected_call, harness
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e

OUTAGE_S = 30.0


async def keep_talking(caller: FakeTwilioCaller, until: float, seed: int) -> list[float]:
    loop = asyncio.get_running_loop()
    turn = 0
    while loop.time() < until:
        await caller.say(speechlike(0.6, seed=seed * 100 + turn))
        await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
        await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
        turn += 1
    return caller.turn_latencies


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    async for url in fresh_database("postgresql", tmp_path):
        yield url


async def test_a_30_second_database_outage_loses_no_turn_and_delays_no_frame(
    postgres_url: str, tmp_path: Path,
) -> None:
    """PostgreSQL unreachable for 30 s during 5 live calls: every turn is stored afterwards."""
    target = make_url(postgres_url)
    async with FaultProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        via_proxy = target.set(port=proxy.port).render_as_string(hide_password=False)
        env = {"CALLBRIDGE_JOURNAL": str(tmp_path / "journal.jsonl")}
        async with harness([Reply(text="Okay.", audio=speechlike(1.0, seed=99))], env=env,
                           database_url=via_proxy) as h:
            callers = [await connected_call(h) for _ in range(5)]
            stop = asyncio.Event()
            lag = asyncio.create_task(loop_lags(stop))
            loop = asyncio.get_running_loop()
            until = loop.time() + OUTAGE_S + 6
            talkers = [asyncio.create_task(keep_talking(c, until, i))
                       for i, c in enumerate(callers)]
            await asyncio.sleep(3.0)
            await proxy.outage(OUTAGE_S)
            latencies = await asyncio.gather(*talkers)
            stop.set()
            lags = await lag
            for caller in callers:
                await caller.hang_up()
            writer = h.state.writer
            assert writer is not None
            for _ in range(200):
                if writer.database_up:
                    break
                await asyncio.sleep(0.1)
            bridges = [h.bridge_of(c) for c in callers]
            await asyncio.gather(*(asyncio.wait_for(b.finished.wait(), 5) for b in bridges))
            await writer.flush(within=20.0)
            assert writer.stats.journaled > 0, "the outage really hit the writer"
            assert writer.stats.dropped == 0
            assert h.state.store is not None
            for caller, bridge in zip(callers, bridges, strict=True):
                call = await h.state.store.get_call(caller.call_sid)
                assert call is not None
                stored = {(t["role"], t["item_id"]) for t in call["transcript"]}
                spoken = {(t.role, t.item_id) for t in bridge.transcript}
                assert stored == spoken
                assert len(spoken) >= 20
                assert call["end_reason"] == "caller hung up"
            for caller in callers:
                await caller.aclose()
    # Everything — 5 callers, the fake model, the proxy and the server — shares this one event
    # loop on a 2-core machine, so the tail includes the machine's own noise.
    assert lags[int(len(lags) * 0.99)] < 0.05
    assert lags[-1] < 0.5  # a single stall of a busy 2-core machine, not a blocked loop
    assert max(max(per_call) for per_call in latencies) < 1.2


@pytest.mark.parametrize("backend", BACKENDS)
async def test_after_kill_9_the_restarted_server_marks_the_call_interrupted_with_its_turns(
    backend: str, tmp_path: Path,
) -> None:
    """SIGKILL mid-call; on restart the call is closed as interrupted and its turns are kept."""
    async for database_url in fresh_database(backend, tmp_path):
        async with FakeRealtimeServer([Reply(text="Sure, one moment.")],
                                      user_transcripts=["Book a table."]) as fake:
            env = {"CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                   "CALLBRIDGE_OPENAI_URL": fake.url, "OPENAI_API_KEY": "sk-test",
                   "DATABASE_URL": database_url, "CALLBRIDGE_GREETING": "Hello!",
                   "CALLBRIDGE_INSTANCE_ID": "killed-instance", "CALLBRIDGE_API_TOKEN": "t",
                   "CALLBRIDGE_JOURNAL": str(tmp_path / "journal.jsonl")}
            server = ServerProcess(env, tmp_path / "server.log")
            await server.start()
            try:
                caller = FakeTwilioCaller(server.url, PUBLIC_URL, AUTH_TOKEN)
                await caller.dial()
                await caller.connect()
                await caller.wait_for_agent_audio(timeout=5.0)
                await caller.wait_until_agent_quiet(quiet_for=0.4, timeout=10.0)
                await caller.say(speechlike(0.8, seed=1))
                await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
                await caller.wait_until_agent_quiet(quiet_for=0.4, timeout=10.0)
                await asyncio.sleep(0.3)  # the writer's batch interval is milliseconds
                killed_at = time.time()
                server.kill()
                await caller.wait_closed(timeout=5.0)
                await caller.aclose()
                restarted = ServerProcess(env, tmp_path / "server.log", port=server.port)
                await restarted.start()
                try:
                    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
                        response = await client.get(f"/api/calls/{caller.call_sid}",
                                                    headers={"Authorization": "Bearer t"})
                finally:
                    restarted.stop()
            finally:
                server.stop()
        call = response.json()
        assert call["end_reason"] == "interrupted"
        assert call["ended_at"] is not None
        assert [(t["role"], t["heard"]) for t in call["transcript"]] == [
            ("agent", "Hello!"), ("caller", "Book a table."), ("agent", "Sure, one moment.")]
        assert killed_at > 0

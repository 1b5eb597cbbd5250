"""Operating it: metrics during a call, admission control, graceful drain, clean logs."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import pytest

from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply
from callbridge.testing.speech import speechlike
from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL, connected_call, harness, metrics
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e


async def ready(url: str) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as client:
        return await client.get(f"{url}/readyz")


async def test_metrics_follow_a_call_and_see_the_models_delay() -> None:
    """The fake model waits 400 ms: the model-latency histogram and turn latency show it."""
    async with harness([Reply(text="Sure.", delay_ms=400)]) as h:
        async with await connected_call(h) as caller:
            await caller.say(speechlike(0.8, seed=1))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            during = await metrics(h.server.url)
            await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=5.0)
            await caller.hang_up()
        await asyncio.wait_for(h.bridge_of(caller).finished.wait(), 3.0)
        after = await metrics(h.server.url)
    assert during["callbridge_active_calls"] == 1
    assert during["callbridge_frames_in_total"] > 40
    assert after["callbridge_active_calls"] == 0
    assert after['callbridge_model_latency_seconds_count{api="realtime"}'] == 1
    assert 0.4 <= after['callbridge_model_latency_seconds_sum{api="realtime"}'] < 0.9
    assert after['callbridge_turn_latency_seconds_count{api="realtime"}'] == 1
    assert after['callbridge_turn_latency_seconds_sum{api="realtime"}'] >= 0.4
    assert after['callbridge_calls_total{api="realtime",outcome="caller_hung_up"}'] == 1
    assert after['callbridge_upstream_connect_seconds_count{api="realtime"}'] == 1
    assert after['callbridge_tokens_total{api="realtime",kind="output_audio"}'] > 0
    assert after['callbridge_estimated_cost_usd_total{api="realtime"}'] > 0


async def test_a_full_instance_sends_callers_to_the_overflow_and_is_not_ready() -> None:
    """CALLBRIDGE_MAX_CALLS=1: the second call hears the overflow TwiML; /readyz flips."""
    async with harness(env={"CALLBRIDGE_MAX_CALLS": "1",
                            "CALLBRIDGE_OVERFLOW_NUMBER": "+15557770000"}) as h:
        assert (await ready(h.server.url)).status_code == 200
        first = await connected_call(h)
        not_ready = await ready(h.server.url)
        assert not_ready.status_code == 503
        assert not_ready.json()["reason"] == "full"
        second = h.caller()
        twiml = await second.dial()
        assert twiml.stream_url is None
        assert "<Number>+15557770000</Number>" in twiml.xml
        await first.hang_up()
        await asyncio.wait_for(h.bridge_of(first).finished.wait(), 3.0)
        assert (await ready(h.server.url)).status_code == 200
        values = await metrics(h.server.url)
        assert values['callbridge_calls_refused_total{reason="full"}'] == 1
        await first.aclose()
        await second.aclose()


async def serve(tmp_path: Path, fake: FakeRealtimeServer, log_level: str = "warning",
                **env: str) -> ServerProcess:
    server = ServerProcess({"CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                            "CALLBRIDGE_OPENAI_URL": fake.url, "OPENAI_API_KEY": "sk-test",
                            "DATABASE_URL": "none", **env},
                           tmp_path / "server.log", log_level=log_level)
    await server.start()
    return server


async def test_sigterm_drains_live_calls_then_exits_zero(tmp_path: Path) -> None:
    """SIGTERM during 3 calls: no new call is admitted, the 3 finish, exit 0 in time."""
    async with FakeRealtimeServer([Reply(text="Okay.")]) as fake:
        server = await serve(tmp_path, fake, CALLBRIDGE_DRAIN_SECONDS="15",
                             CALLBRIDGE_GREETING="Hello!")
        try:
            callers = [FakeTwilioCaller(server.url, PUBLIC_URL, AUTH_TOKEN) for _ in range(3)]
            for caller in callers:
                await caller.dial()
                await caller.connect()
                await caller.wait_for_agent_audio(timeout=5.0)
            signalled = time.monotonic()
            server.terminate()
            await asyncio.sleep(0.5)
            assert (await ready(server.url)).json()["reason"] == "draining"
            late = FakeTwilioCaller(server.url, PUBLIC_URL, AUTH_TOKEN)
            assert (await late.dial()).stream_url is None, "no new calls while draining"
            for caller in callers:  # the live calls go on, then end as callers hang up
                await caller.say(speechlike(0.6, seed=3))
                await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
                assert caller.closed_by_server_at is None
                await caller.hang_up()
            code = await asyncio.to_thread(server.wait, 15.0)
            assert code == 0
            assert time.monotonic() - signalled < 15.0
            for caller in [*callers, late]:
                await caller.aclose()
        finally:
            server.stop()


async def test_a_drain_deadline_wraps_up_calls_politely(tmp_path: Path) -> None:
    """A call still up at the drain deadline hears a closing line; then the process exits 0."""
    async with FakeRealtimeServer([Reply(text="We have to end the call now, goodbye.")]) as fake:
        server = await serve(tmp_path, fake, CALLBRIDGE_DRAIN_SECONDS="1")
        try:
            caller = FakeTwilioCaller(server.url, PUBLIC_URL, AUTH_TOKEN)
            await caller.dial()
            await caller.connect()
            server.terminate()
            await caller.wait_for_agent_audio(timeout=5.0)
            code = await asyncio.to_thread(server.wait, 30.0)
            assert code == 0
            creates = [e for e in fake.connections[0].client_events
                       if e["type"] == "response.create"]
            assert "goodbye" in creates[0]["response"]["instructions"].lower()
            await caller.aclose()
        finally:
            server.stop()


PHONE = re.compile(r"\+1555000\d{4}")
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{120,}={0,2}")


async def test_the_logs_of_a_whole_call_hold_no_phone_number_and_no_audio(tmp_path: Path) -> None:
    """Info-level JSON logs of a full call: masked numbers, no payloads, call_sid bound."""
    async with FakeRealtimeServer([Reply(text="Happy to help.")],
                                  user_transcripts=["Hi there"]) as fake:
        server = await serve(tmp_path, fake, log_level="info", CALLBRIDGE_GREETING="Hello!")
        try:
            caller = FakeTwilioCaller(server.url, PUBLIC_URL, AUTH_TOKEN)
            await caller.dial()
            await caller.connect()
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.say(speechlike(0.8, seed=2))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.hang_up()
            await caller.aclose()
            await asyncio.sleep(0.5)
        finally:
            server.stop()
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()
             if line.strip()]
    text = json.dumps(lines, ensure_ascii=False)
    assert PHONE.search(text) is None
    assert BASE64_RUN.search(text) is None
    call_lines = [line for line in lines if line.get("call_sid") == caller.call_sid]
    assert any(line["event"] == "stream_started" for line in call_lines)
    assert all("stream_sid" in line for line in call_lines
               if line["event"] in ("barge_in", "call_ended"))
    assert "+1555•••1111" in text, "the masked caller number is logged once"

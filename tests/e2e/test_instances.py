"""Two instances on one PostgreSQL database, in this process: the webhook on one, the media
socket on the other, callbacks and live-call API requests on either."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from callbridge.server.app import CallbridgeServer, create_app
from callbridge.server.runner import RunningServer, running
from callbridge.testing.fake_caller import FakeTwilioCaller
from tests.databases import fresh_database
from tests.e2e.harness import (
    AUTH_TOKEN,
    PUBLIC_URL,
    Harness,
    harness,
    read_sse,
    stream_elsewhere,
)
from tests.server.console.kit import csrf_in, signed_in

pytestmark = pytest.mark.e2e

API_TOKEN = "api-secret"
GREETING = "Thanks for calling, how can I help?"


@dataclasses.dataclass
class Pair:
    a: Harness
    b: RunningServer
    b_state: CallbridgeServer


@contextlib.asynccontextmanager
async def two_instances(tmp_path: Path, **env: str) -> AsyncIterator[Pair]:
    async for url in fresh_database("postgresql", tmp_path):
        settings_env = {"CALLBRIDGE_API_TOKEN": API_TOKEN, "CALLBRIDGE_GREETING": GREETING,
                        "CALLBRIDGE_JOURNAL": str(tmp_path / "a.jsonl"),
                        "CALLBRIDGE_INSTANCE_ID": "instance-a", **env}
        async with harness(env=settings_env, database_url=url) as a:
            b_settings = dataclasses.replace(a.state.settings, instance_id="instance-b",
                                             journal_path=str(tmp_path / "b.jsonl"))
            b_app = create_app(b_settings)
            b_app.state.callbridge.calls.keep_finished = 100
            async with running(b_app) as b:
                yield Pair(a, b, b_app.state.callbridge)


async def post(url: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
        return await client.post(path, json=body,
                                 headers={"Authorization": f"Bearer {API_TOKEN}"})


async def signed(url: str, path: str, params: dict[str, str]) -> httpx.Response:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC_URL}{path}", params)
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
        return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


async def test_the_pre_opened_upstream_closes_within_a_second_of_the_stream_starting_elsewhere(
    tmp_path: Path,
) -> None:
    """Webhook on A, stream on B: A's pre-opened session closes at once; B's carries the call."""
    async with two_instances(tmp_path) as pair:
        dialer = pair.a.caller()
        twiml = await dialer.dial()
        fake = pair.a.fake
        await fake.wait_for(lambda: len(fake.connections) == 1, timeout=3.0)
        loop = asyncio.get_running_loop()
        began = loop.time()
        caller = await stream_elsewhere(pair.b.url, dialer, twiml)
        await fake.wait_for(lambda: fake.connections[0].closed, timeout=3.0)
        assert loop.time() - began < 1.0
        assert [c.closed for c in fake.connections] == [True, False]
        assert pair.a.state.calls.get(dialer.call_sid) is None
        await caller.hang_up()
        await caller.aclose()
        await dialer.aclose()


async def test_a_stream_token_is_single_use_across_instances(tmp_path: Path) -> None:
    """The token redeemed on B is refused on A: one upstream session per call."""
    async with two_instances(tmp_path) as pair:
        dialer = pair.a.caller()
        twiml = await dialer.dial()
        caller = await stream_elsewhere(pair.b.url, dialer, twiml)
        assert twiml.stream_url is not None
        replay = FakeTwilioCaller(pair.a.server.url, PUBLIC_URL, AUTH_TOKEN,
                                  call_sid=dialer.call_sid)
        await replay.connect(twiml.stream_url, parameters=twiml.parameters)
        await replay.wait_closed(timeout=3.0)
        assert replay.close_code == 1008
        assert pair.a.state.calls.get(dialer.call_sid) is None
        await caller.hang_up()
        for each in (caller, replay, dialer):
            await each.aclose()


async def test_say_context_and_hangup_sent_to_the_other_instance_reach_the_call(
    tmp_path: Path,
) -> None:
    """API requests on A for B's call: routed to B, which the model's events show."""
    async with two_instances(tmp_path) as pair:
        dialer = pair.a.caller()
        caller = await stream_elsewhere(pair.b.url, dialer, await dialer.dial())
        await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
        sid, a_url = dialer.call_sid, pair.a.server.url
        live = await _get(a_url, "/api/calls/live")
        assert [(c["call_sid"], c["instance"]) for c in live["calls"]] == [(sid, "instance-b")]
        assert (await post(a_url, f"/api/calls/{sid}/context",
                           {"text": "The caller is a VIP."})).status_code == 202
        said = await post(a_url, f"/api/calls/{sid}/say", {"text": "Your parcel has shipped."})
        assert said.status_code == 202, said.text
        await pair.a.fake.wait_for(lambda: any(
            "Your parcel has shipped." in e.get("response", {}).get("instructions", "")
            for c in pair.a.fake.connections for e in c.client_events
            if e.get("type") == "response.create"), timeout=3.0)
        items = [e for c in pair.a.fake.connections for e in c.client_events
                 if e.get("type") == "conversation.item.create"]
        assert any(e["item"].get("role") == "system" for e in items)
        assert (await post(a_url, f"/api/calls/{sid}/say", {"text": ""})).status_code == 400
        assert (await post(a_url, "/api/calls/CAnope/say", {"text": "x"})).status_code == 404
        await caller.aclose()
        await dialer.aclose()


async def test_the_live_stream_read_from_the_other_instance_ends_with_the_call(
    tmp_path: Path,
) -> None:
    """SSE on A for B's call: events flow while it lasts, `end` comes when Twilio completes it
    (the status callback landing on A, too)."""
    async with two_instances(tmp_path) as pair:
        dialer = pair.a.caller()
        caller = await stream_elsewhere(pair.b.url, dialer, await dialer.dial())
        sid, a_url = dialer.call_sid, pair.a.server.url
        events: list[tuple[str, dict[str, Any]]] = []

        async def read() -> None:
            async with httpx.AsyncClient(base_url=a_url, trust_env=False, timeout=10) as client:
                assert await read_sse(client, f"/api/calls/{sid}/stream", events,
                                      Authorization=f"Bearer {API_TOKEN}") == 200

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        assert (await post(a_url, f"/api/calls/{sid}/say",
                           {"text": "Still there?"})).status_code == 202
        await pair.a.fake.wait_for(lambda: any(kind == "turn" for kind, _ in events), 5.0)
        completed = await signed(a_url, "/twilio/status",
                                 {"CallSid": sid, "CallStatus": "completed"})
        assert completed.status_code == 204
        await asyncio.wait_for(reader, 5.0)
        kinds = [kind for kind, _ in events]
        assert "transcript.delta" in kinds
        assert kinds[-1] == "end"
        await caller.aclose()
        await dialer.aclose()


async def _get(url: str, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
        response = await client.get(path, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_the_console_on_the_other_instance_lists_follows_and_hangs_up_the_call(
    tmp_path: Path,
) -> None:
    """The console on A for B's call: listed with its instance, its live page shows the turns
    so far (the greeting) and then new ones, and its hang-up reaches B and ends the page's
    stream."""
    async with two_instances(tmp_path) as pair:
        dialer = pair.a.caller()
        caller = await stream_elsewhere(pair.b.url, dialer, await dialer.dial())
        await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
        sid = dialer.call_sid
        events: list[tuple[str, dict[str, Any]]] = []
        async with httpx.AsyncClient(base_url=pair.a.server.url, trust_env=False,
                                     timeout=10) as client:
            await signed_in(client, API_TOKEN)
            listed = await client.get("/console/live")
            assert sid in listed.text
            assert "instance-b" in listed.text
            page = await client.get(f"/console/live/{sid}")
            assert page.status_code == 200
            csrf = csrf_in(page.text)

            async def read() -> None:
                assert await read_sse(client, f"/console/live/{sid}/events", events) == 200

            reader = asyncio.create_task(read())
            await pair.a.fake.wait_for(lambda: bool(events), 5.0)
            assert events[0] == ("turn", {"role": "agent", "text": GREETING,
                                          "interrupted": False})
            said = await client.post(f"/console/live/{sid}/say",
                                     data={"csrf": csrf, "text": "Your parcel has shipped."})
            assert "note=" in said.headers["location"]
            await pair.a.fake.wait_for(lambda: any(
                "Your parcel has shipped." in e.get("text", "") for _, e in events), 5.0)
            hung_up = await client.post(f"/console/live/{sid}/hangup", data={"csrf": csrf})
            assert "note=" in hung_up.headers["location"]
            await asyncio.wait_for(reader, 5.0)
        assert [kind for kind, _ in events].count("turn") == 2  # each turn once
        assert events[-1][0] == "ended"
        await caller.wait_closed(timeout=5.0)
        await caller.aclose()
        await dialer.aclose()


async def _record(url: str, call_sid: str) -> dict[str, Any]:
    return await _get(url, f"/api/calls/{call_sid}")


async def test_a_repeated_webhook_after_the_stream_went_elsewhere_keeps_no_upstream(
    tmp_path: Path,
) -> None:
    """Twilio repeats the webhook on A after B took the stream: A's new pre-opened session is
    closed at once, and when its token expires A records no end for the call going on at B."""
    async with two_instances(tmp_path, CALLBRIDGE_STREAM_TOKEN_TTL="3") as pair:
        dialer = pair.a.caller()
        caller = await stream_elsewhere(pair.b.url, dialer, await dialer.dial())
        fake, sid = pair.a.fake, dialer.call_sid
        await fake.wait_for(lambda: fake.connections[0].closed, timeout=3.0)
        await dialer.dial()  # the repeat, on A again
        await asyncio.sleep(1.0)
        assert sum(not c.closed for c in fake.connections) == 1  # B's, carrying the call
        await asyncio.sleep(3.0)  # past the repeat's token
        assert pair.a.state.writer is not None
        await pair.a.state.writer.flush()
        assert (await _record(pair.a.server.url, sid))["ended_at"] is None
        await caller.hang_up()
        await caller.aclose()
        await dialer.aclose()


async def test_a_lost_release_message_records_no_false_end_when_the_token_expires(
    tmp_path: Path,
) -> None:
    """B took the stream but A never heard (the release message lost): when A's token expires
    it reads the call's row, sees B carries it, and hands over instead of recording an end."""
    async with two_instances(tmp_path, CALLBRIDGE_STREAM_TOKEN_TTL="2") as pair:
        pair.a.state.cluster.handler = None  # A ignores every message from B
        dialer = pair.a.caller()
        caller = await stream_elsewhere(pair.b.url, dialer, await dialer.dial())
        fake, sid = pair.a.fake, dialer.call_sid
        assert not fake.connections[0].closed  # A still holds its pre-opened session
        await fake.wait_for(lambda: fake.connections[0].closed, timeout=4.0)
        assert pair.a.state.calls.get(sid) is None
        assert pair.a.state.writer is not None
        await pair.a.state.writer.flush()
        record = await _record(pair.a.server.url, sid)
        assert record["ended_at"] is None
        assert not [e for e in record["events"] if "no media stream" in json.dumps(e)]
        await caller.hang_up()
        await caller.aclose()
        await dialer.aclose()

"""Three real `callbridge serve` processes on one PostgreSQL database behind a round-robin
balancer: a call's webhook, media socket, callbacks and API requests land on different
instances, and the call behaves as on one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from callbridge.testing.fake_caller import FakeTwilioCaller
from tests.e2e.cluster import (
    GREETING,
    VOICEMAIL,
    Cluster,
    api,
    cluster,
    open_upstreams,
    owner_of,
    read_stream,
    recorded,
    signed,
)

pytestmark = pytest.mark.e2e


def creates_saying(c: Cluster, text: str) -> list[dict[str, Any]]:
    return [e for conn in c.fake.connections for e in conn.client_events
            if e.get("type") == "response.create"
            and text in e.get("response", {}).get("instructions", "")]


async def inbound_call(c: Cluster) -> FakeTwilioCaller:
    """An inbound call through the balancer: its webhook and its media socket are two
    connections, so they land on two instances."""
    caller = c.rest.inbound_caller(to_number="+15550002222")
    await caller.dial()
    await caller.connect()
    await caller.wait_for_agent_audio(timeout=5.0)
    return caller


async def test_inbound_calls_carry_one_upstream_each_and_obey_any_instance(
    tmp_path: Path,
) -> None:
    """Three inbound calls; one upstream session each within a second of the stream; say,
    context, the SSE stream, recording and completed callbacks on instances not carrying it."""
    async with cluster(tmp_path) as c:
        callers = []
        loop = asyncio.get_running_loop()
        for _ in range(3):
            callers.append(await inbound_call(c))
            began = loop.time()
            await c.fake.wait_for(lambda: open_upstreams(c) == len(callers), timeout=1.0)
            assert loop.time() - began < 1.0
        caller = callers[0]
        sid = caller.call_sid
        owner = await owner_of(c, sid)
        elsewhere, third = c.not_carrying(owner)
        events: list[tuple[str, dict[str, Any]]] = []
        reader = asyncio.create_task(read_stream(third, sid, events))
        await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
        said = await api(elsewhere, "POST", f"/api/calls/{sid}/say", {"text": "Parcel shipped."})
        assert said.status_code == 202, said.text
        noted = await api(elsewhere, "POST", f"/api/calls/{sid}/context", {"text": "A VIP."})
        assert noted.status_code == 202, noted.text
        await c.fake.wait_for(lambda: bool(creates_saying(c, "Parcel shipped.")), timeout=3.0)
        assert (await api(elsewhere, "POST", f"/api/calls/{sid}/transfer",
                          {"to": "12345"})).status_code == 400
        recording = await signed(elsewhere, "/twilio/recording", {
            "CallSid": sid, "RecordingSid": "RE" + "1" * 32, "RecordingStatus": "completed",
            "RecordingUrl": "https://api.twilio.com/rec", "RecordingDuration": "3"})
        assert recording.status_code == 204
        completed = await signed(elsewhere, "/twilio/status",
                                 {"CallSid": sid, "CallStatus": "completed"})
        assert completed.status_code == 204
        await caller.wait_closed(timeout=3.0)
        assert await asyncio.wait_for(reader, 5.0) == 200
        kinds = [kind for kind, _ in events]
        assert "transcript.delta" in kinds
        assert "turn" in kinds
        assert kinds[-1] == "end"
        record = await recorded(c, sid, lambda r: r["ended_at"] and r["recording_sid"])
        assert record["recording_sid"] == "RE" + "1" * 32
        assert record["instance"] == owner
        gone = await api(elsewhere, "POST", f"/api/calls/{sid}/say", {"text": "Hello?"})
        assert gone.status_code == 404
        for other in callers[1:]:
            hung = await api(c.proxy.url, "POST", f"/api/calls/{other.call_sid}/hangup")
            assert hung.status_code == 202, hung.text
            await other.wait_closed(timeout=5.0)
        await c.fake.wait_for(lambda: open_upstreams(c) == 0, timeout=3.0)
        for each in callers:
            await each.aclose()


async def test_outbound_calls_keep_their_agent_and_amd_verdict_across_instances(
    tmp_path: Path,
) -> None:
    """Placed through one instance, TwiML on the next, stream on the third, the AMD verdict on
    yet another: a machine gets the voicemail then a hang-up; a person gets the greeting."""
    async with cluster(tmp_path) as c:
        placed = await api(c.proxy.url, "POST", "/api/calls",
                           {"to": "+15557654321", "agent": "reminders"})
        assert placed.status_code == 202, placed.text
        sid = placed.json()["call_sid"]
        callee = await c.rest.answer(sid, answered_by="machine_end_beep", amd_delay=0.5)
        await callee.wait_closed(timeout=15.0)
        [update] = c.rest.updates(sid)
        assert update.value("Status") == "completed"
        assert len(creates_saying(c, VOICEMAIL)) == 1
        assert creates_saying(c, GREETING) == [], "no greeting to a machine"
        record = await recorded(c, sid, lambda r: r["ended_at"] is not None)
        assert record["end_reason"] == "left a voicemail"
        assert record["agent"] == "reminders"
        [amd] = [d for d in c.rest.deliveries if d.kind == "amd"]
        assert amd.status == 204

        placed = await api(c.proxy.url, "POST", "/api/calls",
                           {"to": "+15557654321", "agent": "reminders"})
        person = await c.rest.answer(placed.json()["call_sid"], answered_by="human",
                                     amd_delay=1.0)
        started = await person.wait_for_agent_audio(timeout=5.0)
        assert started >= 0.6, "quiet until the verdict"
        assert len(creates_saying(c, GREETING)) == 1
        await person.hang_up()
        await callee.aclose()
        await person.aclose()


async def test_a_transfer_and_a_goodbye_sent_to_another_instance(tmp_path: Path) -> None:
    """A transfer with an announcement, and a hang-up with a goodbye, each requested on an
    instance not carrying the call: Twilio gets the Dial TwiML, then the hang-up."""
    async with cluster(tmp_path) as c:
        first, second = await inbound_call(c), await inbound_call(c)
        for caller in (first, second):
            await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
        elsewhere = c.not_carrying(await owner_of(c, first.call_sid))[0]
        moved = await api(elsewhere, "POST", f"/api/calls/{first.call_sid}/transfer",
                          {"to": "+15551230000", "announcement": "Putting you through."})
        assert moved.status_code == 202, moved.text
        await first.wait_closed(timeout=10.0)
        [redirect] = c.rest.updates(first.call_sid)
        assert "<Number>+15551230000</Number>" in (redirect.value("Twiml") or "")
        assert len(creates_saying(c, "Putting you through.")) == 1
        elsewhere = c.not_carrying(await owner_of(c, second.call_sid))[0]
        bye = await api(elsewhere, "POST", f"/api/calls/{second.call_sid}/hangup",
                        {"goodbye": "Thanks for calling, goodbye."})
        assert bye.status_code == 202, bye.text
        await second.wait_closed(timeout=10.0)
        assert len(creates_saying(c, "Thanks for calling, goodbye.")) == 1
        [hang_up] = c.rest.updates(second.call_sid)
        assert hang_up.value("Status") == "completed"
        again = await api(elsewhere, "POST", f"/api/calls/{second.call_sid}/hangup")
        assert again.status_code == 404
        for caller in (first, second):
            await caller.aclose()


async def test_a_killed_instances_calls_end_up_interrupted_and_the_others_go_on(
    tmp_path: Path,
) -> None:
    """kill -9 of the instance carrying one call: the others close it as interrupted within
    seconds, and its live stream followed from another instance ends; the call carried
    elsewhere keeps talking."""
    async with cluster(tmp_path) as c:
        victim_call = await inbound_call(c)
        victim = await owner_of(c, victim_call.call_sid)
        survivor_call = await inbound_call(c)
        for _ in range(3):
            if await owner_of(c, survivor_call.call_sid) != victim:
                break
            await survivor_call.hang_up()
            await survivor_call.aclose()
            c.proxy.skip()  # the next stream lands one instance further on
            survivor_call = await inbound_call(c)
        assert await owner_of(c, survivor_call.call_sid) != victim
        followed: list[tuple[str, dict[str, Any]]] = []
        follower = asyncio.create_task(
            read_stream(c.not_carrying(victim)[0], victim_call.call_sid, followed))
        await asyncio.sleep(0.5)
        c.servers[int(victim.split("-")[1])].kill()
        record = await recorded(c, victim_call.call_sid,
                                lambda r: r["ended_at"] is not None, within=15.0)
        assert record["end_reason"] == "interrupted"
        assert await asyncio.wait_for(follower, 10.0) == 200
        assert followed[-1][0] == "end"
        survivor = await recorded(c, survivor_call.call_sid, lambda r: True)
        assert survivor["ended_at"] is None
        said = await api(c.not_carrying(victim)[0], "GET", "/api/calls/live")
        assert [call["call_sid"] for call in said.json()["calls"]] == [survivor_call.call_sid]
        await survivor_call.hang_up()
        for caller in (victim_call, survivor_call):
            await caller.aclose()

"""The live page's commands over real sockets: say, transfer, hang up with a goodbye, and what
they refuse."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from callbridge.testing.fake_realtime import Reply
from tests.e2e.harness import connected_call
from tests.server.console.kit import console_server, csrf_in, signed_in

pytestmark = pytest.mark.e2e


async def test_say_and_transfer_reach_the_model_and_twilio(tmp_path: Path) -> None:
    """"Say" becomes a word-for-word response.create; a bad transfer target is refused with
    the reason, a good one replaces the call's TwiML with a <Dial> through the REST API."""
    async with console_server(tmp_path, twilio_rest=True) as h:
        async with await connected_call(h) as caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
            async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
                await signed_in(client)
                live = await client.get(f"/console/live/{caller.call_sid}")
                csrf = csrf_in(live.text)
                base = f"/console/live/{caller.call_sid}"
                said = await client.post(f"{base}/say", data={
                    "csrf": csrf, "text": "Your table is booked for 7 pm."})
                empty = await client.post(f"{base}/say", data={"csrf": csrf, "text": "  "})
                bad = await client.post(f"{base}/transfer",
                                        data={"csrf": csrf, "to": "javascript:alert(1)"})
                good = await client.post(f"{base}/transfer",
                                         data={"csrf": csrf, "to": "+15557654321"})
                unknown = await client.post("/console/live/CAnone/say",
                                            data={"csrf": csrf, "text": "hi"})
            await caller.wait_closed(timeout=5.0)
    creates = [e for e in h.fake.connections[0].client_events if e["type"] == "response.create"]
    assert any("Your table is booked for 7 pm." in (e.get("response") or {}).get(
        "instructions", "") for e in creates)
    assert "note=" in said.headers["location"]
    assert "error=" in empty.headers["location"]
    assert "error=" in bad.headers["location"]
    assert "E.164" in httpx.URL(bad.headers["location"]).params["error"]
    assert "note=" in good.headers["location"]
    assert "not+live" in unknown.headers["location"] or "not%20live" in unknown.headers[
        "location"]
    assert h.rest is not None
    [update] = h.rest.updates(caller.call_sid)
    twiml = update.value("Twiml") or ""
    assert "<Dial" in twiml
    assert "+15557654321" in twiml


async def test_hang_up_with_a_goodbye_lets_the_agent_close_first(tmp_path: Path) -> None:
    """The agent is asked to wrap up, says its last line, and the call is hung up."""
    async with console_server(tmp_path, twilio_rest=True,
                              replies=[Reply(text="Thanks for calling, goodbye!")]) as h:
        async with await connected_call(h) as caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
            heard_before = caller.played_bytes
            async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
                await signed_in(client)
                csrf = csrf_in((await client.get(f"/console/live/{caller.call_sid}")).text)
                response = await client.post(f"/console/live/{caller.call_sid}/hangup",
                                             data={"csrf": csrf, "goodbye": "yes"})
            await caller.wait_closed(timeout=10.0)
        await asyncio.wait_for(h.bridge_of(caller).finished.wait(), 5.0)
    assert response.headers["location"].startswith(f"/console/calls/{caller.call_sid}")
    assert caller.played_bytes > heard_before, "the goodbye was heard before the hang-up"
    assert h.rest is not None
    [update] = h.rest.updates(caller.call_sid)
    assert update.value("Status") == "completed"

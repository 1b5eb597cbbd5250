"""Several agents end to end: a number routed to a non-default agent, hand-offs that go on
(A → B → A, A → B → C), and the call's audio format kept across a hand-off — over real sockets
with the fake caller and fake model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callbridge.testing.fake_realtime import FakeConnection, Reply, ToolCall
from callbridge.testing.speech import speechlike
from tests.e2e.harness import Harness, connected_call, harness

pytestmark = pytest.mark.e2e

AGENTS = """
default_agent = "front"
[numbers]
"+15550003333" = "sales"
[agents.front]
instructions = "You are the front desk."
handoffs = ["billing"]
[agents.billing]
instructions = "You handle billing."
handoffs = ["front", "claims"]
[agents.claims]
instructions = "You handle claims."
[agents.sales]
instructions = "You sell things."
greeting = "Sales, hello."
"""


def agent_file(tmp_path: Path, body: str = AGENTS) -> dict[str, str]:
    path = tmp_path / "agents.toml"
    path.write_text(body)
    return {"CALLBRIDGE_AGENT_FILE": str(path)}


def instructions(connection: FakeConnection) -> list[str]:
    """The instructions of every session.update on a connection, in order."""
    return [e["session"]["instructions"] for e in connection.client_events
            if e["type"] == "session.update"]


def bridge_turns(h: Harness, caller: Any) -> list[Any]:
    return [t for t in h.bridge_of(caller).transcript if t.role == "agent"]


def switch(agent: str) -> Reply:
    return Reply(tool_call=ToolCall("switch_agent", {"agent": agent}))


async def talk_through(h: Harness, turns: int) -> Any:
    """Dial, then speak `turns` times, each time hearing the agent's whole answer."""
    async with await connected_call(h) as caller:
        for turn in range(turns):
            await caller.say(speechlike(0.6, seed=30 + turn))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=1.0, timeout=10.0)
        await caller.hang_up()
    return caller


async def test_a_number_routed_to_another_agent_is_answered_by_it(tmp_path: Path) -> None:
    """[numbers] sends +15550003333 to `sales`: its instructions and greeting, not front's."""
    async with harness([Reply(text="Sales, hello.")], env=agent_file(tmp_path)) as h:
        async with await connected_call(h, to_number="+15550003333") as caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.hang_up()
        connection = h.fake.connections[0]
        assert instructions(connection) == ["You sell things."]
        [greeting] = [e for e in connection.client_events if e["type"] == "response.create"]
        assert "Sales, hello." in greeting["response"]["instructions"]
        assert h.bridge_of(caller).session.profile.name == "sales"
        assert h.fake.violations == []


@pytest.mark.parametrize(("route", "expected"), [
    (["billing", "front"], ["You are the front desk.", "You handle billing.",
                            "You are the front desk."]),
    (["billing", "claims"], ["You are the front desk.", "You handle billing.",
                             "You handle claims."]),
])
async def test_a_second_handoff_goes_where_the_second_agent_sends_it(
        tmp_path: Path, route: list[str], expected: list[str]) -> None:
    """Front hands to billing, which hands back to front (A → B → A) or on to claims
    (A → B → C); each agent speaks after taking over."""
    replies = [switch(route[0]), Reply(text="Billing here."), switch(route[1]),
               Reply(text="Here again.")]
    async with harness(replies, env=agent_file(tmp_path)) as h:
        caller = await talk_through(h, turns=2)
        connection = h.fake.connections[0]
        assert instructions(connection) == expected
        heard = [t.heard for t in bridge_turns(h, caller)]
        assert heard == ["Billing here.", "Here again."]
        bridge = h.bridge_of(caller)
        assert bridge.notes["agent_switched"] == 2
        assert bridge.session.profile.name == route[1]
        assert h.fake.violations == []


@pytest.mark.parametrize("voice", ["marin", "cedar"])
async def test_a_pcm16_call_stays_pcm16_after_a_handoff(tmp_path: Path, voice: str) -> None:
    """The audio format is fixed per call: a hand-off to a μ-law agent restates 24 kHz PCM,
    in place (same voice) or on the fresh session a new voice needs once the agent spoke."""
    body = ('default_agent = "front"\n[agents.front]\naudio_format = "pcm16"\nvoice = "marin"\n'
            'handoffs = ["billing"]\n'
            f'[agents.billing]\nvoice = "{voice}"\ninstructions = "You handle billing."\n')
    replies = [Reply(text="Hello."), switch("billing"), Reply(text="Billing here.")]  # no greeting
    async with harness(replies, env=agent_file(tmp_path, body)) as h:
        caller = await talk_through(h, turns=2)
        updates = [e["session"] for c in h.fake.connections for e in c.client_events
                   if e["type"] == "session.update"]
        assert updates[-1]["instructions"] == "You handle billing."
        assert {u["audio"]["output"]["format"]["type"] for u in updates} == {"audio/pcm"}
        assert {u["audio"]["input"]["format"]["type"] for u in updates} == {"audio/pcm"}
        assert len(h.fake.connections) == (1 if voice == "marin" else 2)
        assert h.bridge_of(caller).notes["agent_switched"] == 1
        assert h.fake.violations == []
        assert caller.violations == []

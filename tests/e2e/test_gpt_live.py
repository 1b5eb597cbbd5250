"""A phone call on GPT-Live end to end over real sockets: greeting, turns, tools by delegation,
hang-up, a stalled Twilio stream. Every client event is checked strictly by the fake."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_live import LiveReply, LiveToolCall
from callbridge.testing.fault_proxy import FaultProxy
from callbridge.testing.speech import speechlike
from tests.e2e.live_harness import LiveHarness, live_harness

pytestmark = pytest.mark.e2e

GREETING = "Thanks for calling Ada's bakery. How can I help?"


def assert_clean(h: LiveHarness, *callers: FakeTwilioCaller) -> None:
    assert h.fake.violations == []
    for caller in callers:
        assert caller.violations == []


async def test_the_greeting_is_heard_within_a_second_and_a_half_of_the_stream() -> None:
    """The pre-opened session greets through commentary; the caller hears it promptly."""
    async with live_harness(env={"CALLBRIDGE_GREETING": GREETING}) as h:
        caller = h.caller()
        await caller.dial()
        await caller.connect()
        async with caller:
            started = await caller.wait_for_agent_audio(timeout=5.0)
            assert started < 1.5
            await caller.wait_until_agent_quiet(quiet_for=1.0, timeout=15.0)
            await caller.hang_up()
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        agent = [t for t in bridge.transcript if t.role == "agent"]
        assert [t.heard for t in agent] == [GREETING]
        assert [e["type"] for e in h.fake.client_events][:2] == [
            "session.start", "session.commentary.append"]
        assert_clean(h, caller)


async def test_two_turns_are_answered_and_transcribed_on_both_sides() -> None:
    """Caller speech reaches the model continuously; each reply is played and recorded."""
    replies = [LiveReply("We open at eight tomorrow."), LiveReply("Yes, we bake rye bread.")]
    async with live_harness(replies, user_transcripts=["When do you open?", "Any rye?"]) as h:
        caller = h.caller()
        await caller.dial()
        await caller.connect()
        async with caller:
            for seed in (3, 4):
                await caller.say(speechlike(1.2, seed=seed))
                await caller.wait_for_agent_audio(timeout=6.0, after=caller.spoken_until)
                await caller.wait_until_agent_quiet(quiet_for=1.0, timeout=15.0)
            await caller.hang_up()
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        said = [(t.role, t.heard) for t in bridge.transcript]
        assert ("caller", "When do you open?") in said
        assert ("agent", "We open at eight tomorrow.") in said
        assert ("caller", "Any rye?") in said
        assert ("agent", "Yes, we bake rye bread.") in said
        assert len(bridge.latencies) == 2
        assert all(0 < ms < 3000 for ms, _ in bridge.latencies)
        assert_clean(h, caller)


async def test_a_delegated_tool_runs_in_our_runner_with_two_calls_open_at_once(
        tmp_path: Path) -> None:
    """The backend asks for two function calls at once; both run in callbridge's tool runner,
    both outputs go back, and only then one response.create; the answer is spoken."""
    agent = tmp_path / "agent.toml"
    agent.write_text('tools_module = "tests.e2e.agent_tools"\n'
                     'model = "gpt-live-1.1"\ntools = ["add"]\n')
    reply = LiveReply("The sums are {outputs}.", tool_calls=(
        LiveToolCall("add", {"a": 2, "b": 3}), LiveToolCall("add", {"a": 10, "b": 5})))
    async with live_harness([reply], env={"CALLBRIDGE_AGENT_FILE": str(agent)}) as h:
        caller = h.caller()
        await caller.dial()
        await caller.connect()
        async with caller:
            await caller.say(speechlike(1.2, seed=5))
            await h.fake.wait_for_event("response.create", timeout=10.0)
            await caller.wait_for_agent_audio(timeout=8.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=1.0, timeout=15.0)
            await caller.hang_up()
        events = [e["type"] for e in h.fake.client_events]
        outputs = [i for i, kind in enumerate(events) if kind == "response.item.create"]
        assert len(outputs) == 2
        assert events.count("response.create") == 1
        assert events.index("response.create") > max(outputs)
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        assert ("agent", "The sums are 5; 15.") in [(t.role, t.heard) for t in bridge.transcript]
        assert_clean(h, caller)


async def test_hanging_up_closes_the_live_session_within_five_seconds() -> None:
    """Twilio `stop`: session.close, the server's session.closed, then the socket closes."""
    async with live_harness(env={"CALLBRIDGE_GREETING": GREETING}) as h:
        caller = h.caller()
        await caller.dial()
        await caller.connect()
        async with caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.hang_up()
            loop = asyncio.get_running_loop()
            hung_up = loop.time()
            await h.fake.wait_for(lambda: all(s.closed for s in h.fake.sessions), timeout=6.0)
            assert loop.time() - hung_up < 5.0
        [session] = h.fake.sessions
        assert session.closed_reason == "close_requested"
        assert h.fake.client_events[-1]["type"] == "session.close"
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        assert bridge.session.cost_usd > 0  # active seconds at $0.05 a minute
        assert_clean(h, caller)


async def test_a_one_second_twilio_stall_is_filled_with_silence() -> None:
    """While Twilio's frames are held back, the model's input keeps flowing in real time."""
    async with live_harness(env={"CALLBRIDGE_GREETING": GREETING}) as h:
        host, port = h.server.url.removeprefix("http://").split(":")
        async with FaultProxy(target_host=host, target_port=int(port)) as proxy:
            caller = h.caller(server_url=f"http://127.0.0.1:{proxy.port}")
            await caller.dial()
            await caller.connect()
            async with caller:
                await caller.wait_for_agent_audio(timeout=5.0)
                await asyncio.sleep(0.5)
                proxy.stall("up")
                await asyncio.sleep(1.0)
                proxy.resume("up")
                await asyncio.sleep(0.5)
                await caller.hang_up()
        [session] = h.fake.sessions
        assert session.input_missing_ms < 150  # no stall reached the model
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        assert bridge.session.model.input.silence_sent_ms >= 700
        assert h.fake.violations == []

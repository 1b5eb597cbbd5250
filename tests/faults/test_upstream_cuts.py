"""The Realtime socket cut (TCP abort, no close frame) at each phase of a call, three times each:
the new session is seeded with the conversation, the greeting is never repeated, the caller hears
the comfort tone rather than silence, the call goes on and nothing is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.testing.fake_realtime import Reply, ToolCall
from callbridge.testing.speech import speechlike
from tests.faults.conftest import ReliabilityLog
from tests.faults.rig import (
    Injection,
    agent_turns,
    assert_survived,
    audible_gap,
    client_events,
    conclude,
    greetings_requested,
    rig,
    settle_and_turn,
    through_a_cut,
    turn,
    until,
)

pytestmark = pytest.mark.e2e

N = 3
GREETING = {"CALLBRIDGE_GREETING": "Hello, thanks for calling Ada's Bakery."}
ANSWER = Reply(text="Let me check our opening hours for you today.",
               audio=speechlike(2.0, seed=7))



async def test_a_call_without_faults_sets_the_baseline(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """Control: greeting and one turn, no fault; its gap is the ordinary wait for a reply."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], env=GREETING, speed=2.0) as r:
            caller = await r.call()
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=0.4, timeout=10.0)
            went_on = await turn(caller, seed=i)
            gap = audible_gap(caller.heard_segments, caller.utterances[-1][1], caller.now())
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "control", "none (control call)", "greeting and one turn", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.5)


async def test_a_cut_before_session_updated_delays_the_greeting_but_says_it_once(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The first session dies before it is configured: the second one greets, exactly once."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], env=GREETING, speed=2.0) as r:
            r.fake.drop_when("session.updated")
            caller = await r.call()
            await caller.wait_for_agent_audio(timeout=8.0)
            gap, went_on = await settle_and_turn(caller, since=0.0, seed=i)
            assert greetings_requested(r) == 1
            return await conclude(r, caller, went_on=went_on, gap=gap,
                                  greetings=greetings_requested(r))

    results = await reliability.measure(
        "cut-before-session-updated", "upstream cut before `session.updated`",
        "`drop_when('session.updated')`", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=2.0)


async def test_a_cut_mid_greeting_resumes_without_greeting_again(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The socket dies on the greeting's third audio delta: the tone, then the agent goes on."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], env=GREETING, speed=2.0) as r:
            r.fake.drop_when("response.output_audio.delta", nth=3)
            caller = await r.call()
            gap, went_on = await through_a_cut(r, caller, seed=i)
            assert greetings_requested(r) == 1, "the greeting is never repeated"
            return await conclude(r, caller, went_on=went_on, gap=gap,
                                  greetings=greetings_requested(r))

    results = await reliability.measure(
        "cut-mid-greeting", "upstream cut mid-greeting",
        "`drop_when('response.output_audio.delta', nth=3)`", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.0)


async def test_a_cut_mid_user_speech_hands_the_rest_of_the_speech_to_the_new_session(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """Cut as the caller starts talking: the new session gets the buffered speech and answers."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], speed=2.0) as r:
            r.fake.drop_when("input_audio_buffer.speech_started")
            caller = await r.call()
            await until(lambda: bool(client_events(r, "session.update")))
            await caller.say(speechlike(1.5, seed=100 + i))
            spoken = caller.spoken_until
            await caller.wait_for_agent_audio(timeout=8.0, after=spoken)
            await until(lambda: bool(agent_turns(r, caller)), within=10.0)
            gap, went_on = await settle_and_turn(caller, since=spoken, seed=i)
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "cut-mid-user-speech", "upstream cut mid-user-speech",
        "`drop_when('input_audio_buffer.speech_started')`", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=2.0)


async def test_a_cut_while_a_tool_runs_delivers_its_result_to_the_new_session(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """Cut while a 1.5 s tool runs: its output reaches the new session, and the answer is spoken."""
    agent_file = tmp_path / "agents.toml"
    agent_file.parent.mkdir(parents=True, exist_ok=True)
    agent_file.write_text('tools_module = "tests.faults.agent_tools"\n'
                          '[agent]\ntools = ["slow_lookup"]\n')
    replies = [Reply(tool_call=ToolCall("slow_lookup", {"order_id": "A-17"})),
               Reply(text="Your order A-17 ships tomorrow.", audio=speechlike(1.2, seed=8))]

    async def scenario(tmp: Path, i: int) -> Injection:
        env = {"CALLBRIDGE_AGENT_FILE": str(agent_file)}
        async with rig(tmp, replies, env=env, speed=2.0) as r:
            caller = await r.call()
            await caller.say(speechlike(0.6, seed=200 + i))
            spoken = caller.spoken_until
            await until(lambda: any(e["type"] == "response.function_call_arguments.done"
                                    for e in r.fake.connections[0].sent_events))
            await asyncio.sleep(0.3)  # the tool is running
            fault_at = caller.now()
            await r.fake.drop_all()
            answered = await until(lambda: "Your order A-17 ships tomorrow." in
                                   agent_turns(r, caller), within=15.0)
            gap, turned = await settle_and_turn(caller, since=max(spoken, fault_at), seed=i)
            went_on = answered and turned
            seeded = [e["item"]["type"] for e in r.fake.connections[1].client_events
                      if e["type"] == "conversation.item.create"]
            assert "function_call" in seeded, "the new session knows the call its output answers"
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "cut-mid-tool-call", "upstream cut mid-tool-call (1.5 s tool)",
        "`drop_all()` 0.3 s into the tool", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.0)


async def test_a_cut_mid_response_restores_the_history_and_the_agent_carries_on(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The socket dies on a reply's fifth audio delta: history restored, reply resumed."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], speed=2.0) as r:
            caller = await r.call()
            r.fake.drop_when("response.output_audio.delta", nth=5)
            await caller.say(speechlike(0.6, seed=300 + i))
            gap, went_on = await through_a_cut(r, caller, seed=i)
            roles = [e["item"].get("role") for e in r.fake.connections[1].client_events
                     if e["type"] == "conversation.item.create"]
            assert roles[:2] == ["user", "assistant"], "the conversation so far, as items"
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "cut-mid-response", "upstream cut mid-response",
        "`drop_when('response.output_audio.delta', nth=5)`", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.0)

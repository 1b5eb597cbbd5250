"""Faults on a GPT-Live agent's upstream, three calls each, against the fake GPT-Live server (the
`live-` rows of the reliability table, after a control call): the socket dropped before
`session.started`, mid-greeting, mid-reply, while a backend function call is open and between
turns; the network stalled while a reply is under way; non-fatal `error` events; a fatal one;
the Responses backend failing. Every call goes on (a dropped session is replaced by one whose
`session.start` carries the conversation as `input`, and the greeting is never said twice) or,
for the fatal error, ends with the apology; nothing the caller said or heard is lost.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_live import LiveReply, LiveToolCall
from callbridge.testing.speech import speechlike
from tests.faults.conftest import ReliabilityLog
from tests.faults.rig import (
    Injection,
    Rig,
    agent_turns,
    assert_survived,
    audible_gap,
    client_events,
    conclude,
    ended_in_record,
    into_a_reply,
    rig,
    settle_and_turn,
    through_a_stall,
    turn,
    until,
)

pytestmark = pytest.mark.e2e

N = 3
GREETING = "Hello, thanks for calling Ada's Bakery."
GREETED = {"CALLBRIDGE_GREETING": GREETING}
ANSWER = LiveReply("Let me check our opening hours for you today.",
                   audio=speechlike(2.0, seed=7))


def greetings_asked(r: Rig) -> int:
    """`session.commentary.append`s asking for the greeting, over all sessions."""
    return sum(1 for e in client_events(r, "session.commentary.append")
               if GREETING in e["content"])


def greetings_said(r: Rig) -> int:
    """Times the model said the greeting, over all sessions."""
    return sum(1 for u in r.live.spoken if u.text == GREETING)


def restored_input(r: Rig, session: int) -> list[str]:
    """The texts of the conversation a session's `session.start` was given as `input`."""
    start = next(e for e in r.live.sessions[session].client_events
                 if e["type"] == "session.start")
    return [m["content"][0]["text"] for m in start["session"].get("input", [])]


async def greeted(caller: FakeTwilioCaller) -> None:
    """The greeting has been heard to its end."""
    await caller.wait_for_agent_audio(timeout=8.0)
    await caller.wait_until_agent_quiet(quiet_for=0.4, timeout=10.0)


async def through_a_drop(r: Rig, caller: FakeTwilioCaller, *, seed: int) -> tuple[float, bool]:
    """The first session is being dropped (`drop_when` armed): wait for the drop, for the
    replacing session to speak and fall quiet, then `settle_and_turn` from the drop."""
    await until(lambda: bool(r.upstreams) and r.upstreams[0].closed)
    fault_at = caller.now()
    await until(lambda: len(r.live.sessions) >= 2 and bool(r.live.sessions[1].spoken),
                within=10.0)
    await caller.wait_for_agent_audio(timeout=8.0, after=fault_at)
    return await settle_and_turn(caller, since=fault_at, seed=seed)


async def test_a_live_call_without_faults_sets_the_baseline(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """Control: greeting and one turn on GPT-Live, no fault; its gap is the ordinary wait for a
    reply (the fake's 500 ms end of turn and its reaction time)."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], live=True, env=GREETED, speed=2.0) as r:
            caller = await r.call()
            await greeted(caller)
            went_on = await turn(caller, seed=i)
            gap = audible_gap(caller.heard_segments, caller.utterances[-1][1], caller.now())
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "live-control", "GPT-Live: none (control call)", "greeting and one turn", tmp_path,
        scenario, n=N)
    assert_survived(results, max_gap=1.5)


# ---------------------------------------------------------------- the socket dropped


async def test_a_drop_before_session_started_delays_the_greeting_but_says_it_once(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The first socket dies before `session.started`: the second session greets, once."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], live=True, env=GREETED, speed=2.0) as r:
            r.live.drop_when("session.started")
            caller = await r.call()
            await caller.wait_for_agent_audio(timeout=8.0)
            gap, went_on = await settle_and_turn(caller, since=0.0, seed=i)
            assert len(r.live.sessions) == 2
            assert (greetings_asked(r), greetings_said(r)) == (1, 1)
            return await conclude(r, caller, went_on=went_on, gap=gap,
                                  greetings=greetings_said(r))

    results = await reliability.measure(
        "live-cut-before-session-started", "GPT-Live socket dropped before `session.started`",
        "`drop_when('session.started')`", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=2.0)


async def test_a_drop_mid_greeting_resumes_without_greeting_again(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The socket dies on the greeting's third audio delta: the replacing session is given the
    conversation and asked to go on; the greeting is not said again."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], live=True, env=GREETED, speed=2.0) as r:
            r.live.drop_when("session.output_audio.delta", nth=3)
            caller = await r.call()
            gap, went_on = await through_a_drop(r, caller, seed=i)
            assert greetings_asked(r) == 1, "the greeting is never asked for again"
            assert GREETING not in [u.text for u in r.live.sessions[1].spoken]
            return await conclude(r, caller, went_on=went_on, gap=gap,
                                  greetings=greetings_said(r))

    results = await reliability.measure(
        "live-cut-mid-greeting", "GPT-Live socket dropped mid-greeting",
        "`drop_when('session.output_audio.delta', nth=3)`", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.0)


async def test_a_drop_mid_reply_restores_the_conversation_and_the_agent_carries_on(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The socket dies on a reply's fifth audio delta: the new session's `session.start` holds
    the conversation as `input`, and the agent answers on it."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], live=True, env=GREETED, speed=2.0) as r:
            caller = await r.call()
            await greeted(caller)
            r.live.drop_when("session.output_audio.delta", nth=5)
            await caller.say(speechlike(0.6, seed=300 + i))
            gap, went_on = await through_a_drop(r, caller, seed=i)
            assert GREETING in restored_input(r, 1)
            assert GREETING not in [u.text for u in r.live.sessions[1].spoken]
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "live-cut-mid-reply", "GPT-Live socket dropped mid-reply",
        "`drop_when('session.output_audio.delta', nth=5)`", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.0)


async def test_a_drop_while_a_backend_function_call_is_open_hands_its_result_on(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The socket dies while the backend's 1.5 s function call runs in our tool runner: the
    new session knows the call, is given its result when it finishes, and the caller hears an
    answer; no output goes to a session that never made the call."""
    agent_file = tmp_path / "agents.toml"
    agent_file.parent.mkdir(parents=True, exist_ok=True)
    agent_file.write_text('tools_module = "tests.faults.agent_tools"\n'
                          '[agent]\nmodel = "gpt-live-1.1"\ntools = ["slow_lookup"]\n')
    replies = [LiveReply("Your order A-17 ships tomorrow.", tool_calls=(
        LiveToolCall("slow_lookup", {"order_id": "A-17"}),))]

    async def scenario(tmp: Path, i: int) -> Injection:
        env = {"CALLBRIDGE_AGENT_FILE": str(agent_file)}
        async with rig(tmp, replies, live=True, env=env, speed=2.0) as r:
            caller = await r.call()
            await caller.say(speechlike(0.6, seed=200 + i))
            spoken = caller.spoken_until
            await until(lambda: any(e["type"] == "response.event"
                                    and e["event"].get("item", {}).get("type") == "function_call"
                                    for e in r.live.sessions[0].sent_events))
            await asyncio.sleep(0.3)  # the tool is running
            fault_at = caller.now()
            await r.live.drop_all()
            answered = await until(lambda: len(agent_turns(r, caller)) >= 1, within=15.0)
            gap, turned = await settle_and_turn(caller, since=max(spoken, fault_at), seed=i)
            went_on = answered and turned
            first, second = r.live.sessions[:2]
            assert any("Called tool slow_lookup" in text for text in restored_input(r, 1)), (
                "the new session knows the call")
            assert first.function_outputs == {}, "the dropped session never got its output"
            assert set(second.function_outputs) <= {
                call_id for d in second.delegations for call_id in d.calls}, (
                "outputs go only to calls the session made")
            handed_on = [e["content"] for e in second.client_events
                         if e["type"] == "session.thinking.append"]
            assert any("ships tomorrow" in text for text in handed_on), (
                "the result reaches the new session as a silent fact")
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "live-cut-mid-function-call", "GPT-Live socket dropped mid-function-call (1.5 s tool)",
        "`drop_all()` 0.3 s into the tool", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=2.0)


async def test_a_drop_between_turns_is_restored_and_the_next_turn_answered(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The socket dies while nobody speaks: the new session has the conversation, says
    nothing of its own, and answers the caller's next turn."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], live=True, env=GREETED, speed=2.0) as r:
            caller = await r.call()
            await greeted(caller)
            assert await turn(caller, seed=400 + i)
            await until(lambda: len(agent_turns(r, caller)) >= 2)
            await r.live.drop_all()
            await until(lambda: len(r.live.sessions) >= 2 and r.live.sessions[1].resource
                        is not None)
            went_on = await turn(caller, seed=i)
            gap = (audible_gap(caller.heard_segments, caller.utterances[-1][1], caller.now())
                   if went_on else None)
            assert GREETING in restored_input(r, 1)
            assert ANSWER.text in restored_input(r, 1)
            assert greetings_said(r) == 1
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "live-cut-between-turns", "GPT-Live socket dropped between turns",
        "`drop_all()` with nobody speaking", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.5)


# ---------------------------------------------------------------- a stall

STALL_S = 5.0
DEADLINE_S = 3.0  # CALLBRIDGE_UPSTREAM_STALL_S's default


async def test_a_5_second_network_stall_mid_reply_is_given_up_within_3_s_and_the_call_goes_on(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The network to GPT-Live stalls 5 s as a reply starts (no FIN, no RST): within the 3 s
    stall deadline the socket is given up, the comfort sound plays while a new session opens,
    and the call goes on; nothing lost."""
    reply = LiveReply("Our opening hours are nine to five.", audio=speechlike(2.5, seed=5))

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [reply], live=True, proxied=True, speed=1.0) as r:
            caller = await r.call()
            gap, went_on = await through_a_stall(r, caller, STALL_S, seed=i + 400)
            lost = r.h.bridge_of(caller).notes["upstream_lost"]
            return await conclude(r, caller, went_on=went_on, gap=gap, upstream_lost=lost)

    results = await reliability.measure(
        "live-stall-5s", "GPT-Live upstream stalls 5 s mid-reply",
        "`FaultProxy.stall()`, `resume()` after 5 s", tmp_path, scenario, n=N)
    assert_survived(results)
    # Given up once, by the keepalive; the silence ends within the deadline (the comfort sound
    # follows until the network is back).
    assert all(r.notes["upstream_lost"] == 1 for r in results), results
    assert all(DEADLINE_S - 1.0 < (r.gap_s or 0.0) < DEADLINE_S + 0.5 for r in results), results


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "kind"),
    [("rate_limit_exceeded", "rate_limit_error"), ("server_error", "server_error")],
    ids=["rate-limit", "server-error"],
)
async def test_a_non_fatal_error_event_mid_reply_never_ends_the_call(
    code: str, kind: str, tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """An `error` event while the agent speaks is counted; the session stays (no reconnect),
    the reply and the next turn are heard (§2.5: a command error leaves the session running)."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], live=True, speed=2.0) as r:
            caller = await r.call()
            fault_at = await into_a_reply(caller, seed=500 + i)
            await r.live.send_error(code, f"An injected {code}.", kind)
            gap, went_on = await settle_and_turn(caller, since=fault_at, seed=i)
            bridge = r.h.bridge_of(caller)
            assert bridge.session.stats.upstream_errors == 1
            assert bridge.notes["upstream_lost"] == 0
            assert len(r.live.sessions) == 1
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        f"live-error-{code}", f"GPT-Live `error` event `{code}` mid-reply",
        f"`send_error('{code}', …)`", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=0.5)


async def test_a_fatal_error_ends_the_call_with_the_apology(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """`invalid_model` (then a 1011 close) mid-reply: no reconnect; the media stream ends, Twilio
    plays the apology, and the record holds the call as ended with every finished turn."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [ANSWER], live=True, speed=2.0) as r:
            caller = await r.call()
            await into_a_reply(caller, seed=600 + i)
            await r.live.send_error("invalid_model", "Model is not a Live model.", fatal=True)
            await caller.wait_closed(timeout=5.0)
            assert len(r.live.sessions) == 1, "a fatal error is not retried"
            result = await conclude(r, caller, went_on=False, gap=None, count_frames=False)
            assert await ended_in_record(r, caller) == "upstream error invalid_model"
            return result

    results = await reliability.measure(
        "live-error-fatal", "GPT-Live fatal `error` event `invalid_model` mid-reply",
        "`send_error('invalid_model', …, fatal=True)`", tmp_path, scenario, n=N)
    assert [r.outcome for r in results] == ["ended gracefully"] * N, results
    assert all(r.turns_lost == 0 and r.healthy for r in results), results


async def test_a_failed_backend_response_is_apologised_for_and_the_call_goes_on(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """The Responses backend's response ends in `response.failed` after asking for a function
    call: its call is discarded (no output is sent for it), the model apologises, and the
    caller's next turn is answered."""
    agent_file = tmp_path / "agents.toml"
    agent_file.parent.mkdir(parents=True, exist_ok=True)
    agent_file.write_text('tools_module = "tests.faults.agent_tools"\n'
                          '[agent]\nmodel = "gpt-live-1.1"\ntools = ["slow_lookup"]\n')
    replies = [LiveReply("Sorry, I cannot check orders right now.", backend_fails=True,
                         tool_calls=(LiveToolCall("slow_lookup", {"order_id": "A-17"}),)),
               ANSWER]

    async def scenario(tmp: Path, i: int) -> Injection:
        env = {"CALLBRIDGE_AGENT_FILE": str(agent_file)}
        async with rig(tmp, replies, live=True, env=env, speed=2.0) as r:
            caller = await r.call()
            fault_at = await into_a_reply(caller, seed=700 + i)
            gap, went_on = await settle_and_turn(caller, since=fault_at, seed=i, within=12.0)
            session = r.live.sessions[0]
            assert session.function_outputs == {}, "no output for a discarded call"
            assert len(r.live.sessions) == 1
            assert r.h.bridge_of(caller).session.stats.upstream_errors == 1
            assert "Sorry, I cannot check orders right now." in agent_turns(r, caller)
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "live-backend-failed", "GPT-Live Responses backend fails (`response.failed`)",
        "`LiveReply(backend_fails=True)` with a function call", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.0)

"""A phone call on GPT-Live end to end over real sockets: greeting, turns, tools by delegation,
hang-up, a stalled Twilio stream. Every client event is checked strictly by the fake."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from callbridge.core.live_model import BACKEND_FAILED
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_live import LiveReply, LiveToolCall
from callbridge.testing.fault_proxy import FaultProxy
from callbridge.testing.speech import speechlike
from tests.e2e import live_backends
from tests.e2e.harness import metrics
from tests.e2e.live_harness import LiveHarness, live_harness

pytestmark = pytest.mark.e2e

GREETING = "Thanks for calling Ada's bakery. How can I help?"


def assert_clean(h: LiveHarness, *callers: FakeTwilioCaller) -> None:
    assert h.fake.violations == []
    for caller in callers:
        assert caller.violations == []


def agent_file(tmp_path: Path, body: str) -> dict[str, str]:
    path = tmp_path / "agent.toml"
    path.write_text('tools_module = "tests.e2e.agent_tools"\n' + body)
    return {"CALLBRIDGE_AGENT_FILE": str(path)}


async def dialed(h: LiveHarness) -> FakeTwilioCaller:
    caller = h.caller()
    await caller.dial()
    await caller.connect()
    return caller


async def answered_after_the_greeting(caller: FakeTwilioCaller, seed: int) -> None:
    """The greeting plays out, the caller says something, and the agent's answer plays out."""
    await caller.wait_for_agent_audio(timeout=5.0)
    await caller.wait_until_agent_quiet(quiet_for=1.0, timeout=15.0)
    await caller.say(speechlike(1.2, seed=seed))
    await caller.wait_for_agent_audio(timeout=8.0, after=caller.spoken_until)
    await caller.wait_until_agent_quiet(quiet_for=1.0, timeout=15.0)


async def closed_by_the_agent(h: LiveHarness, seed: int) -> tuple[FakeTwilioCaller, Any]:
    """The caller says something; the agent's tool closes the call through REST: the caller
    and the one REST update of the call."""
    assert h.rest is not None
    caller = await dialed(h)
    await caller.say(speechlike(0.8, seed=seed))
    await caller.wait_closed(timeout=15.0)
    [update] = h.rest.updates(caller.call_sid)
    return caller, update


async def test_the_greeting_is_heard_within_a_second_and_a_half_of_the_stream() -> None:
    """The pre-opened session greets through commentary; the caller hears it promptly."""
    async with live_harness(env={"CALLBRIDGE_GREETING": GREETING}) as h:
        caller = await dialed(h)
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
        caller = await dialed(h)
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
        seen = await metrics(h.server.url)
    assert seen['callbridge_calls_total{api="live",outcome="caller_hung_up"}'] == 1
    assert seen['callbridge_turn_latency_seconds_count{api="live"}'] == 2
    assert seen['callbridge_model_active_seconds_total{api="live"}'] > 3.0
    assert seen['callbridge_estimated_cost_usd_total{api="live"}'] > 0
    assert 'callbridge_calls_total{api="realtime",outcome="caller_hung_up"}' not in seen


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
        caller = await dialed(h)
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


@pytest.mark.parametrize("backend", ["opening_hours", "broken"])
async def test_client_delegation_is_answered_by_the_agents_python_backend(
        tmp_path: Path, backend: str) -> None:
    """Client delegation: the model hands the caller's question to our backend with the
    conversation so far; its answer (or, when it fails, an apology) goes back as commentary
    tied to the delegation, which the model speaks: every delegation gets an answer."""
    live_backends.ASKED.clear()
    agent = tmp_path / "agent.toml"
    agent.write_text(f'model = "gpt-live-1.1"\nlive_delegation = "client"\n'
                     f'backend = "tests.e2e.live_backends:{backend}"\n'
                     f'greeting = "{GREETING}"\n')
    async with live_harness([LiveReply(delegate=True)],
                            env={"CALLBRIDGE_AGENT_FILE": str(agent)}) as h:
        caller = await dialed(h)
        async with caller:
            await answered_after_the_greeting(caller, seed=8)
            await caller.hang_up()
        [session] = h.fake.sessions
        [delegation] = session.delegations
        assert delegation.target == "client"
        [asked] = live_backends.ASKED
        assert asked.id == delegation.id
        assert asked.conversation[0].role == "assistant"
        assert asked.conversation[0].text == GREETING
        assert asked.question  # the fake's transcript of the caller
        [answer] = delegation.answers
        if backend == "opening_hours":
            assert answer == f"We open at eight, and your call is {caller.call_sid[-4:]}."
        else:
            assert answer == BACKEND_FAILED
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        assert any(t.role == "agent" and t.heard for t in bridge.transcript[1:])
        assert_clean(h, caller)


async def test_hanging_up_closes_the_live_session_within_five_seconds() -> None:
    """Twilio `stop`: session.close, the server's session.closed, then the socket closes."""
    async with live_harness(env={"CALLBRIDGE_GREETING": GREETING}) as h:
        caller = await dialed(h)
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
        assert session.input_missing_ms < 300  # the stall never reached the model (1 s held)
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        assert bridge.session.model.input.silence_sent_ms >= 700
        assert h.fake.violations == []


async def test_end_call_hangs_up_through_rest_after_the_goodbye_was_heard(
        tmp_path: Path) -> None:
    """The backend calls end_call; the agent says goodbye; once it has played, REST completes
    the call."""
    env = agent_file(tmp_path, '[agent]\nmodel = "gpt-live-1.1"\ntools = ["end_call"]\n')
    replies = [LiveReply("Goodbye!", tool_calls=(
        LiveToolCall("end_call", {"reason": "caller said bye"}),))]
    async with live_harness(replies, env=env, twilio_rest=True) as h:
        caller, update = await closed_by_the_agent(h, seed=3)
        assert update.value("Status") == "completed"
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        assert bridge.session.end_reason == "agent ended the call: caller said bye"
        goodbye = [t for t in bridge.transcript if t.role == "agent"][-1]
        assert goodbye.heard  # the last words were played before the hang-up
        assert h.fake.violations == []


async def test_transfer_redirects_to_a_dial_after_the_announcement(tmp_path: Path) -> None:
    """transfer_call(sales) from the backend: the announcement plays, then the Dial TwiML."""
    env = agent_file(tmp_path, '[agent]\nmodel = "gpt-live-1.1"\ntools = ["transfer_call"]\n'
                               'transfer_announcement = "Connecting you to sales now."\n'
                               '[agent.transfer_targets]\nsales = "+15551230000"\n')
    replies = [LiveReply("One moment.", tool_calls=(
        LiveToolCall("transfer_call", {"target": "sales"}),))]
    async with live_harness(replies, env=env, twilio_rest=True) as h:
        caller, update = await closed_by_the_agent(h, seed=4)
        assert "<Number>+15551230000</Number>" in (update.value("Twiml") or "")
        assert caller.played_bytes > 0
        await caller.aclose()
        assert h.fake.violations == []


async def test_a_hand_off_opens_a_fresh_session_seeded_with_the_conversation(
        tmp_path: Path) -> None:
    """switch_agent to billing: a new Live session (its configuration is fixed at start) whose
    session.start carries the conversation, and no second greeting."""
    env = agent_file(tmp_path, '''
[agents.front]
model = "gpt-live-1.1"
greeting = "Welcome to Ada's."
handoffs = ["billing"]
[agents.billing]
model = "gpt-live-1.1"
voice = "cedar"
instructions = "You handle billing."
''')
    replies = [LiveReply("Passing you over.", tool_calls=(
        LiveToolCall("switch_agent", {"agent": "billing"}),)),
               LiveReply("Billing here, how can I help?")]
    async with live_harness(replies, env=env, user_transcripts=["I have a billing question.",
                                                                "About my invoice."]) as h:
        caller = await dialed(h)
        async with caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=1.0, timeout=15.0)
            await caller.say(speechlike(1.0, seed=6))
            await h.fake.wait_for(lambda: len(h.fake.sessions) == 2, timeout=10.0)
            await caller.hang_up()
        starts = [e for e in h.fake.client_events if e["type"] == "session.start"]
        assert len(starts) == 2
        assert starts[1]["session"]["audio"]["output"]["voice"] == "cedar"
        restored = [m["content"][0]["text"] for m in starts[1]["session"]["input"]]
        assert "Welcome to Ada's." in restored
        # The fake labels every session's first commentary "greeting"; what matters is that
        # the second session never says the greeting again.
        assert "Welcome to Ada's." not in [u.text for u in h.fake.sessions[1].spoken]
        assert h.fake.violations == []


async def test_a_dropped_socket_is_restored_without_a_second_greeting() -> None:
    """The Live socket drops mid-call: a new session with the conversation as input, no second
    greeting, and the caller's next turn is answered."""
    # Each fake session plays the script from its start: both sessions answer the same way.
    replies = [LiveReply("We open at eight.")]
    async with live_harness(replies, env={"CALLBRIDGE_GREETING": GREETING},
                            user_transcripts=["When do you open?"]) as h:
        caller = await dialed(h)
        async with caller:
            await answered_after_the_greeting(caller, seed=7)
            await h.fake.drop_all()
            await h.fake.wait_for(lambda: len(h.fake.sessions) == 2, timeout=5.0)
            await asyncio.sleep(0.5)
            await caller.say(speechlike(1.0, seed=8))
            await caller.wait_for_agent_audio(timeout=8.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=1.0, timeout=15.0)
            await caller.hang_up()
        starts = [e for e in h.fake.client_events if e["type"] == "session.start"]
        restored = [m["content"][0]["text"] for m in starts[1]["session"]["input"]]
        assert GREETING in restored
        assert "We open at eight." in restored
        assert GREETING not in [u.text for u in h.fake.sessions[1].spoken]
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        answers = [t for t in bridge.transcript if (t.role, t.heard) == ("agent",
                                                                         "We open at eight.")]
        assert len(answers) == 2  # one from each session: the turn after the drop was answered
        assert h.fake.violations == []


@pytest.mark.parametrize(("recycle_s", "expires_in_s"), [("3", 600), (None, 10)],
                         ids=["configured recycle", "the session's own expires_at"])
async def test_the_session_is_recycled_at_a_quiet_moment_before_it_expires(
        recycle_s: str | None, expires_in_s: float) -> None:
    """Before the session's end — CALLBRIDGE_SESSION_RECYCLE_S, or with none the `expires_at`
    the server stated (10 s away) — a new session replaces the old one between turns, with the
    conversation: closed by us, not expired by the server, and the call goes on."""
    replies = [LiveReply("We open at eight.")]
    env = {"CALLBRIDGE_GREETING": GREETING}
    if recycle_s is not None:
        env["CALLBRIDGE_SESSION_RECYCLE_S"] = recycle_s
    async with live_harness(replies, env=env, expires_in_s=expires_in_s) as h:
        caller = await dialed(h)
        async with caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            await h.fake.wait_for(lambda: len(h.fake.sessions) == 2, timeout=12.0)
            await caller.say(speechlike(1.0, seed=9))
            await caller.wait_for_agent_audio(timeout=8.0, after=caller.spoken_until)
            await caller.hang_up()
        assert h.fake.sessions[0].closed_reason == "close_requested"
        assert GREETING not in [u.text for u in h.fake.sessions[1].spoken]
        assert h.fake.violations == []


async def test_keypad_digits_reach_the_live_model_as_text_and_it_answers() -> None:
    """4, 2, # on the keypad: the model is told the digits (it hears no DTMF) and asked to
    answer, and the caller hears the answer."""
    async with live_harness([LiveReply("Option forty-two, got it.")],
                            env={"CALLBRIDGE_GREETING": GREETING}) as h:
        caller = await dialed(h)
        async with caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
            pressed_at = caller.now()
            for digit in "42#":
                await caller.send_dtmf(digit)
            await h.fake.wait_for_event("session.instructions.append", timeout=5.0)
            await caller.wait_for_agent_audio(timeout=8.0, after=pressed_at)
            await caller.hang_up()
        notes = [e["content"] for e in h.fake.client_events
                 if e["type"] == "session.instructions.append"]
        assert "The caller pressed 4 2 on their keypad." in notes
        asks = [e for e in h.fake.client_events if e["type"] == "session.commentary.append"]
        assert len(asks) == 2  # the greeting, then the answer to the keys
        assert_clean(h, caller)


LONG_ANSWER = ("We open at eight every weekday morning, and on Saturdays we open at nine, "
               "with fresh rye, sourdough, seeded loaves, croissants and cinnamon buns, and "
               "the cafe in the back serves coffee until four in the afternoon.")


async def test_the_caller_talks_over_the_agent_and_hears_only_what_was_sent() -> None:
    """The model stops by itself when talked over; callbridge sends no clear: the caller hears
    exactly the audio the model sent before it stopped, and the as-heard transcript holds
    only the words it said, not the whole answer, marked interrupted (the greeting is not)."""
    async with live_harness([LiveReply(LONG_ANSWER), LiveReply("Sure, go ahead.")],
                            env={"CALLBRIDGE_GREETING": GREETING}) as h:
        caller = await dialed(h)
        async with caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=1.0, timeout=15.0)
            await caller.say(speechlike(1.0, seed=11))
            answer_at = await caller.wait_for_agent_audio(timeout=8.0, after=caller.spoken_until)
            await asyncio.sleep(max(0.0, answer_at + 2.0 - caller.now()))  # 2 s into it
            await caller.say(speechlike(1.2, seed=12))  # talks over the long answer
            [reply] = [u for u in h.fake.spoken if u.text == LONG_ANSWER]
            await h.fake.wait_for(lambda: reply.done, timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=1.5, timeout=15.0)
            await caller.hang_up()
        assert reply.interrupted
        assert len(reply.audio) < len(reply.audio_planned or b"") / 2
        sent = sum(len(u.audio) for u in h.fake.spoken)
        frame = 160  # each reply's last piece is padded with silence to a whole 20 ms frame
        assert caller.played_bytes <= sent + frame * len(h.fake.spoken)
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 7.0)
        [turn] = [t for t in bridge.transcript if t.role == "agent" and t.heard
                  and LONG_ANSWER.startswith(t.heard.strip())]
        assert turn.heard.strip() == reply.transcript.strip()
        assert len(turn.heard) < len(LONG_ANSWER) / 2
        assert turn.interrupted
        assert not [t for t in bridge.transcript if t.role == "agent" and t.interrupted
                    and t is not turn]
        assert_clean(h, caller)

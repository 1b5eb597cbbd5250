"""Call control end to end: tools, hang-up, transfer, keypad, outbound calls with voicemail,
time limits — over real sockets with the fake caller, fake model and fake Twilio REST API."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from callbridge.core.comfort import comfort_loop
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import FakeConnection, Reply, ToolCall
from callbridge.testing.speech import speak, speechlike
from tests.e2e.harness import Harness, connected_call, harness

pytestmark = pytest.mark.e2e


def agent_file(tmp_path: Path, body: str) -> dict[str, str]:
    path = tmp_path / "agents.toml"
    path.write_text('tools_module = "tests.e2e.agent_tools"\n' + body)
    return {"CALLBRIDGE_AGENT_FILE": str(path), "CALLBRIDGE_API_TOKEN": "api"}


def events(connection: FakeConnection, kind: str) -> list[dict[str, Any]]:
    return [e for e in connection.client_events if e["type"] == kind]


def outputs(connection: FakeConnection) -> list[dict[str, Any]]:
    return [json.loads(e["item"]["output"]) for e in events(connection, "conversation.item.create")
            if e["item"]["type"] == "function_call_output"]


async def start_call(h: Harness) -> FakeTwilioCaller:
    caller = h.caller()
    await caller.dial()
    await caller.connect()
    return caller


def heard_seconds(caller: FakeTwilioCaller) -> float:
    return sum(end - start for start, end in caller.heard_segments)


async def test_a_slow_tool_gets_a_holding_line_then_its_result_is_spoken(tmp_path: Path) -> None:
    """lookup_order takes 3 s: the filler, then the comfort tone, then the answer — no gap."""
    env = agent_file(tmp_path, '[agent]\ntools = ["lookup_order"]\n')
    replies = [Reply(tool_call=ToolCall("lookup_order", {"order_id": "A-17"})),
               Reply(text="Your order A-17 ships tomorrow.")]
    async with harness(replies, env=env) as h:
        async with await connected_call(h) as caller:
            await caller.say(speechlike(0.8, seed=1))
            filler_at = await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await h.fake.wait_for_event("conversation.item.create", timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
            await caller.hang_up()
        connection = h.fake.connections[0]
        creates = events(connection, "response.create")
        assert "One moment." in creates[0]["response"]["instructions"]
        assert creates[1] == {"type": "response.create"}, "the answer follows the tool output"
        assert outputs(connection) == [{"order_id": "A-17", "status": "ships tomorrow",
                                        "caller": "+15550001111"}]
        # 500 ms of VAD silence, then the filler after ~1 s of waiting on the tool
        assert 1.4 < filler_at - caller.spoken_until < 2.2
        spoken = (len(speak("One moment.")) + len(speak("Your order A-17 ships tomorrow."))) / 8000
        assert heard_seconds(caller) >= spoken + 0.5, "the filler, the tone, the answer"
        segments = caller.heard_segments  # filler, tone, answer: back to back, no dead air
        assert segments[0][0] == filler_at
        gaps = [later[0] - earlier[1] for earlier, later in itertools.pairwise(segments)]
        assert all(gap < 0.05 for gap in gaps)
        assert comfort_loop("tone")[:160] in caller.heard()
        assert h.fake.violations == []
        assert h.bridge_of(caller).notes["tool_filler"] == 1


@pytest.mark.parametrize(("tool", "arguments", "error"), [
    ("add", {"a": "seven", "b": 2}, "add was not called"),
    ("explode", {}, "explode failed: RuntimeError: the inventory service is down"),
])
async def test_a_bad_or_failing_tool_returns_an_error_to_the_model_and_the_call_goes_on(
    tmp_path: Path, tool: str, arguments: dict[str, object], error: str,
) -> None:
    """Invalid arguments or a raising tool: the model gets the error, then speaks again."""
    env = agent_file(tmp_path, f'[agent]\ntools = ["{tool}"]\n')
    replies = [Reply(tool_call=ToolCall(tool, arguments)),
               Reply(text="Sorry, I could not do that.")]
    async with harness(replies, env=env) as h:
        async with await connected_call(h) as caller:
            await caller.say(speechlike(0.8, seed=2))
            await h.fake.wait_for_event("conversation.item.create", timeout=5.0)
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            assert caller.closed_by_server_at is None
            await caller.hang_up()
        [output] = outputs(h.fake.connections[0])
        assert error in output["error"]


async def test_end_call_plays_the_whole_goodbye_before_the_rest_hang_up(tmp_path: Path) -> None:
    """end_call → a goodbye → its last mark echoed → Status=completed through REST."""
    goodbye = speak("Thanks for calling. Goodbye!")
    env = agent_file(tmp_path, '[agent]\ntools = ["end_call"]\n')
    replies = [Reply(tool_call=ToolCall("end_call", {"reason": "caller said bye"})),
               Reply(text="Thanks for calling. Goodbye!", audio=goodbye)]
    async with harness(replies, env=env, twilio_rest=True) as h:
        assert h.rest is not None
        caller = await start_call(h)
        await caller.say(speechlike(0.8, seed=3))
        heard_at_hangup: list[float] = []
        for _ in range(400):
            if h.rest.updates(caller.call_sid):
                heard_at_hangup.append(heard_seconds(caller))
                break
            await asyncio.sleep(0.02)
        await caller.wait_closed(timeout=5.0)
        [update] = h.rest.updates(caller.call_sid)
        assert update.value("Status") == "completed"
        assert heard_at_hangup[0] >= len(goodbye) / 8000 - 0.02
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 3.0)
        assert bridge.session.end_reason == "agent ended the call: caller said bye"


async def test_transfer_redirects_the_call_to_a_dial_after_the_announcement(
    tmp_path: Path,
) -> None:
    """transfer_call(sales): the announcement plays, then the call's TwiML becomes the Dial."""
    env = agent_file(tmp_path, '[agent]\ntools = ["transfer_call"]\n'
                               'transfer_announcement = "Connecting you to sales now."\n'
                               '[agent.transfer_targets]\nsales = "+15551230000"\n')
    replies = [Reply(tool_call=ToolCall("transfer_call", {"target": "sales"}))]
    async with harness(replies, env=env, twilio_rest=True) as h:
        assert h.rest is not None
        caller = await start_call(h)
        await caller.say(speechlike(0.8, seed=4))
        await caller.wait_closed(timeout=10.0)
        [update] = h.rest.updates(caller.call_sid)
        twiml = update.value("Twiml") or ""
        assert '<Dial answerOnBridge="true"' in twiml
        assert "<Number>+15551230000</Number>" in twiml
        assert heard_seconds(caller) >= len(speak("Connecting you to sales now.")) / 8000 - 0.02
        await caller.aclose()


async def test_keypad_digits_reach_the_model(tmp_path: Path) -> None:
    """4, 2, # → the model receives the digits as the caller's words and answers."""
    async with harness([Reply(text="Thanks, option forty-two.")]) as h:
        async with await connected_call(h) as caller:
            for digit in "42#":
                await caller.send_dtmf(digit)
            await h.fake.wait_for_event("conversation.item.create", timeout=5.0)
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.hang_up()
        [item] = [e["item"] for e in events(h.fake.connections[0], "conversation.item.create")]
        assert item["content"][0]["text"] == (
            "(The caller pressed these keys on the phone keypad: 42)")


async def test_an_outbound_call_answered_by_a_machine_leaves_the_voicemail(
    tmp_path: Path,
) -> None:
    """POST /api/calls → Twilio dials with async AMD → machine → the message → hang-up."""
    message = "Hi, this is the clinic reminding you of your appointment tomorrow at nine."
    env = agent_file(tmp_path, f'[agents.reminders]\nvoicemail_message = "{message}"\n'
                               'greeting = "Hello! This is the clinic."\n')
    async with harness([Reply()], env=env, twilio_rest=True) as h:
        assert h.rest is not None
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            response = await client.post("/api/calls", headers={"Authorization": "Bearer api"},
                                         json={"to": "+15557654321", "agent": "reminders"})
        assert response.status_code == 202
        call_sid = response.json()["call_sid"]
        [create] = h.rest.calls_created
        assert create.value("To") == "+15557654321"
        assert create.value("From") == "+15550009999"
        assert create.value("MachineDetection") == "DetectMessageEnd"
        assert create.value("AsyncAmd") == "true"
        assert create.value("Url") == (
            "https://voice.example.test/twilio/outbound?agent=reminders&amd=1")
        callee = await h.rest.answer(call_sid, answered_by="machine_end_beep", amd_delay=0.5)
        await callee.wait_closed(timeout=15.0)
        [update] = h.rest.updates(call_sid)
        assert update.value("Status") == "completed"
        creates = events(h.fake.connections[0], "response.create")
        assert len(creates) == 1, "no greeting to a machine, only the message"
        assert message in creates[0]["response"]["instructions"]
        assert heard_seconds(callee) >= len(speak(message)) / 8000 - 0.02
        bridge = h.bridge_of(callee)
        assert bridge.session.end_reason == "left a voicemail"
        await callee.aclose()


async def test_an_outbound_call_answered_by_a_person_gets_the_greeting(tmp_path: Path) -> None:
    """AMD says human: the agent greets and the conversation starts normally."""
    env = agent_file(tmp_path, '[agents.reminders]\ngreeting = "Hello! This is the clinic."\n')
    async with harness([Reply()], env=env, twilio_rest=True) as h:
        assert h.rest is not None
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            response = await client.post("/api/calls", headers={"Authorization": "Bearer api"},
                                         json={"to": "+15557654321", "agent": "reminders"})
        callee = await h.rest.answer(response.json()["call_sid"], answered_by="human",
                                     amd_delay=0.3)
        started = await callee.wait_for_agent_audio(timeout=5.0)
        assert started >= 0.3, "quiet until the verdict"
        await callee.hang_up()
        await callee.aclose()


async def test_a_call_past_its_time_limit_is_wrapped_up_and_hung_up(tmp_path: Path) -> None:
    """max_call_s: a goodbye near the limit, then the REST hang-up."""
    env = agent_file(tmp_path, "[agent]\nmax_call_s = 4\nwarn_before_s = 2\n"
                               "wrap_up_before_s = 1.5\n")
    async with harness([Reply(text="I'm afraid our time is up. Goodbye!")], env=env,
                       twilio_rest=True) as h:
        assert h.rest is not None
        caller = await start_call(h)
        await caller.wait_closed(timeout=10.0)
        [update] = h.rest.updates(caller.call_sid)
        assert update.value("Status") == "completed"
        system = [e for e in events(h.fake.connections[0], "conversation.item.create")
                  if e["item"]["role"] == "system"]
        assert len(system) == 1
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 3.0)
        assert bridge.session.end_reason == "maximum call length reached"
        assert caller.closed_by_server_at is None or caller.closed_by_server_at >= 2.5
        await caller.aclose()


async def test_a_silent_caller_is_prompted_then_hung_up_on(tmp_path: Path) -> None:
    """idle_prompt_s then idle_hangup_s of silence: "are you still there?", goodbye, hang-up."""
    env = agent_file(tmp_path, "[agent]\nidle_prompt_s = 1.5\nidle_hangup_s = 5\n")
    replies = [Reply(text="Are you still there?"), Reply(text="Goodbye.")]
    async with harness(replies, env=env, twilio_rest=True) as h:
        assert h.rest is not None
        caller = await start_call(h)
        await caller.wait_closed(timeout=15.0)
        creates = events(h.fake.connections[0], "response.create")
        assert "still there" in creates[0]["response"]["instructions"]
        assert "goodbye" in creates[1]["response"]["instructions"].lower()
        [update] = h.rest.updates(caller.call_sid)
        assert update.value("Status") == "completed"
        await caller.aclose()


async def test_a_recorded_agent_starts_a_dual_channel_recording_and_stores_its_reference(
    tmp_path: Path,
) -> None:
    """record = true: REST Recordings.json on start; the completed callback lands on the call."""
    from tests.databases import fresh_database

    env = agent_file(tmp_path, "[agent]\nrecord = true\n")
    env["CALLBRIDGE_JOURNAL"] = str(tmp_path / "journal.jsonl")
    async for url in fresh_database("sqlite", tmp_path):
        async with harness([Reply()], env=env, twilio_rest=True, database_url=url) as h:
            assert h.rest is not None
            caller = await start_call(h)
            for _ in range(100):
                if h.rest.calls[caller.call_sid].recordings:
                    break
                await asyncio.sleep(0.02)
            [recording] = h.rest.calls[caller.call_sid].recordings
            assert (recording.channels, recording.track) == ("dual", "both")
            assert recording.status_callback == "https://voice.example.test/twilio/recording"
            await caller.hang_up()
            delivery = await h.rest.complete_recording(caller.call_sid, duration=7)
            assert delivery.status == 204
            assert h.state.writer is not None
            assert h.state.store is not None
            await h.state.writer.flush()
            call = await h.state.store.get_call(caller.call_sid)
            await caller.aclose()
        assert call is not None
        assert call["recording_sid"] == recording.sid
        assert call["recording_url"]

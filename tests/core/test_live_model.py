"""GPT-Live behind the seam: turns inferred from time, tools by delegation, usage in seconds,
and a whole call through the unchanged CallSession."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from callbridge.core import model as m
from callbridge.core.actions import (
    CloseUpstream,
    RunTool,
    SendRealtime,
    SendTwilio,
    TurnFinished,
)
from callbridge.core.agent import AgentProfile, LiveOptions
from callbridge.core.history import ConversationHistory
from callbridge.core.live_model import (
    BACKEND_FAILED,
    MAX_COMMENTARY_CHARS,
    PAUSE_S,
    LiveModel,
)
from callbridge.core.model_choice import model_for
from callbridge.core.realtime_model import RealtimeModel
from callbridge.core.reports import ReplyUsage, TurnLatency
from callbridge.core.session import CallSession
from callbridge.testing.live_validation import validate_live_client_event
from tests.core.drive import CALL_SID, mark_frame, media_frame, start_frame

TOOL = {"type": "function", "name": "check_order", "description": "Look up an order.",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}},
                       "required": ["order"], "additionalProperties": False}}
PROFILE = AgentProfile(model="gpt-live-1.1", greeting="Hello, Ada's Bakery.", tools=(TOOL,),
                       builtin_tools=("end_call",))
VOICED = base64.b64encode(bytes(range(0x10, 0x10 + 160))).decode()
SILENT = base64.b64encode(b"\xff" * 160).decode()


def ev(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": "ev", **fields})


def started(fmt: dict[str, Any] | None = None) -> str:
    return ev("session.started", session={
        "id": "live_1", "expires_at": 1795000000, "model": "gpt-live-1.1", "status": "active",
        "audio": {"format": fmt or {"type": "audio/pcmu", "rate": 8000}}})


def words(side: str, text: str, start: int, end: int) -> str:
    return ev(f"session.{side}_transcript.delta", delta=text, start_ms=start, end_ms=end)


def backend(inner: dict[str, Any], delegation: str = "del_1") -> str:
    return ev("response.event", delegation_id=delegation, event=inner)


def call(call_id: str, name: str = "check_order", args: str = '{"order":"42"}') -> str:
    return backend({"type": "response.output_item.done", "output_index": 1,
                    "item": {"id": "fc", "type": "function_call", "status": "completed",
                             "call_id": call_id, "name": name, "arguments": args}})


def wire(actions: list[Any]) -> list[dict[str, Any]]:
    """The client events among `actions`, each checked strictly against the SDK's types."""
    out = []
    for action in actions:
        events = ([action.event] if isinstance(action, SendRealtime)
                  else [s.event for s in action.farewell] if isinstance(action, CloseUpstream)
                  else [])
        for event in events:
            payload = json.loads(event.serialize())
            validate_live_client_event(payload)
            out.append(payload)
    return out


def kinds(inputs: Any) -> list[str]:
    return [type(i).__name__ for i in inputs]


def test_a_gpt_live_agent_gets_the_live_protocol_object() -> None:
    """The model's name picks the API."""
    assert isinstance(model_for(PROFILE), LiveModel)
    assert isinstance(model_for(AgentProfile()), RealtimeModel)


def test_the_client_speaks_first_and_a_replacement_carries_the_conversation() -> None:
    """A fresh socket means SessionOpened at once; session.start holds the config and, for a
    replacing session, the conversation; nothing is restored afterwards."""
    model = LiveModel(PROFILE)
    assert kinds(model.socket_opened()) == ["SessionOpened"]
    [first] = wire(model.configure(PROFILE, answer_turns=True))
    assert first["type"] == "session.start"
    assert "input" not in first["session"]
    history = ConversationHistory()
    history.caller_said("c1", "Where is my order?")
    model.socket_opened()
    [again] = wire(model.configure(PROFILE, answer_turns=True, history=history))
    assert again["session"]["input"][0]["content"][0]["text"] == "Where is my order?"
    assert model.restore(history, 60, 24_000) == []
    assert model.needs_new_session(PROFILE, PROFILE, spoke=False)


def test_waiting_for_an_answering_machine_verdict_mutes_then_unmutes() -> None:
    """The configuration is fixed at start: holding the model quiet is mute, then unmute."""
    model = LiveModel(PROFILE)
    model.socket_opened()
    assert [e["type"] for e in wire(model.configure(PROFILE, answer_turns=False))] == [
        "session.start", "session.input_audio.mute"]
    assert wire(model.configure(PROFILE, answer_turns=True)) == [
        {"type": "session.input_audio.unmute"}]


def test_agent_audio_makes_a_reply_that_ends_after_quiet_and_silence_outside_is_dropped() -> None:
    """Voiced audio opens a reply (one item); a pause in its audio has what was sent play at
    once; gap_s of quiet ends it; pure silence between replies is never forwarded; nothing ever
    asks for a cut or a cancel."""
    model = LiveModel(PROFILE, gap_s=0.8)
    model.socket_opened()
    assert list(model.receive(ev("session.output_audio.delta", delta=SILENT), 1.0)) == []
    inputs = model.receive(ev("session.output_audio.delta", delta=VOICED), 1.0)
    assert kinds(inputs) == ["ReplyStarted", "AgentAudio"]
    reply = inputs[0].reply_id  # type: ignore[union-attr]
    assert kinds(model.receive(ev("session.output_audio.delta", delta=SILENT), 1.1)) == [
        "AgentAudio"]
    assert model.next_tick == 1.1 + PAUSE_S
    assert model.tick(1.3) == ([], [])
    assert model.tick(1.1 + PAUSE_S) == ([m.AgentAudioPaused(reply, reply)], [])
    assert model.next_tick == 1.8
    assert model.tick(1.7) == ([], [])
    ended, _ = model.tick(1.8)
    assert ended == [m.AgentTextDone(reply, reply, ""), m.AgentAudioDone(reply, reply),
                     m.ReplyDone(reply, "completed", None, {})]
    assert model.cut(reply, 0, 100, 1) == []
    assert model.stop_reply(reply, PROFILE) == []


def test_a_delta_is_silence_only_when_silent_throughout_not_at_its_edges() -> None:
    """Silence is a delta whose every byte is μ-law silence: voiced audio between silent edges
    opens a reply, and an empty delta is silence."""
    model = LiveModel(PROFILE, gap_s=0.8)
    model.socket_opened()
    edged = base64.b64encode(b"\xff" * 60 + bytes(range(0x10, 0x38)) + b"\xff" * 60).decode()
    assert list(model.receive(ev("session.output_audio.delta", delta=""), 1.0)) == []
    assert list(model.receive(ev("session.output_audio.delta", delta=SILENT), 1.0)) == []
    assert kinds(model.receive(ev("session.output_audio.delta", delta=edged), 1.0)) == [
        "ReplyStarted", "AgentAudio"]


def test_next_tick_is_the_earliest_of_the_input_clock_the_reply_gap_and_the_caller_gap() -> None:
    """Nothing is due before the session starts; then the input clock's wake-up; a pause in a
    reply's audio; an open reply and an open caller turn each end gap_s after they were last
    heard, whichever comes first."""
    model = LiveModel(PROFILE, gap_s=0.8)
    model.socket_opened()
    assert model.next_tick is None
    model.receive(started(), 10.0)
    assert model.next_tick == pytest.approx(10.101)  # 100 ms of slack before silence is owed
    for _ in range(250):
        model.append_audio(SILENT)  # 5 s of caller audio: the input clock is far ahead
    model.receive(ev("session.output_audio.delta", delta=VOICED), 10.2)
    assert model.next_tick == pytest.approx(10.2 + PAUSE_S)  # a pause in the reply's audio
    model.tick(10.2 + PAUSE_S)  # the input clock forgives all but 200 ms of its lead here
    for _ in range(30):
        model.append_audio(SILENT)  # 600 ms more: ahead again
    assert model.next_tick == pytest.approx(11.0)  # the reply's gap
    model.receive(words("input", " uh-huh", 100, 300), 10.5)
    model.receive(ev("session.output_audio.delta", delta=VOICED), 10.6)
    model.tick(10.6 + PAUSE_S)
    for _ in range(30):
        model.append_audio(SILENT)
    assert model.next_tick == pytest.approx(11.3)  # the caller's backchannel's gap


def test_a_caller_turn_in_the_clear_owes_no_reply_and_a_backchannel_is_only_words() -> None:
    """Caller words end with a turn (latency measured from it) when the agent answers or after
    quiet; words while the agent talks are a transcript only."""
    model = LiveModel(PROFILE, gap_s=0.8)
    model.socket_opened()
    model.receive(words("input", " Is my cake", 1000, 1500), 2.0)
    model.receive(words("input", " ready?", 1500, 1900), 2.1)
    inputs = model.receive(ev("session.output_audio.delta", delta=VOICED), 2.4)
    assert list(inputs[:2]) == [m.CallerSpeechStopped("live_caller_1", 1900, owes_reply=False),
                                m.CallerTranscript("live_caller_1", "Is my cake ready?")]
    assert kinds(inputs[2:]) == ["ReplyStarted", "AgentAudio"]
    model.receive(words("input", " mhm", 2600, 2800), 2.6)  # while the agent talks
    model.receive(ev("session.output_audio.delta", delta=VOICED), 2.9)
    inputs, _ = model.tick(3.4)
    assert inputs == [m.AgentAudioPaused("live_reply_1", "live_reply_1"),
                      m.CallerTranscript("live_caller_2", "mhm")]


def test_tools_run_once_and_the_backend_continues_once_every_call_is_answered() -> None:
    """Two calls open at once: outputs as function_call_output; one response.create after the
    last; a duplicated call_id runs once; a result for a call the server forgot is a fact."""
    model = LiveModel(PROFILE)
    model.socket_opened()
    first = model.receive(call("call_1"), 1.0)
    assert list(first) == [
        m.ToolCallRequested("del_1", "call_1", "check_order", '{"order":"42"}')]
    assert list(model.receive(call("call_1"), 1.0)) == []
    model.receive(call("call_2", args='{"order":"43"}'), 1.0)
    out1 = model.tool_output("call_1", '{"status":"baking"}')
    assert wire([out1])[0]["item"]["call_id"] == "call_1"
    assert model.ask_reply(None) == []  # call_2 is still open: response.create would be refused
    model.tool_output("call_2", '{"status":"ready"}')
    assert wire(model.ask_reply(None)) == [{"type": "response.create"}]
    late = wire([model.tool_output("call_9", '{"x":1}')])[0]
    assert late["type"] == "session.thinking.append"


def test_asking_for_speech_is_commentary_and_keypad_and_notes_are_instructions() -> None:
    """A greeting or one-off line is commentary; keypad digits and notes are instructions."""
    model = LiveModel(PROFILE)
    [say] = wire(model.ask_reply({"instructions": 'Say exactly: "Hi." Do not add anything else.',
                                  "metadata": {"purpose": "greeting"}}))
    assert say == {"type": "session.commentary.append", "delegation_id": None,
                   "content": 'Say exactly: "Hi." Do not add anything else.'}
    [keys] = wire([model.caller_text("(The caller pressed these keys on the phone keypad: 12#)")])
    assert keys["content"] == "The caller pressed 1 2 # on their keypad."
    assert wire([model.system_note("Wrap up.")])[0]["type"] == "session.instructions.append"


def test_usage_is_active_seconds_reported_as_deltas_plus_backend_tokens() -> None:
    """Cumulative seconds become deltas; the end tops up what was not reported; the backend's
    tokens are priced as its model."""
    model = LiveModel(PROFILE)
    model.socket_opened()
    model.receive(started(), 100.0)
    assert list(model.receive(ev("session.usage.updated", usage={"seconds": 60.0}), 160.0)) == [
        m.UsageReported({"seconds": 60.0}, "active")]
    assert model.cost(PROFILE, {"seconds": 60.0}) == 0.05
    tokens = model.receive(backend({"type": "response.completed", "response": {
        "id": "r", "output": [], "usage": {"input_tokens": 1000, "output_tokens": 100}}}), 161.0)
    assert list(tokens) == [m.UsageReported({"input_tokens": 1000, "output_tokens": 100},
                                            "backend")]
    assert list(model.finish(190.0)) == [m.UsageReported({"seconds": 30.0}, "active")]
    assert list(model.finish(200.0)) == []


def test_errors_are_fatal_only_for_keys_quota_and_models() -> None:
    """A refused continuation is a conflict; moderation and odd errors keep the session."""
    model = LiveModel(PROFILE)

    def kind(code: str) -> m.ErrorKind:
        [error] = model.receive(ev("error", error={"type": "x", "code": code, "message": ""}),
                                1.0)
        assert isinstance(error, m.ModelError)
        return error.kind

    assert kind("invalid_api_key") is m.ErrorKind.FATAL
    assert kind("function_call_outputs_required") is m.ErrorKind.CONFLICT
    assert kind("content_filter") is m.ErrorKind.OTHER


def test_silence_is_sent_when_the_callers_frames_stall() -> None:
    """After the session started, a stalled caller is replaced by μ-law silence on tick."""
    model = LiveModel(PROFILE)
    model.socket_opened()
    model.receive(started(), 10.0)
    for _ in range(5):
        model.append_audio(SILENT)
    wake = model.next_tick
    assert wake is not None
    _, sends = model.tick(wake)
    assert [e["type"] for e in wire(sends)] == ["session.input_audio.append"] * len(sends)
    assert len(sends) >= 1


# ---------------------------------------------------------------- a whole call


def drive_to_ready(session: CallSession, now: float) -> list[dict[str, Any]]:
    session.begin(now)
    sent = wire(session.upstream_opened(now))
    sent += wire(session.receive_realtime(started(), now))
    return sent


def test_a_whole_call_runs_through_the_unchanged_session() -> None:
    """Greeting as commentary; caller audio appended; agent audio paced to Twilio with marks and
    recorded as heard; a tool by delegation answered and continued; the end closes the session
    gracefully, with its active seconds priced."""
    session = CallSession(CALL_SID, PROFILE)
    now = 100.0
    sent = drive_to_ready(session, now)
    assert [e["type"] for e in sent] == ["session.start", "session.commentary.append"]
    assert "Hello, Ada's Bakery." in sent[1]["content"]
    session.receive_twilio(start_frame(), now)
    assert wire(session.receive_twilio(media_frame(0), now)) == [
        {"type": "session.input_audio.append",
         "audio": base64.b64encode(b"\xff" * 160).decode()}]
    out = session.receive_realtime(ev("session.output_audio.delta", delta=VOICED), now + 0.5)
    out += session.receive_realtime(ev("session.output_audio.delta", delta=VOICED), now + 0.52)
    out += session.wake(now + 0.6)
    frames = [json.loads(a.message.serialize()) for a in out if isinstance(a, SendTwilio)]
    assert [f["event"] for f in frames][:2] == ["media", "mark"]
    session.receive_realtime(words("output", " Hello, Ada's Bakery.", 0, 900), now + 0.7)
    for mark in [f["mark"]["name"] for f in frames if f["event"] == "mark"]:
        session.receive_twilio(mark_frame(mark), now + 0.8)
    ended = session.wake(now + 1.6)
    [turn] = [a for a in ended if isinstance(a, TurnFinished)]
    assert (turn.role, turn.heard) == ("agent", "Hello, Ada's Bakery.")
    # the caller asks; the backend calls a tool; the result goes back and the backend continues
    session.receive_realtime(words("input", " Is order 42 ready?", 2000, 3000), now + 3.0)
    tool = session.receive_realtime(call("call_1"), now + 3.5)
    assert [a for a in tool if isinstance(a, RunTool)] == [
        RunTool("call_1", "check_order", '{"order":"42"}')]
    sent = wire(session.tool_result("call_1", '{"status":"ready"}', now + 3.6))
    assert [e["type"] for e in sent] == ["response.item.create", "response.create"]
    # usage arrives; the caller hangs up; the session is closed gracefully
    usage = session.receive_realtime(ev("session.usage.updated", usage={"seconds": 4.0}),
                                     now + 4.0)
    assert [a.cost_usd for a in usage if isinstance(a, ReplyUsage)] == [4.0 / 60 * 0.05]
    end = session.twilio_closed(now + 5.0)
    closes = [a for a in end if isinstance(a, CloseUpstream)]
    assert [e["type"] for e in wire(closes)] == ["session.close"]
    assert closes[0].drain_s == 5.0
    assert session.cost_usd == round(5.0 / 60 * 0.05, 10) or abs(
        session.cost_usd - 5.0 / 60 * 0.05) < 1e-9


def test_turn_latency_is_measured_from_the_end_of_the_callers_words() -> None:
    """The caller stopped at session ms 1900; the agent's first chunk played at media ms 2400."""
    session = CallSession(CALL_SID, AgentProfile(model="gpt-live-1.1"))
    now = 100.0
    drive_to_ready(session, now)
    session.receive_twilio(start_frame(), now)
    session.receive_twilio(media_frame(0), now)  # the session timeline starts at media ms 0
    session.receive_realtime(words("input", " Hi", 1500, 1900), now + 2.0)
    out = session.receive_realtime(ev("session.output_audio.delta", delta=VOICED), now + 2.3)
    out += session.receive_realtime(ev("session.output_audio.delta", delta=VOICED), now + 2.32)
    out += session.wake(now + 2.35)
    mark = next(json.loads(a.message.serialize())["mark"]["name"] for a in out
                if isinstance(a, SendTwilio) and '"mark"' in a.message.serialize())
    session.receive_twilio(media_frame(2400), now + 2.4)
    reports = session.receive_twilio(mark_frame(mark), now + 2.45)
    assert [r.ms for r in reports if isinstance(r, TurnLatency)] == [500]


CLIENT = LiveOptions(delegation="client", backend="shop.answers:answer")


def delegated(delegation_id: str = "del_c1") -> str:
    return ev("session.delegation.created", offset_ms=2000, delegation={
        "id": delegation_id, "type": "delegation", "target": "client"})


def test_a_client_delegation_asks_the_backend_with_the_conversation_so_far() -> None:
    """The delegation becomes a call of the agent's backend tool with its id and the turns so
    far (the caller's unfinished words included); the answer is commentary tied to that id."""
    model = LiveModel(PROFILE, CLIENT)
    model.socket_opened()
    model.receive(words("output", " Hello, Ada's Bakery.", 0, 900), 1.0)
    model.receive(words("input", " When do you open", 1200, 1900), 2.0)
    [request] = [i for i in model.receive(delegated(), 2.1)
                 if isinstance(i, m.ToolCallRequested)]
    assert (request.call_id, request.name) == ("del_c1", "delegate_answer")
    assert json.loads(request.arguments) == {"delegation_id": "del_c1", "conversation": [
        {"role": "assistant", "text": "Hello, Ada's Bakery."},
        {"role": "user", "text": "When do you open"}]}
    assert model.receive(delegated(), 2.2) == (), "each delegation is claimed once"
    [answer] = wire([model.tool_output("del_c1", "We open at eight.")])
    assert answer == {"type": "session.commentary.append", "content": "We open at eight.",
                      "delegation_id": "del_c1"}


def test_a_failed_backend_still_answers_its_delegation_and_a_long_answer_is_clipped() -> None:
    """The runner's failure output becomes an apology the model words; an answer over one
    append's limit is cut at a sentence."""
    model = LiveModel(PROFILE, CLIENT)
    model.socket_opened()
    model.receive(delegated("del_a"), 1.0)
    model.receive(delegated("del_b"), 1.1)
    [failed] = wire([model.tool_output("del_a", '{"error":"delegate_answer failed: boom"}')])
    assert failed["content"] == BACKEND_FAILED
    assert failed["delegation_id"] == "del_a"
    long = "We open at eight. " * 200
    [clipped] = wire([model.tool_output("del_b", long)])
    assert len(clipped["content"]) <= MAX_COMMENTARY_CHARS
    assert clipped["content"].endswith("eight.")


def test_a_responses_agent_ignores_client_delegations() -> None:
    """No backend named: nothing to call (the server never sends one to such a session)."""
    model = LiveModel(PROFILE)
    model.socket_opened()
    assert model.receive(delegated(), 1.0) == ()


def test_the_session_is_recycled_before_the_expiry_the_server_states() -> None:
    """`expires_at` 20 minutes away: the recycle is planned 4 minutes early (a fifth, under the
    5-minute cap) and happens at that quiet moment; without the adapter's wall clock offset
    only the configured recycle applies."""
    session = CallSession(CALL_SID, AgentProfile(model="gpt-live-1.1"))
    now = 100.0
    session.wall_offset = 1795000000 - 1200 - now  # the stated expiry is 1,200 s from now
    drive_to_ready(session, now)
    session.receive_twilio(start_frame(), now)
    assert session.deadlines.recycle_at == now + 960
    assert session.next_wakeup is not None
    assert session.next_wakeup <= now + 960
    recycled = session.wake(now + 960)
    [close] = [a for a in recycled if isinstance(a, CloseUpstream)]
    assert close.reason == "session recycle"

    unplaced = CallSession(CALL_SID, AgentProfile(model="gpt-live-1.1"))
    drive_to_ready(unplaced, now)
    assert unplaced.deadlines.recycle_at == now + unplaced.timing.recycle_after_s


def _reply_ending(model: LiveModel, said: str, caller: str | None = None,
                  caller_ms: int = 300) -> m.AgentAudioDone:
    """The agent says `said` (the caller says `caller` over it for `caller_ms`), then goes
    quiet."""
    model.receive(ev("session.output_audio.delta", delta=VOICED), 1.0)
    model.receive(words("output", said, 0, 900), 1.0)
    if caller is not None:
        model.receive(words("input", caller, 500, 500 + caller_ms), 1.3)
    ended, _ = model.tick(2.0)
    [done] = [i for i in ended if isinstance(i, m.AgentAudioDone)]
    return done


def test_a_reply_cut_mid_sentence_or_talked_over_is_marked_talked_over() -> None:
    """No event says the model stopped because the caller talked: a reply that ends without
    finishing its sentence, or with several of the caller's words over it, was; a finished
    sentence with a backchannel over it was not."""
    assert _reply_ending(LiveModel(PROFILE), " We open at eight every weekday,").talked_over
    assert not _reply_ending(LiveModel(PROFILE), " We open at eight.").talked_over
    assert not _reply_ending(LiveModel(PROFILE), " We open at eight.", " mhm").talked_over
    assert _reply_ending(LiveModel(PROFILE), " We open at eight.",
                         " wait no I meant Sunday").talked_over
    assert _reply_ending(LiveModel(PROFILE), " We open at eight.", " waaait",
                         caller_ms=900).talked_over


def test_a_caller_turn_starts_when_its_first_words_were_spoken() -> None:
    """GPT-Live dates the caller's words on its session clock, which runs with the input sent
    from `session.started`: the caller's turn starts there, not when its transcript came."""
    session = CallSession(CALL_SID, AgentProfile(model="gpt-live-1.1"))
    now = 100.0
    drive_to_ready(session, now)
    session.receive_twilio(start_frame(), now)
    session.receive_realtime(words("input", " Is my cake", 1500, 1900), now + 2.0)
    session.receive_realtime(words("input", " ready?", 1900, 2300), now + 2.4)
    out = session.wake(now + 3.2)  # 0.8 s of quiet ends the caller's turn
    [turn] = [a for a in out if isinstance(a, TurnFinished) and a.role == "caller"]
    assert turn.text == "Is my cake ready?"
    assert turn.started == now + 1.5


def agent_bytes_sent(actions: list[Any]) -> int:
    """Bytes of agent audio in the Twilio `media` frames among `actions`."""
    frames = [json.loads(a.message.serialize()) for a in actions if isinstance(a, SendTwilio)]
    return sum(len(base64.b64decode(f["media"]["payload"])) for f in frames
               if f["event"] == "media")


def test_the_last_partial_frame_of_a_reply_plays_right_after_the_rest() -> None:
    """250 ms of agent audio in one delta (12 whole frames and 80 bytes): all of it reaches
    Twilio within 100 ms of the time it takes to play, not when the reply ends 0.8 s later."""
    session = CallSession(CALL_SID, AgentProfile(model="gpt-live-1.1"))
    now = 100.0
    drive_to_ready(session, now)
    session.receive_twilio(start_frame(), now)
    session.receive_twilio(media_frame(0), now)
    audio = bytes(range(0x10, 0x60)) * 25  # 2000 voiced bytes
    sent = agent_bytes_sent(session.receive_realtime(
        ev("session.output_audio.delta", delta=base64.b64encode(audio).decode()), now))
    deadline = now + len(audio) / 8000 + 0.1
    while (at := session.next_wakeup) is not None and at <= deadline:
        sent += agent_bytes_sent(session.wake(at))
    assert sent >= len(audio)

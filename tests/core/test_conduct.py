"""Call control in the core: built-in tools, keypad, idle callers, time and cost limits,
answering machines, agent hand-offs — all decided from messages and a passed-in clock."""

from __future__ import annotations

import base64
import json

import pytest

from callbridge.core import realtime_events as rt
from callbridge.core import twilio_messages as tw
from callbridge.core.actions import (
    Action,
    CloseUpstream,
    EndStream,
    HangUp,
    Note,
    OpenUpstream,
    RedirectCall,
    RunTool,
    SendRealtime,
    SendTwilio,
    StartRecording,
)
from callbridge.core.agent import AgentProfile
from callbridge.core.ending import Ending
from callbridge.core.reply import Reply
from callbridge.core.reports import BargeIn, CostCapReached, UpstreamStalled
from callbridge.core.session import CallSession
from callbridge.core.states import CallState, UpstreamState
from tests.core.drive import (
    CALL_SID,
    STREAM_SID,
    Driver,
    audio_delta,
    event,
    mark_frame,
    marks,
    media_frame,
    realtime_out,
    session_updated,
    start_frame,
    twilio_out,
)


def call_tool(d: Driver, name: str, arguments: dict[str, object], response: str = "resp_t",
              call_id: str = "call_1") -> list[Action]:
    return d.realtime(event("response.function_call_arguments.done", response_id=response,
                            item_id="fc_" + call_id, output_index=1, call_id=call_id,
                            name=name, arguments=json.dumps(arguments)))


def done(d: Driver, response: str = "resp_t", usage: dict[str, object] | None = None,
         ) -> list[Action]:
    return d.realtime(event("response.done", response={"id": response, "status": "completed",
                                                       "usage": usage or {}}))


def play_everything(d: Driver, names: list[str]) -> list[Action]:
    out: list[Action] = []
    for name in names:
        out += d.twilio(mark_frame(name))
    return out


def creates(actions: list[Action]) -> list[rt.CreateResponse]:
    return [e for e in realtime_out(actions) if isinstance(e, rt.CreateResponse)]


def controls(actions: list[Action]) -> list[Action]:
    return [a for a in actions if isinstance(a, HangUp | RedirectCall)]


def test_end_call_after_a_spoken_goodbye_hangs_up_once_it_has_played() -> None:
    """"Goodbye!" then end_call in one response: no more speech; HangUp after the last mark."""
    d = Driver(AgentProfile(builtin_tools=("end_call",)))
    sent = marks(d.respond("bye", 1600, response="resp_t", text="Goodbye!"))
    call_tool(d, "end_call", {"reason": "caller is done"})
    sent += marks(d.realtime(event("response.output_audio.done", response_id="resp_t",
                                   item_id="bye", output_index=0, content_index=0)))
    after_done = done(d)
    assert creates(after_done) == [], "the goodbye was already said"
    assert controls(after_done) == []
    sent += marks(d.advance(1.0))
    assert controls(play_everything(d, sent[:-1])) == []
    assert controls(play_everything(d, sent[-1:])) == [
        HangUp("agent ended the call: caller is done")]
    assert d.session.end_reason == "agent ended the call: caller is done"


def test_end_call_without_a_goodbye_asks_for_one_first() -> None:
    """A silent end_call: the output, one goodbye response, then HangUp after it played."""
    d = Driver(AgentProfile(builtin_tools=("end_call",)))
    d.realtime(event("response.created", response={"id": "resp_t"}))
    call_tool(d, "end_call", {})
    after = done(d)
    [goodbye] = creates(after)
    assert goodbye.response is not None
    assert "goodbye" in goodbye.response["instructions"].lower()
    assert controls(after) == []
    sent = marks(d.respond("bye", 800, response="resp_bye", text="Bye now"))
    sent += marks(d.realtime(event("response.output_audio.done", response_id="resp_bye",
                                   item_id="bye", output_index=0, content_index=0)))
    done(d, "resp_bye")
    assert controls(play_everything(d, sent)) == [
        HangUp("agent ended the call: the conversation was finished")]


def test_transfer_to_an_unknown_target_returns_an_error_and_the_call_goes_on() -> None:
    """The model gets a clear error listing the targets, and a chance to answer."""
    d = Driver(AgentProfile(builtin_tools=("transfer_call",),
                            transfer_targets={"sales": "+15551230000"}))
    d.realtime(event("response.created", response={"id": "resp_t"}))
    call_tool(d, "transfer_call", {"target": "billing"})
    after = done(d)
    [output] = [e.item for e in realtime_out(after) if isinstance(e, rt.CreateItem)]
    assert "choose one of: sales" in json.loads(output["output"])["error"]
    assert creates(after) == [rt.CreateResponse(None)]
    assert controls(after) == []


def test_transfer_announces_then_redirects_with_dial_twiml() -> None:
    """A valid transfer: the announcement plays, then the call's TwiML becomes the Dial."""
    d = Driver(AgentProfile(builtin_tools=("transfer_call",),
                            transfer_targets={"sales": "+15551230000"},
                            transfer_announcement="Connecting you to sales.",
                            transfer_fallback="Nobody is free."))
    d.realtime(event("response.created", response={"id": "resp_t"}))
    call_tool(d, "transfer_call", {"target": "sales"})
    [announce] = creates(done(d))
    assert announce.response is not None
    assert '"Connecting you to sales."' in announce.response["instructions"]
    sent = marks(d.respond("line", 800, response="resp_a", text="Connecting you to sales."))
    sent += marks(d.realtime(event("response.output_audio.done", response_id="resp_a",
                                   item_id="line", output_index=0, content_index=0)))
    done(d, "resp_a")
    [redirect] = controls(play_everything(d, sent))
    assert redirect == RedirectCall(
        '<Response><Dial answerOnBridge="true" timeout="25"><Number>+15551230000</Number>'
        "</Dial><Say>Nobody is free.</Say><Hangup /></Response>", "transferred to sales")


def test_keypad_digits_reach_the_model_at_the_terminator() -> None:
    """1, 2, 3, # → one user item with "123" and a response."""
    d = Driver()
    for digit in "123#":
        actions = d.twilio('{"event":"dtmf","streamSid":"' + STREAM_SID + '","sequenceNumber":'
                           '"5","dtmf":{"track":"inbound_track","digit":"' + digit + '"}}')
    items = [e.item for e in realtime_out(actions) if isinstance(e, rt.CreateItem)]
    assert items == [{"type": "message", "role": "user", "content": [{
        "type": "input_text",
        "text": "(The caller pressed these keys on the phone keypad: 123)"}]}]
    assert creates(actions) == [rt.CreateResponse(None)]


def test_keypad_digits_are_also_sent_after_a_pause() -> None:
    """Without a terminator, the digits go after `dtmf_pause_s` of quiet keys."""
    d = Driver(AgentProfile(dtmf_pause_s=2.0))
    d.twilio('{"event":"dtmf","streamSid":"' + STREAM_SID + '","sequenceNumber":"5",'
             '"dtmf":{"track":"inbound_track","digit":"4"}}')
    assert d.session.next_wakeup == d.now + 2.0
    later = d.advance(2.1)
    assert [e.item["content"][0]["text"] for e in realtime_out(later)
            if isinstance(e, rt.CreateItem)] == [
        "(The caller pressed these keys on the phone keypad: 4)"]


def test_a_slow_tool_gets_a_holding_line_after_a_second() -> None:
    """Past `filler_after_s` with the tool still running, the agent says its filler line."""
    d = Driver(AgentProfile(tool_fillers={"lookup": "Let me check that for you."}))
    d.realtime(event("response.created", response={"id": "resp_t"}))
    assert [type(a) for a in call_tool(d, "lookup", {"id": 1})] == [RunTool]
    done(d)
    assert creates(d.advance(0.9)) == []
    [filler] = creates(d.advance(0.2))
    assert filler.response is not None
    assert '"Let me check that for you."' in filler.response["instructions"]


def test_a_fast_tool_gets_no_filler() -> None:
    """A result before the deadline cancels the holding line."""
    d = Driver()
    d.realtime(event("response.created", response={"id": "resp_t"}))
    call_tool(d, "lookup", {})
    done(d)
    d.do(d.session.tool_result("call_1", "{}", d.now + 0.3))
    d.realtime(event("response.created", response={"id": "resp_2"}))
    assert creates(d.advance(2.0)) == []


def test_an_idle_caller_is_prompted_then_said_goodbye_to() -> None:
    """Silence: a prompt after idle_prompt_s, a goodbye and HangUp after idle_hangup_s."""
    d = Driver(AgentProfile(idle_prompt_s=5.0, idle_hangup_s=12.0))
    [prompt] = creates(d.advance(5.1))
    assert prompt.response is not None
    assert "still there" in prompt.response["instructions"]
    d.realtime(event("response.created", response={"id": "r_p"}))
    done(d, "r_p")
    [goodbye] = creates(d.advance(7.0))
    assert goodbye.response is not None
    assert "goodbye" in goodbye.response["instructions"].lower()
    d.realtime(event("response.created", response={"id": "r_g"}))
    assert controls(done(d, "r_g")) == [HangUp("caller silent")]


def test_caller_speech_resets_the_idle_timers() -> None:
    """Talking keeps the call alive."""
    d = Driver(AgentProfile(idle_prompt_s=5.0, idle_hangup_s=12.0))
    d.advance(4.0)
    d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u"))
    d.realtime(event("input_audio_buffer.speech_stopped", audio_end_ms=900, item_id="u"))
    d.realtime(event("response.created", response={"id": "r"}))
    done(d, "r")
    assert creates(d.advance(4.0)) == []


def test_a_long_call_is_warned_wrapped_up_and_ended() -> None:
    """max_call_s: a system note, then a goodbye with HangUp, and a hard stop at the limit."""
    d = Driver(AgentProfile(max_call_s=120.0, warn_before_s=60.0, wrap_up_before_s=20.0))
    warned = d.advance(61.0)
    [note] = [e.item for e in realtime_out(warned) if isinstance(e, rt.CreateItem)]
    assert note["role"] == "system"
    d.realtime(event("response.created", response={"id": "busy"}))  # the agent is talking
    wrap = d.advance(40.0)
    assert creates(wrap) == [], "the wrap-up waits for the current response"
    assert controls(d.advance(20.0)) == [HangUp("maximum call length reached")]


def test_the_cost_cap_ends_the_call_politely() -> None:
    """Once the estimated cost reaches the cap: a goodbye, then HangUp."""
    d = Driver(AgentProfile(cost_cap_usd=0.01))
    usage = {"output_token_details": {"audio_tokens": 200}}  # 200 × $64/M = $0.0128
    d.realtime(event("response.created", response={"id": "r1"}))
    after = done(d, "r1", usage)
    assert any(isinstance(a, CostCapReached) for a in after)
    [goodbye] = creates(after)
    d.realtime(event("response.created", response={"id": "r2"}))
    assert controls(done(d, "r2")) == [HangUp("cost cap reached")]
    assert goodbye.response is not None


def outbound_session(profile: AgentProfile) -> tuple[CallSession, list[Action]]:
    session = CallSession(CALL_SID, profile, awaiting_answer=True)
    log = session.begin(0.0) + session.upstream_opened(0.0)
    log += session.receive_realtime(event("session.created", session={}), 0.0)
    log += session.receive_realtime(session_updated(), 0.0)
    log += session.receive_twilio(start_frame(), 0.0)
    return session, log


def test_an_outbound_call_waits_for_the_answer_before_speaking() -> None:
    """create_response is off and the greeting held until AMD answers."""
    _, log = outbound_session(AgentProfile(greeting="Hi, it's the clinic."))
    [update] = [e for e in realtime_out(log) if isinstance(e, rt.SessionUpdate)]
    assert update.session["audio"]["input"]["turn_detection"]["create_response"] is False
    assert creates(log) == []


def test_a_person_answering_turns_the_agent_on_and_greets() -> None:
    """AMD "human": session.update with create_response on, then the greeting."""
    session, _ = outbound_session(AgentProfile(greeting="Hi, it's the clinic."))
    actions = session.answered_by("human", 1.0)
    [update] = [e for e in realtime_out(actions) if isinstance(e, rt.SessionUpdate)]
    assert update.session["audio"]["input"]["turn_detection"]["create_response"] is True
    [greeting] = creates(actions)
    assert greeting.response is not None
    assert '"Hi, it\'s the clinic."' in greeting.response["instructions"]


def test_a_machine_gets_the_voicemail_message_then_a_hang_up() -> None:
    """AMD after the beep: the message word for word, HangUp once it has played."""
    session, _ = outbound_session(AgentProfile(voicemail_message="Please call us back."))
    actions = session.answered_by("machine_end_beep", 1.0)
    [message] = creates(actions)
    assert message.response is not None
    assert '"Please call us back."' in message.response["instructions"]
    session.receive_realtime(event("response.created", response={"id": "vm"}), 1.0)
    assert controls(session.receive_realtime(event(
        "response.done", response={"id": "vm", "status": "completed"}), 4.0)) == [
        HangUp("left a voicemail")]


def test_a_machine_without_a_voicemail_message_is_hung_up_on_at_once() -> None:
    """No message configured: no speech, HangUp."""
    session, _ = outbound_session(AgentProfile())
    assert controls(session.answered_by("machine_end_silence", 1.0)) == [
        HangUp("answered by machine_end_silence")]


def test_recording_starts_with_the_stream_when_the_profile_asks() -> None:
    """record = true → StartRecording on `start`."""
    d = Driver(AgentProfile(record=True))
    assert StartRecording() in d.log


def billing() -> AgentProfile:
    return AgentProfile(name="billing", instructions="You handle billing.", voice="marin")


def test_a_handoff_to_an_agent_with_the_same_voice_is_a_session_update() -> None:
    """switch_agent: new instructions by session.update (formats restated), then it speaks."""
    front = AgentProfile(name="front", handoffs=("billing",))
    d = Driver(front, agents={"billing": billing()})
    d.realtime(event("response.created", response={"id": "resp_t"}))
    call_tool(d, "switch_agent", {"agent": "billing"})
    after = done(d)
    [update] = [e for e in realtime_out(after) if isinstance(e, rt.SessionUpdate)]
    assert update.session["instructions"] == "You handle billing."
    assert update.session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert len(creates(after)) == 1
    assert d.session.profile.name == "billing"


def test_a_handoff_that_changes_voice_after_speech_opens_a_fresh_session() -> None:
    """The voice is fixed once a session has spoken: recycle the upstream, restore history."""
    front = AgentProfile(name="front", voice="cedar", handoffs=("billing",))
    d = Driver(front, agents={"billing": billing()})
    d.respond("hello", 800, response="resp_t")
    call_tool(d, "switch_agent", {"agent": "billing"})
    after = done(d)
    assert CloseUpstream("switching to agent billing") in after
    assert OpenUpstream(attempt=0, delay=0.0) in after
    assert creates(after) == []
    d.do(d.session.upstream_opened(d.now))
    [update] = realtime_out(d.realtime(event("session.created", session={})))
    assert isinstance(update, rt.SessionUpdate)
    assert update.session["audio"]["output"]["voice"] == "marin"
    restored = d.realtime(session_updated())
    items = [e.item for e in realtime_out(restored) if isinstance(e, rt.CreateItem)]
    assert [i["type"] for i in items][-2:] == ["function_call", "function_call_output"]
    assert creates(restored) == [rt.CreateResponse(None)]
    assert not any(isinstance(a, SendRealtime) and isinstance(a.event, rt.AppendAudio)
                   for a in after)


def test_a_late_audio_delta_never_follows_a_hang_up_decision() -> None:
    """Once HangUp is decided nothing else is decided: the session stays closed."""
    d = Driver(AgentProfile(builtin_tools=("end_call",)))
    d.realtime(event("response.created", response={"id": "resp_t"}))
    call_tool(d, "end_call", {})
    done(d)
    d.realtime(event("response.created", response={"id": "rb"}))
    first = controls(done(d, "rb"))
    assert first == [HangUp("agent ended the call: the conversation was finished")]
    d.realtime(audio_delta("late", 800, "rb2"))
    assert controls(d.advance(30.0)) == []


def test_an_answer_verdict_that_never_comes_is_taken_as_a_person_after_35_seconds() -> None:
    """A lost AMD callback must not leave the agent mute."""
    session, _ = outbound_session(AgentProfile(greeting="Hi, it's the clinic."))
    assert session.next_wakeup == 35.0
    actions = session.wake(35.0)
    assert any(isinstance(a, Note) and a.kind == "answer_timeout" for a in actions)
    assert len(creates(actions)) == 1


def comfort_sent(actions: list[Action]) -> int:
    from callbridge.core.comfort import comfort_loop

    loop = comfort_loop("tone")
    return sum(1 for a in actions if isinstance(a, SendTwilio)
               and isinstance(a.message, tw.SendMedia)
               and base64.b64decode(a.message.payload) in loop + loop)


def slow_tool_after_its_filler(profile: AgentProfile) -> Driver:
    d = Driver(profile)
    d.realtime(event("response.created", response={"id": "resp_t"}))
    call_tool(d, "lookup", {})
    done(d)
    d.advance(1.1)  # the filler is requested…
    d.realtime(event("response.created", response={"id": "filler"}))
    done(d, "filler")  # …and (for this test) produced no audio
    return d


def test_a_tool_still_running_after_its_filler_gets_the_comfort_sound() -> None:
    """No dead air: once the holding line is over, a soft tone plays until the answer."""
    d = slow_tool_after_its_filler(AgentProfile())
    assert comfort_sent(d.log) > 0
    assert comfort_sent(d.advance(2.0)) >= 40, "it keeps playing, paced like agent audio"


def test_real_agent_audio_clears_the_comfort_sound_at_once() -> None:
    """The first delta of the answer: Twilio `clear`, then the answer's audio."""
    d = slow_tool_after_its_filler(AgentProfile())
    d.do(d.session.tool_result("call_1", "{}", d.now))
    d.realtime(event("response.created", response={"id": "answer"}))
    actions = d.realtime(audio_delta("a1", 800, "answer"))
    sends = twilio_out(actions)
    assert sends[0] == tw.SendClear(STREAM_SID)
    assert comfort_sent(actions) == 0
    assert any(isinstance(m, tw.SendMedia) for m in sends[1:])


def test_the_comfort_sound_can_be_switched_off() -> None:
    """comfort_sound = "off": silence while waiting, as before."""
    d = slow_tool_after_its_filler(AgentProfile(comfort_sound="off"))
    assert comfort_sent(d.log + d.advance(2.0)) == 0


def test_a_reconnect_plays_the_comfort_sound() -> None:
    """Upstream lost mid-call: the caller hears the tone, not silence, while it reconnects."""
    d = Driver()
    actions = d.do(d.session.upstream_lost(d.now, "1006"))
    assert comfort_sent(actions + d.advance(0.5)) > 0


def test_caller_speech_over_the_comfort_sound_is_not_a_barge_in() -> None:
    """The tone is cleared quietly; no truncate, no barge-in note."""
    d = slow_tool_after_its_filler(AgentProfile())
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0,
                               item_id="u"))
    assert twilio_out(actions) == [tw.SendClear(STREAM_SID)]
    assert not any(isinstance(a, BargeIn) for a in actions)


def test_the_upstream_session_is_replaced_before_its_cap_at_a_quiet_moment() -> None:
    """After recycle_after_s, at a turn boundary: a new session with the history, no greeting,
    no comfort tone, and the caller's audio meanwhile kept for it."""
    from callbridge.core.session import Timing

    d = Driver(AgentProfile(greeting="Hello!"), Timing(recycle_after_s=10.0))
    d.realtime(event("input_audio_buffer.speech_stopped", audio_end_ms=500, item_id="u1"))
    d.realtime(event("conversation.item.input_audio_transcription.completed", item_id="u1",
                     content_index=0, transcript="Book a table"))
    sent = marks(d.respond("a1", 800, response="r1", text="For when?"))
    sent += marks(d.realtime(event("response.output_audio.done", response_id="r1", item_id="a1",
                                   output_index=0, content_index=0)))
    done(d, "r1")
    play_everything(d, sent)
    recycled = d.advance(10.5)
    assert CloseUpstream("session recycle") in recycled
    assert OpenUpstream(attempt=0, delay=0.0) in recycled
    assert comfort_sent(recycled) == 0
    assert realtime_out(d.twilio(media_frame(timestamp=9000))) == [], "kept for the new session"
    d.do(d.session.upstream_opened(d.now))
    d.realtime(event("session.created", session={}))
    ready = realtime_out(d.realtime(session_updated()))
    items = [e.item for e in ready if isinstance(e, rt.CreateItem)]
    assert items[0]["content"][0]["text"] == "Book a table"
    assert not any(isinstance(e, rt.CreateResponse) for e in ready), "no greeting, no reply"
    assert isinstance(ready[-1], rt.AppendAudio)


def test_a_busy_moment_postpones_the_recycle() -> None:
    """While the agent is talking the session is not replaced."""
    from callbridge.core.session import Timing

    d = Driver(timing=Timing(recycle_after_s=10.0, upstream_stall_s=None))
    d.realtime(event("response.created", response={"id": "r1"}))
    assert not any(isinstance(a, CloseUpstream) for a in d.advance(12.0))
    assert any(isinstance(a, CloseUpstream) for a in done(d, "r1") + d.advance(0.1))


# ---------------------------------------------------------------------- a stalled upstream


def _stalls(actions: list[Action]) -> list[UpstreamStalled]:
    return [a for a in actions if isinstance(a, UpstreamStalled)]


def _caller_turn_ends(d: Driver) -> None:
    d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u1"))
    d.realtime(event("input_audio_buffer.speech_stopped", audio_end_ms=900, item_id="u1"))


def test_a_reply_owed_and_no_upstream_event_for_3_s_is_a_stall_and_a_reconnect() -> None:
    """The caller's turn ended and the model says nothing (no FIN, no RST): after 3 s the
    socket is given up like a lost one — closed, reopened, the comfort sound meanwhile."""
    d = Driver(AgentProfile(comfort_sound="tone"))
    _caller_turn_ends(d)
    assert not _stalls(d.advance(2.9))
    actions = d.advance(0.2)
    [stall] = _stalls(actions)
    assert stall.details() == {"silent_s": 3.0}
    kinds = [type(a) for a in actions]
    assert kinds.index(CloseUpstream) < kinds.index(OpenUpstream)
    assert d.session.upstream is UpstreamState.OPENING
    assert d.session.stats.reconnects == 1
    comfort = [m for m in twilio_out(d.advance(0.5)) if isinstance(m, tw.SendMedia)]
    assert comfort, "the caller hears the comfort sound while the new session opens"


def test_every_upstream_event_moves_the_stall_deadline() -> None:
    """A reply that streams (an event every 2 s) is not a stall, however long it lasts."""
    d = Driver()
    _caller_turn_ends(d)
    d.realtime(event("response.created", response={"id": "r1"}))
    for _ in range(10):
        assert not _stalls(d.advance(2.0))
        d.realtime(audio_delta("a1", 160, "r1"))
    assert d.session.upstream is UpstreamState.READY


def test_the_stall_clock_starts_when_the_reply_became_owed_not_at_the_last_event() -> None:
    """A minute of quiet, then the caller presses a key (a response is asked for): the model
    has 3 s from then, not from its last event a minute ago."""
    d = Driver()
    assert not _stalls(d.advance(60.0))
    d.twilio('{"event":"dtmf","streamSid":"' + STREAM_SID + '","sequenceNumber":"5",'
             '"dtmf":{"track":"inbound_track","digit":"5"}}')
    d.advance(2.0)  # the digits are flushed as a caller turn and a response is requested
    assert d.session.reply.state is Reply.REQUESTED
    asked_at = d.now
    assert not _stalls(d.advance(2.9))
    [stall] = _stalls(d.advance(0.2))
    assert d.now - asked_at >= 3.0
    assert stall.silent_s >= 60.0


@pytest.mark.parametrize("situation", ["nothing owed", "caller speaking", "tool running"])
def test_no_stall_when_the_model_owes_nothing(situation: str) -> None:
    d = Driver()
    if situation == "caller speaking":
        d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u1"))
    elif situation == "tool running":
        _caller_turn_ends(d)
        d.realtime(event("response.created", response={"id": "r1"}))
        d.realtime(event("response.function_call_arguments.done", response_id="r1",
                         item_id="f1", output_index=0, call_id="c1", name="lookup",
                         arguments="{}"))
        done(d, "r1")
        assert d.session.tools_running
    assert not _stalls(d.advance(30.0))
    assert d.session.upstream is UpstreamState.READY


def test_the_stall_check_can_be_turned_off() -> None:
    from callbridge.core.session import Timing

    d = Driver(timing=Timing(upstream_stall_s=None))
    _caller_turn_ends(d)
    assert not _stalls(d.advance(30.0))


def test_a_response_create_answered_only_by_an_error_is_caught_by_the_stall_deadline() -> None:
    """The model refuses `response.create` with an error and sends no response: 3 s after the
    error the session is replaced, and the new one is asked for the reply again."""
    d = Driver()
    d.do(d.session.wrap_up(d.now, "time to go"))
    assert d.session.reply.state is Reply.REQUESTED
    d.realtime(event("error", error={"type": "server_error", "code": "server_error",
                                     "message": "try again"}))
    assert not _stalls(d.advance(2.9))
    assert _stalls(d.advance(0.2))
    assert d.session.upstream is UpstreamState.OPENING
    d.do(d.session.upstream_opened(d.now))
    d.realtime(event("session.created", session={}))
    ready = realtime_out(d.realtime(session_updated()))
    assert any(isinstance(e, rt.CreateResponse) for e in ready), ready


def _hand_off(d: Driver, to: str, response: str) -> list[Action]:
    d.realtime(event("response.created", response={"id": response}))
    d.realtime(event("response.function_call_arguments.done", response_id=response,
                     item_id=f"f_{response}", output_index=0, call_id=f"c_{response}",
                     name="switch_agent", arguments=json.dumps({"agent": to})))
    return done(d, response)


def _three_agents() -> dict[str, AgentProfile]:
    return {"front": AgentProfile(name="front", handoffs=("billing",)),
            "billing": AgentProfile(name="billing", handoffs=("front", "claims")),
            "claims": AgentProfile(name="claims", instructions="You handle claims.")}


def test_a_second_handoff_back_to_the_first_agent_works() -> None:
    """A → B → A: the agent handed to can hand the call back."""
    agents = _three_agents()
    d = Driver(agents["front"], agents=agents)
    _hand_off(d, "billing", "r1")
    assert d.session.profile.name == "billing"
    after = _hand_off(d, "front", "r2")
    assert d.session.profile.name == "front"
    assert Note("agent_switched", {"from": "billing", "to": "front"}) in after


def test_a_second_handoff_to_a_third_agent_works() -> None:
    """A → B → C: the third agent is reachable through the second's hand-offs."""
    agents = _three_agents()
    d = Driver(agents["front"], agents=agents)
    _hand_off(d, "billing", "r1")
    after = _hand_off(d, "claims", "r2")
    [update] = [e for e in realtime_out(after) if isinstance(e, rt.SessionUpdate)]
    assert update.session["instructions"] == "You handle claims."
    assert d.session.profile.name == "claims"


# ---------------------------------------------------------------------- failed REST requests


def _hung_up(d: Driver) -> HangUp:
    d.do(d.session.wrap_up(d.now, "time to go"))
    sent = marks(d.respond("bye", 800, response="resp_w", text="Goodbye"))
    sent += marks(d.realtime(event("response.output_audio.done", response_id="resp_w",
                                   item_id="bye", output_index=0, content_index=0)))
    done(d, "resp_w")
    [hang_up] = controls(play_everything(d, sent))
    assert isinstance(hang_up, HangUp)
    return hang_up


def test_a_hang_up_twilio_refuses_ends_the_media_stream() -> None:
    """The session decides: the stream ends, so Twilio plays what follows </Connect>."""
    d = Driver()
    hang_up = _hung_up(d)
    actions = d.do(d.session.control_failed(hang_up, "Twilio answered 500", d.now))
    assert actions == [
        Note("call_control_failed", {"action": "HangUp", "error": "Twilio answered 500"}),
        EndStream("hang-up failed: Twilio answered 500")]
    assert d.session.state is CallState.ENDING


def test_a_refused_transfer_reopens_the_call_and_the_agent_says_so() -> None:
    """The call goes on with the agent, who is asked to tell the caller; a later hang-up works."""
    d = Driver(AgentProfile(builtin_tools=("transfer_call",),
                            transfer_targets={"sales": "+15551230000"}))
    d.realtime(event("response.created", response={"id": "resp_t"}))
    call_tool(d, "transfer_call", {"target": "sales"})
    done(d)
    sent = marks(d.respond("line", 800, response="resp_a", text="Connecting you."))
    sent += marks(d.realtime(event("response.output_audio.done", response_id="resp_a",
                                   item_id="line", output_index=0, content_index=0)))
    done(d, "resp_a")
    [redirect] = controls(play_everything(d, sent))
    assert isinstance(redirect, RedirectCall)
    actions = d.do(d.session.control_failed(redirect, "Twilio answered 404", d.now))
    [tell] = creates(actions)
    assert tell.response is not None
    assert "transfer did not go through" in tell.response["instructions"]
    assert d.session.ending.state is Ending.OPEN
    assert d.session.end_reason is None
    assert not any(isinstance(a, EndStream) for a in actions)
    sent = marks(d.respond("sorry", 800, response="resp_s", text="That did not work."))
    sent += marks(d.realtime(event("response.output_audio.done", response_id="resp_s",
                                   item_id="sorry", output_index=0, content_index=0)))
    done(d, "resp_s")
    play_everything(d, sent)
    assert _hung_up(d) == HangUp("time to go")


def test_a_recording_that_did_not_start_changes_nothing_but_a_note() -> None:
    """The call goes on unrecorded; the failure is recorded as an event."""
    d = Driver()
    actions = d.do(d.session.control_failed(StartRecording(), "no Twilio REST client", d.now))
    assert actions == [Note("call_control_failed", {"action": "StartRecording",
                                                    "error": "no Twilio REST client"})]
    assert d.session.state is CallState.STREAMING

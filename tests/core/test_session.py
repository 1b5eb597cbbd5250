"""CallSession driven through the interleavings where bridges go wrong."""

from __future__ import annotations

import base64

import pytest

from callbridge.core import realtime_events as rt
from callbridge.core import twilio_messages as tw
from callbridge.core.actions import (
    CloseUpstream,
    EndStream,
    Note,
    OpenUpstream,
    RunTool,
    SendRealtime,
    SendTwilio,
    TurnFinished,
)
from callbridge.core.agent import AgentProfile
from callbridge.core.reports import BargeIn, TurnLatency
from callbridge.core.session import CallSession, Timing
from callbridge.core.states import CallState, UpstreamState
from tests.core.drive import (
    CALL_SID,
    STREAM_SID,
    Driver,
    audio_delta,
    event,
    marks,
    media_frame,
    realtime_out,
    session_updated,
    start_frame,
    stop_frame,
    twilio_out,
)


def test_begin_opens_the_upstream_at_once() -> None:
    """The upstream socket is opened when the call is created, before Twilio connects."""
    session = CallSession(CALL_SID, AgentProfile())
    assert session.begin(0.0) == [OpenUpstream(attempt=0, delay=0.0)]
    assert session.begin(0.0) == []


def test_session_created_is_answered_with_pcmu_both_ways() -> None:
    """session.created → session.update of type realtime with audio/pcmu in and out."""
    session = CallSession(CALL_SID, AgentProfile(voice="cedar"))
    session.begin(0.0)
    session.upstream_opened(0.0)
    [update] = realtime_out(session.receive_realtime(event("session.created", session={}), 0.0))
    assert isinstance(update, rt.SessionUpdate)
    assert update.session["type"] == "realtime"
    assert update.session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update.session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert update.session["audio"]["output"]["voice"] == "cedar"


def test_greeting_is_requested_once_the_formats_are_confirmed() -> None:
    """The greeting response is created on session.updated, before Twilio has even connected."""
    d = Driver(AgentProfile(greeting="Hi, this is Ada."), start=False)
    [create] = [e for e in realtime_out(d.log) if isinstance(e, rt.CreateResponse)]
    assert create.response is not None
    assert "Hi, this is Ada." in create.response["instructions"]
    assert d.session.upstream is UpstreamState.READY


def test_a_wrong_audio_format_is_retried_once_then_the_call_gives_up() -> None:
    """session.updated without pcmu → one more session.update; twice → apology path."""
    d = Driver(start=True)
    session = CallSession(CALL_SID, AgentProfile())
    session.begin(0.0)
    session.receive_realtime(event("session.created", session={}), 0.0)
    session.receive_twilio(start_frame(), 0.0)
    first = session.receive_realtime(session_updated("audio/pcm"), 0.0)
    assert any(isinstance(e, rt.SessionUpdate) for e in realtime_out(first))
    second = session.receive_realtime(session_updated("audio/pcm"), 0.0)
    assert any(isinstance(a, EndStream) for a in second)
    assert d.session.state is CallState.STREAMING


def test_caller_audio_is_forwarded_unchanged() -> None:
    """A media payload becomes input_audio_buffer.append with the same base64 text."""
    d = Driver()
    payload = bytes(range(160))
    [append] = realtime_out(d.twilio(media_frame(20, payload)))
    assert append == rt.AppendAudio(base64.b64encode(payload).decode())


def test_caller_audio_before_the_upstream_is_ready_is_kept_and_flushed_in_order() -> None:
    """Media that arrives while the upstream is still opening is sent once it is ready."""
    session = CallSession(CALL_SID, AgentProfile())
    session.begin(0.0)
    session.receive_twilio(start_frame(), 0.0)
    frames = [bytes([i]) * 160 for i in range(3)]
    for i, frame in enumerate(frames):
        assert session.receive_twilio(media_frame(i * 20, frame), 0.0) == []
    session.receive_realtime(event("session.created", session={}), 0.0)
    appended = realtime_out(session.receive_realtime(session_updated(), 0.0))
    assert appended == [rt.AppendAudio(base64.b64encode(f).decode()) for f in frames]


def test_agent_audio_waits_for_start_then_goes_out_in_whole_frames_with_marks() -> None:
    """Audio produced before `start` is held; after it, each media chunk is followed by a mark."""
    d = Driver(start=False)
    assert twilio_out(d.respond("item_1", 1000)) == []
    out = twilio_out(d.twilio(start_frame()))
    assert out, "held audio is released on start"
    kinds = [type(m) for m in out]
    assert kinds[0::2] == [tw.SendMedia] * (len(out) // 2)
    assert kinds[1::2] == [tw.SendMark] * (len(out) // 2)
    for message in out:
        assert message.stream_sid == STREAM_SID
        if isinstance(message, tw.SendMedia):
            assert len(base64.b64decode(message.payload)) % 160 == 0


def test_a_partial_frame_waits_for_more_audio_and_is_padded_at_the_end() -> None:
    """An item's last partial frame goes out padded with μ-law silence when its audio is done."""
    d = Driver()
    d.respond("item_1", 100)
    assert twilio_out(d.log[-1:]) == []
    done = d.realtime(event("response.output_audio.done", response_id="resp_1",
                            item_id="item_1", output_index=0, content_index=0))
    [media] = [m for m in twilio_out(done) if isinstance(m, tw.SendMedia)]
    audio = base64.b64decode(media.payload)
    assert audio == b"\x55" * 100 + b"\xff" * 60


def test_outbound_audio_is_paced_to_the_lead() -> None:
    """With 2 s of audio ready, only about `lead_ms` is handed to Twilio, the rest as it plays."""
    d = Driver(timing=Timing(chunk_ms=40, lead_ms=300))
    first = d.respond("item_1", 16000)
    sent_ms = sum(len(base64.b64decode(m.payload)) / 8 for m in twilio_out(first)
                  if isinstance(m, tw.SendMedia))
    assert 300 <= sent_ms <= 340
    later = d.advance(1.0)
    sent_later = sum(len(base64.b64decode(m.payload)) / 8 for m in twilio_out(later)
                     if isinstance(m, tw.SendMedia))
    assert 980 <= sent_later <= 1020


def test_barge_in_clears_then_truncates_at_the_confirmed_position() -> None:
    """speech_started → clear, then truncate at the ms of the last echoed mark."""
    d = Driver(timing=Timing(chunk_ms=40, lead_ms=300))
    sent = marks(d.respond("item_1", 8000))
    d.advance(0.1)
    d.twilio(mark_frame_for(sent[0]))
    d.twilio(mark_frame_for(sent[1]))
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=900,
                               item_id="user_2"))
    sends = [a for a in actions if isinstance(a, SendTwilio | SendRealtime)]
    assert sends[0] == SendTwilio(tw.SendClear(STREAM_SID))
    assert isinstance(sends[1], SendRealtime)
    truncate = sends[1].event
    assert isinstance(truncate, rt.TruncateItem)
    assert (truncate.item_id, truncate.content_index, truncate.audio_end_ms) == ("item_1", 0, 80)
    assert len(sends) == 2, "the server cancels by itself when interrupt_response is on"


def test_barge_in_cancels_only_when_the_server_would_not() -> None:
    """With interrupt_response off, the bridge sends response.cancel after the truncate."""
    d = Driver(AgentProfile(interrupt_response=False))
    d.respond("item_1", 4000)
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0,
                               item_id="u"))
    kinds = [type(e) for e in realtime_out(actions)]
    assert kinds == [rt.TruncateItem, rt.CancelResponse]
    assert realtime_out(actions)[1] == rt.CancelResponse("resp_1")


def test_late_deltas_of_an_interrupted_item_never_reach_the_caller() -> None:
    """Deltas that arrive after the barge-in for the interrupted response are dropped."""
    d = Driver()
    d.respond("item_1", 4000)
    d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u"))
    late = d.realtime(audio_delta("item_1", 800))
    late += d.advance(1.0)
    assert twilio_out(late) == []
    assert d.session.stats.late_deltas_dropped == 1


def test_marks_echoed_after_clear_are_stale_and_not_counted_as_played() -> None:
    """Echoes of marks flushed by `clear` do not move the played position."""
    d = Driver()
    sent = marks(d.respond("item_1", 4000))
    d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u"))
    for name in sent:
        d.twilio(mark_frame_for(name))
    assert d.session.heard_ms("item_1") == 0
    assert d.session.stats.stale_marks == len(sent)


def test_a_mark_echoed_before_clear_counts_and_one_after_does_not() -> None:
    """Order matters: mark-then-clear is heard; clear-then-mark is not."""
    d = Driver()
    sent = marks(d.respond("item_1", 4000))
    d.twilio(mark_frame_for(sent[0]))
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0,
                               item_id="u"))
    [truncate] = [e for e in realtime_out(actions) if isinstance(e, rt.TruncateItem)]
    assert truncate.audio_end_ms == 40
    d.twilio(mark_frame_for(sent[1]))
    assert d.session.heard_ms("item_1") == 40


def test_speech_during_the_greeting_interrupts_it_with_nothing_heard() -> None:
    """Barge-in before any mark echoed truncates the greeting at 0 ms and clears Twilio."""
    d = Driver(AgentProfile(greeting="Welcome to the clinic."))
    d.respond("greet", 3200, response="resp_g")
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0,
                               item_id="u"))
    assert twilio_out(actions) == [tw.SendClear(STREAM_SID)]
    [truncate] = [e for e in realtime_out(actions) if isinstance(e, rt.TruncateItem)]
    assert truncate.audio_end_ms == 0
    [turn] = [a for a in actions if isinstance(a, TurnFinished)]
    assert turn.interrupted
    assert turn.heard == ""


def test_speech_with_nothing_playing_does_nothing() -> None:
    """A caller starting an ordinary turn triggers no clear and no truncate."""
    d = Driver()
    assert d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0,
                            item_id="u")) == []


def test_the_transcript_keeps_what_the_caller_heard() -> None:
    """An interrupted turn's heard text is the words covered by the played audio."""
    d = Driver(timing=Timing(chunk_ms=100, lead_ms=2000))
    sent = marks(d.respond("item_1", 8000, text="one two three four five six seven eight"))
    for name in sent[:5]:
        d.twilio(mark_frame_for(name))
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0,
                               item_id="u"))
    [turn] = [a for a in actions if isinstance(a, TurnFinished)]
    assert turn.text == "one two three four five six seven eight"
    assert turn.heard == "one two three four"
    assert turn.interrupted


def test_a_fully_played_item_becomes_a_complete_turn() -> None:
    """Once every mark of a finished item is echoed, the agent turn is recorded as heard whole."""
    d = Driver(timing=Timing(chunk_ms=100, lead_ms=5000))
    sent = marks(d.respond("item_1", 800, text="All done."))
    sent += marks(d.realtime(event("response.output_audio.done", response_id="resp_1",
                                   item_id="item_1", output_index=0, content_index=0)))
    d.realtime(event("response.done", response={"id": "resp_1", "status": "completed"}))
    turns = []
    for name in sent:
        turns += [a for a in d.twilio(mark_frame_for(name)) if isinstance(a, TurnFinished)]
    assert turns == [
        TurnFinished("agent", "All done.", "All done.", False, "item_1", d.now, started=100.0)
    ]


def test_stop_during_a_response_closes_the_upstream_and_ends_quietly() -> None:
    """Twilio `stop` mid-response: upstream closed, turn recorded, later events ignored."""
    d = Driver()
    d.respond("item_1", 4000)
    actions = d.twilio(stop_frame())
    assert CloseUpstream("caller hung up") in actions
    assert any(isinstance(a, TurnFinished) and a.interrupted for a in actions)
    assert d.session.state is CallState.ENDED
    assert d.realtime(audio_delta("item_1", 800)) == []
    assert d.twilio(media_frame()) == []
    assert d.session.twilio_closed(d.now) == []


def test_upstream_loss_backs_off_then_gives_up_with_the_apology() -> None:
    """Five reconnects at 0.2, 0.4, 0.8, 1.6, 3.2 s; then the stream ends and upstream closes."""
    d = Driver()
    delays = []
    actions = d.do(d.session.upstream_lost(d.now, "1006"))
    for _ in range(5):
        [opener] = [a for a in actions if isinstance(a, OpenUpstream)]
        delays.append(opener.delay)
        actions = d.do(d.session.upstream_failed(d.now, "refused"))
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2]
    assert any(isinstance(a, EndStream) for a in actions)
    assert any(isinstance(a, CloseUpstream) for a in actions)
    assert d.session.state is CallState.ENDING


def test_a_reconnect_restores_the_conversation_without_greeting_again() -> None:
    """After a drop the new session gets the history as items, and no second greeting."""
    d = Driver(AgentProfile(greeting="Hello!"))
    d.realtime(event("input_audio_buffer.speech_stopped", audio_end_ms=500, item_id="u1"))
    d.realtime(event("conversation.item.input_audio_transcription.completed", item_id="u1",
                     content_index=0, transcript="I need a table for two"))
    d.respond("a1", 4000, response="resp_2", text="Sure, for what time")
    d.do(d.session.upstream_lost(d.now, "1006"))
    d.do(d.session.upstream_opened(d.now))
    d.realtime(event("session.created", session={}))
    restored = realtime_out(d.realtime(session_updated()))
    items = [e.item for e in restored if isinstance(e, rt.CreateItem)]
    assert items[0]["role"] == "user"
    assert items[0]["content"][0]["text"] == "I need a table for two"
    assert items[1]["role"] == "assistant"
    assert items[1]["content"] == [{"type": "output_text", "text": "Sure, for what time"}]
    creates = [e for e in restored if isinstance(e, rt.CreateResponse)]
    assert creates == [rt.CreateResponse(None)], "the cut-off reply is resumed, not re-greeted"


def test_agent_audio_keeps_playing_through_an_upstream_drop() -> None:
    """Audio received before the drop still goes to Twilio during the reconnect."""
    d = Driver(timing=Timing(chunk_ms=40, lead_ms=200))
    d.respond("a1", 8000)
    d.do(d.session.upstream_lost(d.now, "1006"))
    assert any(isinstance(m, tw.SendMedia) for m in twilio_out(d.advance(0.5)))


def test_malformed_twilio_frames_are_counted_and_the_call_goes_on() -> None:
    """Garbage frames never end the call; only the first few produce a note."""
    d = Driver()
    for junk in ["{", '{"event": "media"}', '"str"', '{"event":"nope"}', "[]"]:
        actions = d.twilio(junk)
        assert not any(isinstance(a, EndStream | CloseUpstream) for a in actions)
    assert d.session.stats.malformed_twilio == 5
    assert realtime_out(d.twilio(media_frame()))
    assert d.session.state is CallState.STREAMING


def test_a_rejected_truncate_is_counted_and_does_not_end_the_call() -> None:
    """An error answering our truncate is a counted note, nothing more."""
    d = Driver()
    d.respond("a1", 4000)
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0,
                               item_id="u"))
    [truncate] = [e for e in realtime_out(actions) if isinstance(e, rt.TruncateItem)]
    error = d.realtime(event("error", error={
        "type": "invalid_request_error", "code": "invalid_value",
        "message": "Audio content of 10ms is already shorter than 20ms",
        "event_id": truncate.event_id,
    }))
    assert [a.kind for a in error if isinstance(a, Note)] == ["truncate_rejected"]
    assert d.session.stats.truncate_errors == 1
    assert d.session.state is CallState.STREAMING


def test_a_fatal_upstream_error_ends_the_stream_without_retrying() -> None:
    """model_not_found cannot be fixed by reconnecting: apology path at once."""
    d = Driver()
    actions = d.realtime(event("error", error={"type": "invalid_request_error",
                                               "code": "model_not_found", "message": "no"}))
    assert any(isinstance(a, EndStream) for a in actions)
    assert not any(isinstance(a, OpenUpstream) for a in actions)


def test_tool_results_wait_for_response_done_then_one_response_create() -> None:
    """function_call → RunTool; the output is sent after response.done with one response.create."""
    d = Driver()
    d.realtime(event("response.created", response={"id": "resp_t"}))
    actions = d.realtime(event("response.function_call_arguments.done", response_id="resp_t",
                               item_id="fc1", output_index=0, call_id="call_1",
                               name="lookup", arguments='{"id": 7}'))
    assert [a for a in actions if isinstance(a, RunTool)] == [
        RunTool("call_1", "lookup", '{"id": 7}')]
    assert realtime_out(d.do(d.session.tool_result("call_1", '{"ok": true}', d.now))) == []
    done = realtime_out(d.realtime(event("response.done", response={"id": "resp_t",
                                                                     "status": "completed"})))
    assert done == [
        rt.CreateItem({"type": "function_call_output", "call_id": "call_1",
                       "output": '{"ok": true}'}),
        rt.CreateResponse(None),
    ]


def test_a_tool_result_after_the_call_ended_is_dropped() -> None:
    """The session drops results for ended calls and unknown call ids."""
    d = Driver()
    d.realtime(event("response.function_call_arguments.done", response_id="r", item_id="i",
                     output_index=0, call_id="call_1", name="slow", arguments="{}"))
    d.twilio(stop_frame())
    assert realtime_out(d.do(d.session.tool_result("call_1", "{}", d.now))) == []
    d2 = Driver()
    assert realtime_out(d2.do(d2.session.tool_result("call_unknown", "{}", d2.now))) == []


def test_a_duplicate_start_is_ignored_and_a_foreign_call_is_refused() -> None:
    """A second `start` changes nothing; a `start` for another CallSid ends the stream."""
    d = Driver()
    assert [type(a) for a in d.twilio(start_frame())] == [Note]  # duplicate_start
    assert d.session.stream_sid == STREAM_SID
    other = CallSession(CALL_SID, AgentProfile())
    other.begin(0.0)
    assert any(isinstance(a, EndStream)
               for a in other.receive_twilio(start_frame(call_sid="CA" + "9" * 32), 0.0))


def test_start_after_the_upstream_gave_up_goes_straight_to_the_apology() -> None:
    """If the upstream failed before Twilio connected, the stream is ended on `start`."""
    session = CallSession(CALL_SID, AgentProfile(), Timing(reconnect_delays=()))
    session.begin(0.0)
    session.upstream_failed(0.0, "refused")
    assert any(isinstance(a, EndStream) for a in session.receive_twilio(start_frame(), 0.0))


@pytest.mark.parametrize("mark_first", [True, False])
def test_truncate_never_exceeds_what_was_received(mark_first: bool) -> None:
    """However marks and deltas interleave, audio_end_ms ≤ the item's received audio."""
    d = Driver(timing=Timing(chunk_ms=20, lead_ms=1000))
    sent = marks(d.respond("a1", 480))
    if mark_first:
        for name in sent:
            d.twilio(mark_frame_for(name))
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0,
                               item_id="u"))
    for e in realtime_out(actions):
        if isinstance(e, rt.TruncateItem):
            assert e.audio_end_ms <= 60


def mark_frame_for(name: str) -> str:
    from tests.core.drive import mark_frame
    return mark_frame(name)


def test_an_audio_delta_that_is_not_base64_is_counted_and_dropped() -> None:
    """A delta whose text is not base64 never reaches Twilio and never ends the call."""
    d = Driver()
    d.realtime(event("response.created", response={"id": "resp_1"}))
    actions = d.realtime(event("response.output_audio.delta", response_id="resp_1",
                               item_id="a1", output_index=0, content_index=0, delta="@@not-b64"))
    assert twilio_out(actions) == []
    assert d.session.stats.malformed_realtime == 1
    assert d.session.state is CallState.STREAMING


def test_dtmf_becomes_a_note_and_nothing_is_sent() -> None:
    """A keypad digit is recorded (call control decides what it means)."""
    d = Driver()
    frame = ('{"event":"dtmf","streamSid":"' + STREAM_SID + '","sequenceNumber":"5",'
             '"dtmf":{"track":"inbound_track","digit":"7"}}')
    assert d.twilio(frame) == [Note("dtmf", {"digit": "7"})]


def test_a_malformed_realtime_event_is_counted_and_dropped() -> None:
    """Garbage from the upstream never ends the call."""
    d = Driver()
    for junk in ["nope", '{"no_type": 1}', '{"type": "response.output_audio.delta"}']:
        assert not any(isinstance(a, EndStream) for a in d.realtime(junk))
    assert d.session.stats.malformed_realtime == 3


def test_an_ordinary_upstream_error_is_counted_and_the_call_goes_on() -> None:
    """server_error and friends are notes; response_cancel_not_active is silent."""
    d = Driver()
    error = d.realtime(event("error", error={"type": "server_error", "code": None,
                                             "message": "try again"}))
    assert [a.kind for a in error if isinstance(a, Note)] == ["upstream_error"]
    assert d.realtime(event("error", error={"type": "invalid_request_error",
                                            "code": "response_cancel_not_active",
                                            "message": "nothing to cancel"})) == []
    assert d.session.stats.upstream_errors == 1


def test_a_response_conflict_clears_the_pending_request() -> None:
    """conversation_already_has_active_response: our request is void; tool outputs wait."""
    d = Driver()
    d.realtime(event("response.function_call_arguments.done", response_id="r1", item_id="i",
                     output_index=0, call_id="c1", name="t", arguments="{}"))
    d.do(d.session.tool_result("c1", "{}", d.now))
    conflict = d.realtime(event("error", error={
        "type": "invalid_request_error", "code": "conversation_already_has_active_response",
        "message": "busy"}))
    assert [a.kind for a in conflict if isinstance(a, Note)] == ["response_conflict"]


def test_the_final_transcript_replaces_the_deltas() -> None:
    """response.output_audio_transcript.done carries the authoritative text."""
    d = Driver(timing=Timing(chunk_ms=100, lead_ms=5000))
    sent = marks(d.respond("a1", 800, text="Helo wrld"))
    d.realtime(event("response.output_audio_transcript.done", response_id="resp_1",
                     item_id="a1", output_index=0, content_index=0, transcript="Hello world"))
    sent += marks(d.realtime(event("response.done", response={"id": "resp_1",
                                                              "status": "completed"})))
    turns = [a for name in sent for a in d.twilio(mark_frame_for(name))
             if isinstance(a, TurnFinished)]
    assert [t.heard for t in turns] == ["Hello world"]


def test_a_cancelled_response_without_audio_leaves_an_empty_heard_turn() -> None:
    """Text that never became audio was not heard."""
    d = Driver()
    d.realtime(event("response.created", response={"id": "r9"}))
    d.realtime(event("response.output_audio_transcript.delta", response_id="r9", item_id="a9",
                     output_index=0, content_index=0, delta="Never said"))
    done = d.realtime(event("response.done", response={
        "id": "r9", "status": "cancelled", "status_details": {"reason": "client_cancelled"}}))
    [turn] = [a for a in done if isinstance(a, TurnFinished)]
    assert (turn.text, turn.heard) == ("Never said", "")


def test_usage_is_summed_across_responses() -> None:
    """Token counts from every response.done add up in the stats."""
    d = Driver()
    usage = {"total_tokens": 10, "input_tokens": 6, "output_tokens": 4,
             "input_token_details": {"audio_tokens": 5, "text_tokens": 1}, "flag": True}
    for rid in ("r1", "r2"):
        d.realtime(event("response.done", response={"id": rid, "status": "completed",
                                                    "usage": usage}))
    assert d.session.stats.usage == {"total_tokens": 20, "input_tokens": 12,
                                     "output_tokens": 8, "input_token_details.audio_tokens": 10,
                                     "input_token_details.text_tokens": 2}


def test_tool_outputs_produced_during_a_reconnect_go_with_the_restore() -> None:
    """A result arriving while the upstream is down waits in the history, not on a dead socket."""
    d = Driver()
    d.realtime(event("response.function_call_arguments.done", response_id="r1", item_id="i",
                     output_index=0, call_id="c1", name="lookup", arguments="{}"))
    d.realtime(event("response.done", response={"id": "r1", "status": "completed"}))
    d.do(d.session.upstream_lost(d.now, "1006"))
    assert realtime_out(d.do(d.session.tool_result("c1", '{"ok": 1}', d.now))) == []
    d.do(d.session.upstream_opened(d.now))
    d.realtime(event("session.created", session={}))
    restored = [e.item for e in realtime_out(d.realtime(session_updated()))
                if isinstance(e, rt.CreateItem)]
    assert [i["type"] for i in restored] == ["function_call", "function_call_output"]


def test_turn_latency_is_measured_in_media_time_to_the_first_played_mark() -> None:
    """Speech ends at media 1000 ms (VAD); the reply's first mark echoes at media 1900 ms."""
    d = Driver()
    d.twilio(media_frame(timestamp=0))  # the upstream's audio clock starts here
    d.twilio(media_frame(timestamp=1500))
    d.realtime(event("input_audio_buffer.speech_stopped", audio_end_ms=1000, item_id="u1"))
    d.now += 0.35
    sent = marks(d.respond("a1", 1600))
    d.twilio(media_frame(timestamp=1900))
    latency = [a for a in d.twilio(mark_frame_for(sent[0])) if isinstance(a, TurnLatency)]
    assert latency == [TurnLatency(ms=900, model_ms=350)]


def test_barge_in_reaction_is_measured_from_the_speech_start() -> None:
    """Speech starts at media 2000 ms; the clear goes out at media 2260 ms."""
    d = Driver()
    d.twilio(media_frame(timestamp=0))
    d.respond("a1", 8000)
    d.twilio(media_frame(timestamp=2260))
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=2000,
                               item_id="u2"))
    [note] = [a for a in actions if isinstance(a, BargeIn)]
    assert note.details() == {"item_id": "u2", "reaction_ms": 260}


def pcm16_driver() -> Driver:
    session = AgentProfile(audio_format="pcm16")
    d = Driver(session, start=False)
    d.do(d.session.receive_realtime(session_updated("audio/pcm"), d.now))
    d.twilio(start_frame())
    return d


def test_a_pcm16_agent_asks_for_24_khz_pcm_both_ways() -> None:
    """session.update states audio/pcm at 24 kHz in and out; pcmu is refused as a mismatch."""
    session = AgentProfile(audio_format="pcm16").session()
    pcm = {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["format"] == pcm
    assert session["audio"]["output"]["format"] == pcm


def test_pcm16_caller_audio_is_resampled_to_24_khz() -> None:
    """A 20 ms μ-law frame becomes PCM16 at 24 kHz (about 960 bytes once the resampler runs)."""
    d = pcm16_driver()
    sizes = []
    for i in range(10):
        for e in realtime_out(d.twilio(media_frame(i * 20, bytes([0x10 + i]) * 160))):
            assert isinstance(e, rt.AppendAudio)
            sizes.append(len(base64.b64decode(e.audio)))
    assert 8 * 960 <= sum(sizes) <= 10 * 960
    assert 0 not in sizes, "a frame the resampler holds back sends no empty append"
    assert len(sizes) < 10


def test_pcm16_truncation_counts_ms_at_48_bytes_per_ms() -> None:
    """A 1 s PCM16 reply (48,000 bytes) is 1000 ms received; truncate stays within it."""
    d = pcm16_driver()
    pcm = base64.b64encode(b"\x00\x10" * 24000).decode()
    d.realtime(event("response.created", response={"id": "r1"}))
    out = d.realtime(event("response.output_audio.delta", response_id="r1", item_id="a1",
                           output_index=0, content_index=0, delta=pcm))
    sent = marks(out)
    for name in sent[:3]:
        d.twilio(mark_frame_for(name))
    actions = d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=0,
                               item_id="u"))
    [truncate] = [e for e in realtime_out(actions) if isinstance(e, rt.TruncateItem)]
    assert truncate.audio_end_ms == 120  # three 40 ms chunks of μ-law confirmed played
    assert d.session.heard_ms("a1") == 120


def _payloads(actions: list) -> list[bytes]:  # type: ignore[type-arg]
    return [base64.b64decode(e.audio) for e in realtime_out(actions)
            if isinstance(e, rt.AppendAudio)]


def _reconnect(d: Driver) -> list:  # type: ignore[type-arg]
    d.do(d.session.upstream_lost(d.now, "1006"))
    d.do(d.session.upstream_opened(d.now))
    d.realtime(event("session.created", session={}))
    return d.realtime(session_updated())


def test_a_half_said_sentence_is_given_again_to_the_session_that_replaces_a_lost_one() -> None:
    """Caller audio sent since the caller's last turn ended went with the lost session: the
    new one gets it first, then what arrived during the reconnect, in order."""
    d = Driver()
    d.twilio(media_frame(0, b"\x01" * 160))  # part of a finished turn
    d.realtime(event("input_audio_buffer.speech_stopped", audio_end_ms=20, item_id="u1"))
    said = [bytes([10 + i]) * 160 for i in range(3)]  # "I'd like a table for…"
    for i, frame in enumerate(said):
        d.twilio(media_frame(40 + 20 * i, frame))
    d.do(d.session.upstream_lost(d.now, "1006"))
    during = bytes([99]) * 160
    assert realtime_out(d.twilio(media_frame(100, during))) == []
    d.do(d.session.upstream_opened(d.now))
    d.realtime(event("session.created", session={}))
    assert _payloads(d.realtime(session_updated())) == [*said, during]


def test_audio_already_answered_is_not_given_again() -> None:
    """After `speech_stopped` the turn belongs to the session (and the restored history):
    a later drop replays nothing from before it."""
    d = Driver()
    for i in range(3):
        d.twilio(media_frame(20 * i, bytes([i + 1]) * 160))
    d.realtime(event("input_audio_buffer.speech_stopped", audio_end_ms=60, item_id="u1"))
    assert _payloads(_reconnect(d)) == []


def test_a_second_drop_before_the_caller_finishes_replays_the_whole_utterance_again() -> None:
    d = Driver()
    first, second = b"\x21" * 160, b"\x22" * 160
    d.twilio(media_frame(0, first))
    assert _payloads(_reconnect(d)) == [first]
    d.twilio(media_frame(20, second))
    assert _payloads(_reconnect(d)) == [first, second]


def test_the_replay_is_capped_at_the_input_backlog() -> None:
    d = Driver(timing=Timing(input_backlog_ms=60))
    frames = [bytes([i + 1]) * 160 for i in range(5)]
    for i, frame in enumerate(frames):
        d.twilio(media_frame(20 * i, frame))
    assert _payloads(_reconnect(d)) == frames[-3:]


def test_a_greeting_kept_for_start_is_asked_for_when_start_arrives() -> None:
    """With greet_before_start off, the ready session waits; Twilio's start asks for it."""
    profile = AgentProfile(greeting="Hello there.")
    d = Driver(profile, Timing(greet_before_start=False), start=False)
    assert not any(isinstance(e, rt.CreateResponse) for e in realtime_out(d.log))
    [greet] = [e for e in realtime_out(d.twilio(start_frame())) if isinstance(e, rt.CreateResponse)]
    assert greet.response is not None
    assert "Hello there." in greet.response["instructions"]


def test_a_greeting_kept_for_start_goes_out_when_the_session_is_ready_after_start() -> None:
    """start before the first session is ready: the greeting follows the ready session."""
    session = CallSession(CALL_SID, AgentProfile(greeting="Hello there."),
                          Timing(greet_before_start=False))
    session.begin(0.0)
    assert realtime_out(session.receive_twilio(start_frame(), 0.0)) == []
    session.upstream_opened(0.0)
    session.receive_realtime(event("session.created", session={}), 0.0)
    ready = realtime_out(session.receive_realtime(session_updated(), 0.0))
    assert sum(isinstance(e, rt.CreateResponse) for e in ready) == 1

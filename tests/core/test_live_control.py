"""Live control from outside the call: say, context, hang-up and transfer decided in the core."""

from __future__ import annotations

from callbridge.core import live_control as live
from callbridge.core import realtime_events as rt
from callbridge.core.actions import Action, HangUp, Note, RedirectCall
from callbridge.core.agent import AgentProfile
from callbridge.core.session import CallSession
from tests.core.drive import (
    CALL_SID,
    Driver,
    event,
    mark_frame,
    marks,
    realtime_out,
    session_updated,
    start_frame,
)


def creates(actions: list[Action]) -> list[rt.CreateResponse]:
    return [e for e in realtime_out(actions) if isinstance(e, rt.CreateResponse)]


def controls(actions: list[Action]) -> list[Action]:
    return [a for a in actions if isinstance(a, HangUp | RedirectCall)]


def accepted(outcome: live.Outcome) -> list[Action]:
    assert not isinstance(outcome, live.Refusal), outcome
    return outcome


def play_out(d: Driver, item: str, response: str, text: str) -> list[Action]:
    """The agent speaks `text` as `response`, and the caller hears all of it."""
    sent = marks(d.respond(item, 800, response=response, text=text))
    sent += marks(d.realtime(event("response.output_audio.done", response_id=response,
                                   item_id=item, output_index=0, content_index=0)))
    out = d.realtime(event("response.done", response={"id": response, "status": "completed",
                                                      "usage": {}}))
    sent += marks(d.advance(1.0))
    for name in sent:
        out += d.twilio(mark_frame(name))
    return out


def test_say_when_nobody_speaks_asks_for_the_line_word_for_word_at_once() -> None:
    """A quiet call: one response.create whose instructions quote the text exactly."""
    d = Driver()
    [create] = creates(d.do(accepted(live.say(d.session, "Your order has shipped.", d.now))))
    assert create.response is not None
    assert '"Your order has shipped."' in create.response["instructions"]


def test_say_during_a_reply_waits_for_that_reply_to_finish() -> None:
    """The line is the next turn: nothing is sent until the current response is done."""
    d = Driver()
    d.realtime(event("response.created", response={"id": "resp_1"}))
    assert creates(d.do(accepted(live.say(d.session, "One more thing.", d.now)))) == []
    after = d.realtime(event("response.done", response={"id": "resp_1", "status": "completed",
                                                        "usage": {}}))
    [create] = creates(after)
    assert create.response is not None
    assert '"One more thing."' in create.response["instructions"]


def test_say_is_refused_before_the_stream_starts_and_while_a_line_waits() -> None:
    """409 material: no media stream yet, or another line already queued."""
    assert isinstance(live.say(Driver(start=False).session, "Hi", 0.0), live.Refusal)
    d = Driver()
    d.realtime(event("response.created", response={"id": "resp_1"}))
    accepted(live.say(d.session, "First.", d.now))
    refusal = live.say(d.session, "Second.", d.now)
    assert isinstance(refusal, live.Refusal)
    assert "already waiting" in refusal.reason


def test_context_is_a_system_item_and_no_response() -> None:
    """The model sees the note; nobody is asked to speak."""
    d = Driver()
    out = d.do(accepted(live.add_context(d.session, "The caller is a VIP.", d.now)))
    [item] = [e.item for e in realtime_out(out) if isinstance(e, rt.CreateItem)]
    assert item["role"] == "system"
    assert item["content"][0]["text"] == "The caller is a VIP."
    assert creates(out) == []


def _reconnect(d: Driver) -> list[dict[str, object]]:
    """Drop the model's session and open a new one; the items it is given."""
    d.do(d.session.upstream_lost(d.now, "1006"))
    d.do(d.session.upstream_opened(d.now))
    d.realtime(event("session.created", session={}))
    return [e.item for e in realtime_out(d.realtime(session_updated()))
            if isinstance(e, rt.CreateItem)]


def test_a_context_note_is_given_again_to_the_session_replacing_a_dropped_one() -> None:
    """The note stays in the conversation: a reconnect restores it in its place, and the
    caller's last turn still owes a reply (a note is not a turn)."""
    d = Driver()
    accepted(live.add_context(d.session, "The caller is a VIP.", d.now))
    d.realtime(event("input_audio_buffer.speech_stopped", audio_end_ms=500, item_id="u1"))
    d.realtime(event("conversation.item.input_audio_transcription.completed", item_id="u1",
                     content_index=0, transcript="Where is my order?"))
    accepted(live.add_context(d.session, "Order 42 shipped today.", d.now))
    items = _reconnect(d)
    assert [(i["role"], i["content"][0]["text"]) for i in items] == [  # type: ignore[index]
        ("system", "The caller is a VIP."), ("user", "Where is my order?"),
        ("system", "Order 42 shipped today.")]
    assert d.session.history.last_is_caller()


def test_a_context_note_taken_while_reconnecting_goes_with_the_restored_conversation() -> None:
    """Accepted while the link is down (nothing sent), then given to the new session."""
    d = Driver()
    d.do(d.session.upstream_lost(d.now, "1006"))
    out = d.do(accepted(live.add_context(d.session, "Speak slowly.", d.now)))
    assert [e for e in realtime_out(out) if isinstance(e, rt.CreateItem)] == []
    d.do(d.session.upstream_opened(d.now))
    d.realtime(event("session.created", session={}))
    items = [e.item for e in realtime_out(d.realtime(session_updated()))
             if isinstance(e, rt.CreateItem)]
    assert [i["content"][0]["text"] for i in items] == ["Speak slowly."]


def test_context_before_the_first_session_is_ready_is_refused() -> None:
    session = CallSession(CALL_SID, AgentProfile())
    session.begin(100.0)
    session.upstream_opened(100.0)
    session.receive_twilio(start_frame(), 100.0)  # streaming; the model's session not ready
    refusal = live.add_context(session, "Too early.", 100.0)
    assert isinstance(refusal, live.Refusal)
    assert "not ready" in refusal.reason


def test_hang_up_without_goodbye_is_immediate() -> None:
    """No goodbye: HangUp at once, with the API as the reason."""
    d = Driver()
    out = accepted(live.hang_up(d.session, d.now))
    assert controls(out) == [HangUp("hung up through the API")]
    assert isinstance(live.hang_up(d.session, d.now), live.Refusal), "only once"


def test_hang_up_with_goodbye_says_it_then_hangs_up_once_it_played() -> None:
    """The goodbye is asked for word for word; HangUp only after its last mark echoed."""
    d = Driver()
    out = d.do(accepted(live.hang_up(d.session, d.now, goodbye="Thanks, goodbye!")))
    [create] = creates(out)
    assert create.response is not None
    assert '"Thanks, goodbye!"' in create.response["instructions"]
    assert controls(out) == []
    assert controls(play_out(d, "bye", "resp_bye", "Thanks, goodbye!")) == [
        HangUp("hung up through the API")]


def test_transfer_with_announcement_redirects_after_it_played() -> None:
    """Announcement first, then the Dial TwiML to the number the API gave."""
    d = Driver(AgentProfile(transfer_fallback="Nobody is free."))
    out = d.do(accepted(live.transfer(d.session, d.now, "+15551230000",
                                      announcement="Putting you through.")))
    assert Note("transfer", {"target": "api", "announced": True}) in out
    assert controls(out) == []
    [redirect] = controls(play_out(d, "line", "resp_a", "Putting you through."))
    assert isinstance(redirect, RedirectCall)
    assert "<Number>+15551230000</Number>" in redirect.twiml


def test_transfer_without_announcement_to_a_sip_uri_is_immediate() -> None:
    """No announcement: the redirect goes out at once, to a SIP URI here."""
    d = Driver()
    [redirect] = controls(accepted(live.transfer(d.session, d.now, "sip:desk@pbx.example.com")))
    assert isinstance(redirect, RedirectCall)
    assert "<Sip>sip:desk@pbx.example.com</Sip>" in redirect.twiml


def test_requests_are_refused_while_a_hang_up_is_pending() -> None:
    """Once the call is closing, say, context and transfer get a reason instead."""
    d = Driver()
    accepted(live.hang_up(d.session, d.now, goodbye="Bye."))
    for outcome in (live.say(d.session, "x", d.now), live.add_context(d.session, "x", d.now),
                    live.transfer(d.session, d.now, "+15551230000")):
        assert isinstance(outcome, live.Refusal)


def test_say_waits_for_the_answering_machine_verdict() -> None:
    """An outbound call still waiting for AMD does not speak on request."""
    session = CallSession("CA" + "3" * 32, AgentProfile(), awaiting_answer=True)
    assert isinstance(live.say(session, "Hi", 0.0), live.Refusal)


def test_bad_text_and_targets_are_named() -> None:
    """Validation says what is wrong with the request."""
    assert live.check_text("") is not None
    assert live.check_text(42) is not None
    assert live.check_text("x" * (live.MAX_TEXT_CHARS + 1)) is not None
    assert live.check_text("Hello") is None
    assert live.check_target("+15551230000") is None
    assert live.check_target("sip:desk@pbx.example.com") is None
    for bad in ("5551230000", "+0123", "tel:+1555", "", None):
        assert live.check_target(bad) is not None


def test_on_gpt_live_a_line_to_say_is_commentary_and_a_note_is_instructions() -> None:
    """The same requests on a GPT-Live call take GPT-Live's wire: commentary to speak, an
    instructions append for a note, never a response.create."""
    import json

    from callbridge.core.actions import SendRealtime
    from tests.core.drive import start_frame
    from tests.core.test_live_model import started

    session = CallSession("CA" + "4" * 32, AgentProfile(model="gpt-live-1.1"))
    session.begin(1.0)
    session.upstream_opened(1.0)
    session.receive_realtime(started(), 1.0)
    session.receive_twilio(start_frame("CA" + "4" * 32), 1.0)
    said = accepted(live.say(session, "Your order has shipped.", 2.0))
    note = accepted(live.add_context(session, "The caller is a VIP.", 2.0))
    wire = [json.loads(a.event.serialize()) for a in said + note if isinstance(a, SendRealtime)]
    assert [e["type"] for e in wire] == ["session.commentary.append",
                                         "session.instructions.append"]
    assert "Your order has shipped." in wire[0]["content"]

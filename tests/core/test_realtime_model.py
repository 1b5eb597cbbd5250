"""The Realtime API behind the model seam: its server events as model-neutral inputs, the
session's intents as its client events."""

from __future__ import annotations

import json

import pytest

from callbridge.core import model as m
from callbridge.core import realtime_events as rt
from callbridge.core.actions import SendRealtime
from callbridge.core.agent import AgentProfile
from callbridge.core.history import ConversationHistory
from callbridge.core.model_choice import model_for
from callbridge.core.realtime_model import RealtimeModel
from callbridge.errors import ProtocolError
from tests.core.drive import audio_delta, event, session_updated


def one(model: RealtimeModel, text: str) -> m.ModelInput | None:
    """The input a server event means (Realtime: never more than one), or None."""
    inputs = model.receive(text, 0.0)
    assert len(inputs) <= 1
    return inputs[0] if inputs else None

def _model(**profile: object) -> RealtimeModel:
    return RealtimeModel(AgentProfile(**profile))  # type: ignore[arg-type]


def test_server_events_become_model_neutral_inputs() -> None:
    """Each event the call acts on has one input; the rest are None."""
    model = _model()
    assert one(model, audio_delta("i1", 4, "r1")) == m.AgentAudio("r1", "i1", 0, "VVVVVQ==")
    assert one(model, event("input_audio_buffer.speech_started", audio_start_ms=120,
                               item_id="u1")) == m.CallerSpeechStarted("u1", 120)
    assert one(model, event("response.done", response={
        "id": "r1", "status": "completed", "usage": {"total_tokens": 3}})) == m.ReplyDone(
        "r1", "completed", None, {"total_tokens": 3})
    assert one(model, event("response.function_call_arguments.done", response_id="r1",
                               item_id="f", call_id="c1", name="lookup",
                               arguments="{}")) == m.ToolCallRequested("r1", "c1", "lookup", "{}")
    assert one(model, event("rate_limits.updated", rate_limits=[])) is None


def test_the_configuration_is_accepted_only_with_the_calls_audio_format_both_ways() -> None:
    """μ-law confirmed is accepted; PCM for a μ-law call is refused with what was chosen."""
    assert one(_model(), session_updated()) == m.Configured(True)
    assert one(_model(), session_updated("audio/pcm")) == m.Configured(
        False, {"input": "audio/pcm", "output": "audio/pcm"})
    assert one(_model(audio_format="pcm16"), session_updated("audio/pcm")) == (
        m.Configured(True))


@pytest.mark.parametrize(("code", "event_id", "kind"), [
    ("response_cancel_not_active", None, m.ErrorKind.HARMLESS),
    ("conversation_already_has_active_response", None, m.ErrorKind.CONFLICT),
    ("model_not_found", None, m.ErrorKind.FATAL),
    ("item_truncate_invalid", "truncate_3", m.ErrorKind.CUT_REFUSED),
    ("server_error", None, m.ErrorKind.OTHER),
])
def test_errors_are_classified_once_here(code: str, event_id: str | None,
                                         kind: m.ErrorKind) -> None:
    """Which Realtime error codes are fatal, harmless or a refused cut is this module's."""
    error = {"type": "invalid_request_error", "code": code, "message": "x"}
    if event_id:
        error["event_id"] = event_id
    parsed = one(_model(), event("error", error=error))
    assert isinstance(parsed, m.ModelError)
    assert parsed.kind is kind


def test_a_malformed_event_is_a_protocol_error() -> None:
    """The session counts and drops what the protocol object cannot read."""
    with pytest.raises(ProtocolError):
        one(_model(), "{not json")


def test_intents_become_realtime_client_events() -> None:
    """Cut, stop, ask, tool output, caller text and restore in the Realtime wire shape."""
    model = _model()
    assert model.cut("i1", 0, 840, 7) == [SendRealtime(rt.TruncateItem("i1", 0, 840,
                                                                       "truncate_7"))]
    assert model.stop_reply("r1", AgentProfile()) == []  # the server cancels by itself
    assert model.stop_reply("r1", AgentProfile(interrupt_response=False)) == [
        SendRealtime(rt.CancelResponse("r1"))]
    assert model.ask_reply(None) == [SendRealtime(rt.CreateResponse(None))]
    output = json.loads(model.tool_output("c1", "{}").event.serialize())
    assert output["item"] == {"type": "function_call_output", "call_id": "c1", "output": "{}"}
    history = ConversationHistory()
    history.caller_said("u1", "hello")
    [restored] = model.restore(history, 60, 24_000)
    assert json.loads(restored.event.serialize())["item"]["role"] == "user"


def test_a_new_voice_needs_a_new_session_only_once_the_agent_spoke() -> None:
    """A Realtime session cannot change voice after it has produced audio."""
    model = model_for(AgentProfile())
    old, new = AgentProfile(voice="marin"), AgentProfile(voice="cedar")
    assert model.needs_new_session(old, new, spoke=True)
    assert not model.needs_new_session(old, new, spoke=False)
    assert not model.needs_new_session(old, AgentProfile(voice="marin"), spoke=True)

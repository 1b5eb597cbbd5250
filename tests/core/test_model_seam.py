"""The model seam holds: a second model API with its own wire (no barge-in events, no cuts,
its own reply request) runs a call through the unchanged session with only a protocol object."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from callbridge.core import model as m
from callbridge.core import twilio_messages as tw
from callbridge.core.actions import SendRealtime, TurnFinished
from callbridge.core.agent import AgentProfile
from callbridge.core.history import ConversationHistory
from callbridge.core.session import CallSession
from callbridge.errors import ProtocolError
from tests.core.drive import CALL_SID, mark_frame, media_frame, start_frame, twilio_out


@dataclass(frozen=True)
class LineEvent:
    """A client event of the toy API: one JSON object per message."""

    body: dict[str, Any]

    def serialize(self) -> str:
        return json.dumps(self.body)


class LineModel:
    """A toy full-duplex API: `hello`, `ok`, `start`, `audio`, `text`, `done` in; it cannot cut
    or cancel speech and is asked to speak with `speak`."""

    next_tick: float | None = None

    def socket_opened(self) -> tuple[m.ModelInput, ...]:
        return ()

    def receive(self, text: str | bytes, now: float) -> tuple[m.ModelInput, ...]:
        event = self._input(text)
        return () if event is None else (event,)

    def tick(self, now: float) -> tuple[list[m.ModelInput], list[SendRealtime]]:
        return [], []

    def farewell(self) -> tuple[list[SendRealtime], float]:
        return [], 0.0

    def finish(self, now: float) -> tuple[m.ModelInput, ...]:
        return ()

    def _input(self, text: str | bytes) -> m.ModelInput | None:
        try:
            e = json.loads(text)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from exc
        kind = e["t"]
        if kind == "hello":
            return m.SessionOpened()
        if kind == "ok":
            return m.Configured(True)
        if kind == "start":
            return m.ReplyStarted(e["r"])
        if kind == "audio":
            return m.AgentAudio(e["r"], e["i"], 0, e["b64"])
        if kind == "text":
            return m.AgentTextDone(e["r"], e["i"], e["s"])
        if kind == "done":
            return m.ReplyDone(e["r"], "completed", None, {"seconds": 2})
        return None

    def _send(self, **body: Any) -> SendRealtime:
        return SendRealtime(LineEvent(body))  # type: ignore[arg-type]

    def configure(self, profile: AgentProfile, *, answer_turns: bool,
                  history: ConversationHistory | None = None) -> list[SendRealtime]:
        return [self._send(t="setup", voice=profile.voice)]

    def needs_new_session(self, old: AgentProfile, new: AgentProfile, spoke: bool) -> bool:
        return old.voice != new.voice

    def append_audio(self, audio: str) -> SendRealtime:
        return self._send(t="in", b64=audio)

    def cut(self, item_id: str, part: int, heard_ms: int, seq: int) -> list[SendRealtime]:
        return []

    def stop_reply(self, reply_id: str, profile: AgentProfile) -> list[SendRealtime]:
        return []

    def ask_reply(self, body: dict[str, Any] | None) -> list[SendRealtime]:
        return [self._send(t="speak", say=(body or {}).get("instructions"))]

    def tool_output(self, call_id: str, output: str) -> SendRealtime:
        return self._send(t="result", id=call_id, output=output)

    def caller_text(self, text: str) -> SendRealtime:
        return self._send(t="note", text=text)

    def system_note(self, text: str) -> SendRealtime:
        return self._send(t="note", text=text)

    def restore(self, history: ConversationHistory, max_items: int,
                max_chars: int) -> list[SendRealtime]:
        return []

    def cost(self, profile: AgentProfile, usage: dict[str, Any]) -> float:
        return 0.05 / 60 * float(usage.get("seconds", 0))


def _wire(actions: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(a.event.serialize()) for a in actions if isinstance(a, SendRealtime)]


def test_a_call_runs_through_a_second_model_api_with_only_its_protocol_object() -> None:
    """Greeting asked in the toy API's words, caller audio appended in its shape, agent
    audio paced to Twilio with marks, the played turn recorded, cost from its own pricing."""
    session = CallSession(CALL_SID, AgentProfile(greeting="Hi!"), model=LineModel())
    now = 1.0
    session.begin(now)
    session.upstream_opened(now)
    assert _wire(session.receive_realtime('{"t": "hello"}', now)) == [
        {"t": "setup", "voice": AgentProfile().voice}]
    ready = _wire(session.receive_realtime('{"t": "ok"}', now))
    assert ready[0]["t"] == "speak"
    assert "Hi!" in ready[0]["say"]
    session.receive_twilio(start_frame(), now)
    assert _wire(session.receive_twilio(media_frame(0), now))[0]["t"] == "in"
    audio = base64.b64encode(b"\x55" * 320).decode()
    session.receive_realtime('{"t": "start", "r": "r1"}', now)
    out = session.receive_realtime(json.dumps({"t": "audio", "r": "r1", "i": "a1",
                                               "b64": audio}), now)
    media, mark = twilio_out(out)  # 40 ms: one chunk and its mark
    assert isinstance(media, tw.SendMedia)
    assert isinstance(mark, tw.SendMark)
    session.receive_realtime('{"t": "text", "r": "r1", "i": "a1", "s": "Hi!"}', now)
    done = session.receive_realtime('{"t": "done", "r": "r1"}', now)
    turns = [a for a in session.receive_twilio(mark_frame(mark.name), now + 1)
             if isinstance(a, TurnFinished)]
    assert [(t.role, t.heard) for t in turns] == [("agent", "Hi!")]
    assert session.cost_usd == 0.05 / 60 * 2
    assert done  # the usage report

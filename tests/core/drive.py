"""Builders of wire frames and a small driver that walks a CallSession to a live call."""

from __future__ import annotations

import base64
import json
from typing import Any

from callbridge.core import realtime_events as rt
from callbridge.core import twilio_messages as tw
from callbridge.core.actions import Action, SendRealtime, SendTwilio
from callbridge.core.agent import AgentProfile
from callbridge.core.session import CallSession, Timing

CALL_SID = "CA" + "1" * 32
STREAM_SID = "MZ" + "2" * 32


def start_frame(call_sid: str = CALL_SID, stream_sid: str = STREAM_SID) -> str:
    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {"accountSid": "AC" + "0" * 32, "streamSid": stream_sid, "callSid": call_sid,
                  "tracks": ["inbound"], "customParameters": {"token": "t"},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
    })


def media_frame(timestamp: int = 0, payload: bytes = b"\xff" * 160) -> str:
    return json.dumps({
        "event": "media", "sequenceNumber": "2", "streamSid": STREAM_SID,
        "media": {"track": "inbound", "chunk": "1", "timestamp": str(timestamp),
                  "payload": base64.b64encode(payload).decode()},
    })


def mark_frame(name: str) -> str:
    return json.dumps({"event": "mark", "sequenceNumber": "3", "streamSid": STREAM_SID,
                       "mark": {"name": name}})


def stop_frame() -> str:
    return json.dumps({"event": "stop", "sequenceNumber": "9", "streamSid": STREAM_SID,
                       "stop": {"accountSid": "AC" + "0" * 32, "callSid": CALL_SID}})


def event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": "ev", **fields})


def session_updated(fmt: str = "audio/pcmu") -> str:
    return event("session.updated", session={
        "type": "realtime",
        "audio": {"input": {"format": {"type": fmt}}, "output": {"format": {"type": fmt}}},
    })


def audio_delta(item: str, nbytes: int, response: str = "resp_1", fill: int = 0x55) -> str:
    return event("response.output_audio.delta", response_id=response, item_id=item,
                 output_index=0, content_index=0,
                 delta=base64.b64encode(bytes([fill]) * nbytes).decode())


def twilio_out(actions: list[Action]) -> list[tw.Outbound]:
    return [a.message for a in actions if isinstance(a, SendTwilio)]


def realtime_out(actions: list[Action]) -> list[rt.ClientEvent]:
    return [a.event for a in actions if isinstance(a, SendRealtime)]


def marks(actions: list[Action]) -> list[str]:
    return [m.name for m in twilio_out(actions) if isinstance(m, tw.SendMark)]


class Driver:
    """A CallSession plus a clock, brought to STREAMING with the upstream READY."""

    def __init__(self, profile: AgentProfile | None = None, timing: Timing | None = None,
                 *, start: bool = True, agents: dict[str, AgentProfile] | None = None) -> None:
        self.now = 100.0
        self.session = CallSession(CALL_SID, profile or AgentProfile(), timing, agents=agents)
        self.log: list[Action] = []
        self.do(self.session.begin(self.now))
        self.do(self.session.upstream_opened(self.now))
        self.do(self.session.receive_realtime(event("session.created", session={}), self.now))
        self.do(self.session.receive_realtime(session_updated(), self.now))
        if start:
            self.twilio(start_frame())

    def do(self, actions: list[Action]) -> list[Action]:
        self.log += actions
        return actions

    def twilio(self, text: str) -> list[Action]:
        return self.do(self.session.receive_twilio(text, self.now))

    def realtime(self, text: str) -> list[Action]:
        return self.do(self.session.receive_realtime(text, self.now))

    def advance(self, seconds: float) -> list[Action]:
        """Let time pass, honouring the session's wake-ups on the way."""
        end = self.now + seconds
        out: list[Action] = []
        while True:
            wake = self.session.next_wakeup
            if wake is None or wake > end:
                break
            self.now = max(self.now, wake)
            out += self.do(self.session.wake(self.now))
        self.now = end
        return out

    def respond(self, item: str, nbytes: int, response: str = "resp_1",
                text: str = "Hello there caller") -> list[Action]:
        out = self.realtime(event("response.created", response={"id": response}))
        out += self.realtime(event("response.output_audio_transcript.delta",
                                   response_id=response, item_id=item, output_index=0,
                                   content_index=0, delta=text))
        out += self.realtime(audio_delta(item, nbytes, response))
        return out

"""Call sessions to throw inputs at: fresh, or streaming with the upstream ready, in either
audio format. Driven only through CallSession's public entry points."""

from __future__ import annotations

import json
from typing import Any

from callbridge.core.actions import Action
from callbridge.core.agent import AgentProfile
from callbridge.core.session import CallSession
from tests.fuzz.strategies import SIGNED_CALL_SID, STREAM_SID, json_text

_FORMATS = {"pcmu": {"type": "audio/pcmu"}, "pcm16": {"type": "audio/pcm", "rate": 24000}}


def session(audio_format: str = "pcmu", *, ready: bool = True,
            greeting: str | None = None) -> CallSession:
    """A call session; with `ready`, its stream has started and its upstream is configured."""
    profile = AgentProfile(name="fuzz", audio_format=audio_format,  # type: ignore[arg-type]
                           greeting=greeting, builtin_tools=("end_call", "transfer_call"),
                           transfer_targets={"desk": "+15550001234"})
    call = CallSession(SIGNED_CALL_SID, profile)
    call.begin(0.0)
    if not ready:
        return call
    call.upstream_opened(0.0)
    call.receive_twilio(json.dumps({"event": "start", "start": {
        "streamSid": STREAM_SID, "callSid": SIGNED_CALL_SID, "accountSid": "AC",
        "tracks": ["inbound"], "customParameters": {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}), 0.0)
    fmt = _FORMATS[audio_format]
    call.receive_realtime(json.dumps({"type": "session.updated", "session": {
        "audio": {"input": {"format": fmt}, "output": {"format": fmt}}}}), 0.01)
    return call


def wake_due(call: CallSession, now: float) -> list[Action]:
    """Run the wake-up the session asked for, if it is due by `now`."""
    due = call.next_wakeup
    return call.wake(now) if due is not None and due <= now else []


def play_realtime(call: CallSession, events: list[dict[str, Any]], step: float = 0.05) -> None:
    """Deliver `events` from the model `step` seconds apart, waking the session when due, then
    hang up."""
    now = 0.0
    for event in events:
        now += step
        call.receive_realtime(json_text(event), now)
        wake_due(call, now)
    call.twilio_closed(now + step)

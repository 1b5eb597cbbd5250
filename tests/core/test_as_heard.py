"""The as-heard recording: both sides placed on the media clock, cleared audio left out."""

from __future__ import annotations

import base64
import json

from callbridge.core.actions import SaveRecording
from callbridge.core.agent import AgentProfile
from callbridge.core.as_heard import AsHeardTimeline
from callbridge.core.session import Timing
from tests.core.drive import (
    Driver,
    event,
    mark_frame,
    marks,
    media_frame,
    stop_frame,
)

CLICK = 0x00  # μ-law full scale: unmistakable among 0xFF silence


def recording(d: Driver) -> SaveRecording:
    [saved] = [a for a in d.twilio(stop_frame()) if isinstance(a, SaveRecording)]
    return saved


def test_a_click_in_the_agents_audio_lands_where_it_was_played() -> None:
    """Audio starts playing at media 1000 ms; a click 400 ms in is at 1400 ms ± 20 ms."""
    d = Driver(AgentProfile(record_audio=True), Timing(chunk_ms=40, lead_ms=10_000))
    d.twilio(media_frame(timestamp=1000))
    audio = bytearray(b"\xff" * 6400)
    audio[3200] = CLICK
    d.realtime(event("response.created", response={"id": "r1"}))
    sent = marks(d.realtime(event("response.output_audio.delta", response_id="r1",
                                  item_id="a1", output_index=0, content_index=0,
                                  delta=base64.b64encode(bytes(audio)).decode())))
    for k, name in enumerate(sent):
        d.twilio(media_frame(timestamp=1000 + 40 * (k + 1)))
        d.twilio(mark_frame(name))
    agent = recording(d).agent
    assert abs(agent.index(bytes([CLICK])) - 1400 * 8) <= 160


def test_a_click_in_the_callers_audio_lands_at_its_timestamp() -> None:
    """Caller frames are placed at their media timestamps."""
    d = Driver(AgentProfile(record_audio=True))
    for ts in range(0, 3000, 20):
        frame = bytearray(b"\xff" * 160)
        if ts == 2000:
            frame[0] = CLICK
        d.twilio(media_frame(timestamp=ts, payload=bytes(frame)))
    caller = recording(d).caller
    assert caller.index(bytes([CLICK])) == 2000 * 8


def test_audio_discarded_by_clear_is_not_in_the_recording() -> None:
    """After a barge-in only what had played (to the moment of the clear) is recorded."""
    d = Driver(AgentProfile(record_audio=True), Timing(chunk_ms=40, lead_ms=10_000))
    d.twilio(media_frame(timestamp=0))
    d.realtime(event("response.created", response={"id": "r1"}))
    sent = marks(d.realtime(event("response.output_audio.delta", response_id="r1",
                                  item_id="a1", output_index=0, content_index=0,
                                  delta=base64.b64encode(b"\x11" * 8000).decode())))
    d.twilio(media_frame(timestamp=40))
    d.twilio(mark_frame(sent[0]))
    d.twilio(media_frame(timestamp=60))
    d.now += 0.02
    d.realtime(event("input_audio_buffer.speech_started", audio_start_ms=50, item_id="u"))
    agent = recording(d).agent
    played = agent.count(b"\x11")
    assert 320 <= played <= 320 + 160 + 8, "one chunk plus 20 ms of the next, not 1 s"


def test_without_record_audio_nothing_is_kept() -> None:
    """Off by default: no SaveRecording, no per-frame work."""
    d = Driver()
    d.twilio(media_frame(timestamp=0))
    assert not any(isinstance(a, SaveRecording) for a in d.twilio(stop_frame()))


def test_the_timeline_is_capped() -> None:
    """A runaway call cannot grow the recording past its cap."""
    timeline = AsHeardTimeline(max_seconds=1)
    timeline.caller_frame(5000, base64.b64encode(b"\x00" * 160).decode())
    timeline.agent_played(b"\x00" * 160, 900)
    assert len(timeline.caller) == 0
    assert len(timeline.agent) == 900 * 8
    assert json.dumps(timeline.seconds()) == "0.9"

"""Fuzzing the Twilio side: `twilio_messages.parse` raises only `TwilioProtocolError`, and
`CallSession.receive_twilio` never raises, whatever arrives on the media socket."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.core import twilio_messages as tw
from callbridge.errors import TwilioProtocolError
from tests.fuzz.sessions import session, wake_due
from tests.fuzz.strategies import (
    ANY_TWILIO_FRAME,
    SILENCE_B64,
    STREAM_SID,
    TWILIO_FRAMES,
    json_text,
    mutated,
)

REAL_FRAMES = [
    {"event": "media", "sequenceNumber": "3", "streamSid": STREAM_SID,
     "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": SILENCE_B64}},
    {"event": "mark", "sequenceNumber": "4", "streamSid": STREAM_SID, "mark": {"name": "m1"}},
    {"event": "dtmf", "streamSid": STREAM_SID, "sequenceNumber": "5",
     "dtmf": {"track": "inbound_track", "digit": "7"}},
    {"event": "stop", "sequenceNumber": "6", "streamSid": STREAM_SID,
     "stop": {"accountSid": "AC1", "callSid": "CA1"}},
]


def parses_or_protocol_error(frame: str | bytes) -> None:
    try:
        message = tw.parse(frame)
    except TwilioProtocolError:
        return
    assert isinstance(message, tw.Inbound)


@settings(max_examples=300, deadline=None)
@given(TWILIO_FRAMES)
def test_frames_shaped_like_twilios_with_any_values_parse_or_raise_the_protocol_error(
    frame: dict[str, object],
) -> None:
    """Right event and field names, any values: a message, or TwilioProtocolError."""
    parses_or_protocol_error(json_text(frame))


@pytest.mark.parametrize("real", REAL_FRAMES, ids=lambda f: str(f["event"]))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_real_frames_with_bytes_flipped_parse_or_raise_the_protocol_error(
    real: dict[str, object], data: st.DataObject,
) -> None:
    """A real frame damaged in transit (bytes replaced, inserted, deleted): same contract."""
    parses_or_protocol_error(data.draw(mutated(json.dumps(real))))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["pcmu", "pcm16"]), st.booleans(),
       st.lists(ANY_TWILIO_FRAME, min_size=1, max_size=12))
def test_no_sequence_of_frames_makes_the_session_raise(
    audio_format: str, ready: bool, frames: list[str | bytes],
) -> None:
    """Any frames in any order, before or after `start`, PCMU or PCM16: the session never raises."""
    call = session(audio_format, ready=ready)
    now = 0.0
    for frame in frames:
        now += 0.02
        call.receive_twilio(frame, now)
        wake_due(call, now)
    call.twilio_closed(now + 0.02)


@pytest.mark.parametrize("payload", ["0", "\u0080", "not base64!"])
def test_a_media_frame_that_is_not_base64_is_dropped_on_a_pcm16_call(payload: str) -> None:
    """Counted as malformed, no exception (it raised until fac2905; hypothesis found it)."""
    call = session("pcm16")
    frame = {"event": "media", "media": {"track": "inbound", "timestamp": "20",
                                         "payload": payload}}
    call.receive_twilio(json.dumps(frame), 0.1)
    assert call.stats.malformed_twilio == 1

"""The capture file and recorder without a server: masking, limits, pruning, bad files."""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from pathlib import Path

import pytest

from callbridge.capture.file import CaptureError, mask_text, read
from callbridge.capture.recorder import CapturedSession, CaptureLimits
from callbridge.capture.replay import replay
from callbridge.core.agent import AgentProfile

START = json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
    "streamSid": "MZ1", "callSid": "CA1", "accountSid": "AC1", "tracks": ["inbound"],
    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    "customParameters": {"token": "secret-token", "from": "+15551234567", "to": "+15557654321"}}})


def media(seq: int, payload: bytes) -> str:
    return json.dumps({"event": "media", "sequenceNumber": str(seq), "streamSid": "MZ1",
                       "media": {"track": "inbound", "chunk": str(seq),
                                 "timestamp": str(seq * 20),
                                 "payload": base64.b64encode(payload).decode()}})


def test_numbers_are_masked_tokens_dropped_and_audio_kept_byte_for_byte() -> None:
    """Masking touches phone numbers and the stream token, never an audio frame."""
    masked = json.loads(mask_text(START))["start"]["customParameters"]
    assert masked == {"token": "•••", "from": "+1555•••4567", "to": "+1555•••4321"}
    audio = media(2, b"+15551234567" * 10)  # digits that look like a number, inside audio
    assert mask_text(audio) == audio
    append = json.dumps({"type": "input_audio_buffer.append", "audio": "+1555123456789"})
    assert mask_text(append) == append


def session(folder: Path, max_bytes: int = 1 << 20) -> CapturedSession:
    profile = AgentProfile(webhook_secret="whsec", transfer_targets={"desk": "+15550100200"})
    return CapturedSession("CA1", profile, limits=CaptureLimits(folder, max_bytes, 7))


async def test_a_capture_keeps_no_secret_and_replays_as_sent(tmp_path: Path) -> None:
    """The webhook secret never reaches the file; the saved call replays with no divergence."""
    recorded = session(tmp_path)
    recorded.begin(1.0)
    recorded.upstream_opened(1.1)
    recorded.receive_twilio(START.encode(), 1.2)
    for seq in range(2, 30):
        recorded.receive_twilio(media(seq, bytes([seq]) * 160), 1.2 + seq * 0.02)
    recorded.twilio_closed(2.0)
    path = await recorded.save()
    assert path is not None
    assert await recorded.save() is None, "written once"
    text = gzip.decompress(path.read_bytes()).decode()
    assert "whsec" not in text
    assert "+15550100200" not in text
    capture = read(path)
    assert capture.profile.webhook_secret is None
    assert capture.profile.transfer_targets == {"desk": "+1555•••0200"}
    assert [e.call for e in capture.entries][:3] == ["begin", "upstream_opened",
                                                     "receive_twilio"]
    assert replay(capture).first_divergence is None


async def test_a_call_past_the_size_limit_is_captured_up_to_it(tmp_path: Path) -> None:
    """Past max_bytes nothing more is kept, and the file says when capture stopped."""
    recorded = session(tmp_path, max_bytes=4000)
    recorded.begin(1.0)
    recorded.receive_twilio(START, 1.1)
    for seq in range(2, 40):
        recorded.receive_twilio(media(seq, bytes(160)), 1.1 + seq * 0.02)
    path = await recorded.save()
    assert path is not None
    capture = read(path)
    assert capture.truncated_at is not None
    assert 2 < len(capture.entries) < 20
    assert all(e.now < capture.truncated_at for e in capture.entries)


async def test_captures_older_than_the_age_limit_are_deleted_when_one_is_written(
        tmp_path: Path) -> None:
    """max_age_days: an eight-day-old capture goes, a fresh one stays."""
    old, fresh = tmp_path / "old-CA0.jsonl.gz", tmp_path / "fresh-CA9.jsonl.gz"
    for path in (old, fresh):
        path.write_bytes(b"")
    week_ago = time.time() - 8 * 86_400
    os.utime(old, (week_ago, week_ago))
    recorded = session(tmp_path)
    recorded.begin(1.0)
    await recorded.save()
    assert not old.exists()
    assert fresh.exists()


def test_a_file_that_is_not_a_capture_is_one_clear_error(tmp_path: Path) -> None:
    """Not gzip, or gzip of something else: CaptureError naming the file."""
    for body in (b"plain text", gzip.compress(b'{"format": "other"}\n')):
        path = tmp_path / "x.jsonl.gz"
        path.write_bytes(body)
        with pytest.raises(CaptureError, match=str(path)):
            read(path)

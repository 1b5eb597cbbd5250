"""What capturing calls costs (`CALLBRIDGE_CAPTURE_DIR`): `python -m benchmarks.capture_cost`.

Three figures, the sans-I/O core alone (no sockets): a Twilio media frame in → append out with
and without capture (µs per message, best of several rounds — the machine is shared and noisy);
and for one simulated minute of conversation (3,000 caller frames, 300 agent audio deltas with
their paced media, marks and echoes) the work `save()` does in its thread after the call —
masking, encoding, gzip — and the file it writes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.hot_path import CALL_SID, STREAM_SID, best_us, cpu_model, serialize_all
from callbridge.capture.recorder import CapturedSession, CaptureLimits
from callbridge.core.agent import AgentProfile
from callbridge.core.session import CallSession, Timing

SETUP = [
    ("realtime", '{"type":"session.created","session":{}}'),
    ("realtime", json.dumps({"type": "session.updated", "session": {"audio": {
        "input": {"format": {"type": "audio/pcmu"}},
        "output": {"format": {"type": "audio/pcmu"}}}}})),
    ("twilio", json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": STREAM_SID,
        "start": {"accountSid": "AC", "streamSid": STREAM_SID, "callSid": CALL_SID,
                  "tracks": ["inbound"], "customParameters": {"from": "+15551234567"},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                  "channels": 1}}})),
]


def live(captured: bool, folder: Path) -> CallSession:
    timing = Timing(lead_ms=300)
    session = (CapturedSession(CALL_SID, AgentProfile(), timing,
                               limits=CaptureLimits(folder, 1 << 30, 7)) if captured
               else CallSession(CALL_SID, AgentProfile(), timing))
    session.begin(0.0)
    session.upstream_opened(0.0)
    for side, text in SETUP:
        (session.receive_realtime if side == "realtime" else session.receive_twilio)(text, 0.0)
    return session


def media(seq: int) -> str:
    return json.dumps({"event": "media", "sequenceNumber": str(seq), "streamSid": STREAM_SID,
                       "media": {"track": "inbound", "chunk": str(seq),
                                 "timestamp": str(seq * 20),
                                 "payload": base64.b64encode(os.urandom(160)).decode()}})


def media_in(captured: bool, folder: Path) -> Callable[[], None]:
    session = live(captured, folder)
    frame = media(5)

    def step() -> None:
        serialize_all(session.receive_twilio(frame, 1.0))  # type: ignore[arg-type]
    return step


def one_minute(folder: Path) -> CapturedSession:
    """A minute: the caller's frames every 20 ms, an agent reply (100 ms deltas) in every
    other 10 s, each chunk's mark echoed as it would be played."""
    session = live(True, folder)
    assert isinstance(session, CapturedSession)
    marks: list[str] = []
    reply = ""
    for seq in range(2, 3002):
        now = seq * 0.02
        if (seq // 500) % 2 and seq % 5 == 0:  # the agent's turn: a 100 ms delta every 100 ms
            if seq % 500 == 0:
                reply = f"r{seq}"
                session.receive_realtime(json.dumps({"type": "response.created",
                                                     "response": {"id": reply}}), now)
            delta = json.dumps({"type": "response.output_audio.delta", "response_id": reply,
                                "item_id": f"i{reply}", "content_index": 0,
                                "delta": base64.b64encode(os.urandom(800)).decode()})
            actions = session.receive_realtime(delta, now)
            marks += [a.message.name for a in actions  # type: ignore[attr-defined]
                      if type(a).__name__ == "SendTwilio" and hasattr(a.message, "name")]
        session.receive_twilio(media(seq), now)
        if marks and seq % 2 == 0:
            echo = ('{"event":"mark","sequenceNumber":"9","streamSid":"' + STREAM_SID
                    + '","mark":{"name":"' + marks.pop(0) + '"}}')
            session.receive_twilio(echo, now)
        if session.next_wakeup is not None and session.next_wakeup <= now:
            session.wake(now)
    return session


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        plain = best_us(lambda: media_in(False, folder))
        captured = best_us(lambda: media_in(True, folder))
        session = one_minute(folder)
        started = time.perf_counter()
        path = asyncio.run(session.save())
        seconds = time.perf_counter() - started
        assert path is not None
        size = path.stat().st_size
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores (shared with other work: noisy)")
    print(f"{'':<52} {'figure':>12}")
    print(f"{'media frame in → append out, no capture':<52} {plain:>9.2f} µs")
    print(f"{'media frame in → append out, captured':<52} {captured:>9.2f} µs")
    print(f"{'save() of one minute of call (a thread, after the call)':<52} "
          f"{seconds * 1000:>9.0f} ms")
    print(f"{'capture file for one minute of call (gzip)':<52} {size / 1024:>9.0f} KiB")


if __name__ == "__main__":
    main()

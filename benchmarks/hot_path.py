"""Cost of the core's hot path, in µs per message: `python -m benchmarks.hot_path`.

Measures the sans-I/O core alone (no sockets): a Twilio media frame in → the Realtime append out,
serialized; a 100 ms audio delta in → paced media + mark messages out, serialized; a mark echo in.
Prints a table with the machine it ran on. Each figure is the best of several rounds, since this
machine is shared and noisy.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import time
from collections.abc import Callable

from callbridge.core.actions import SendRealtime, SendTwilio
from callbridge.core.agent import AgentProfile
from callbridge.core.session import CallSession, Timing

CALL_SID = "CA" + "1" * 32
STREAM_SID = "MZ" + "2" * 32


def live_session(lead_ms: int = 10**6) -> CallSession:
    session = CallSession(CALL_SID, AgentProfile(), Timing(lead_ms=lead_ms))
    session.begin(0.0)
    session.upstream_opened(0.0)
    session.receive_realtime('{"type":"session.created","session":{}}', 0.0)
    fmt = {"format": {"type": "audio/pcmu"}}
    session.receive_realtime(json.dumps({"type": "session.updated",
                                         "session": {"audio": {"input": fmt, "output": fmt}}}), 0.0)
    session.receive_twilio(json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": STREAM_SID,
        "start": {"accountSid": "AC", "streamSid": STREAM_SID, "callSid": CALL_SID,
                  "tracks": ["inbound"], "customParameters": {},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                  "channels": 1}}}), 0.0)
    return session


def serialize_all(actions: list[object]) -> None:
    for action in actions:
        if isinstance(action, SendRealtime):
            action.event.serialize()
        elif isinstance(action, SendTwilio):
            action.message.serialize()


def media_in() -> Callable[[], None]:
    session = live_session()
    frame = json.dumps({"event": "media", "sequenceNumber": "5", "streamSid": STREAM_SID,
                        "media": {"track": "inbound", "chunk": "4", "timestamp": "80",
                                  "payload": base64.b64encode(os.urandom(160)).decode()}})

    def step() -> None:
        serialize_all(session.receive_twilio(frame, 1.0))  # type: ignore[arg-type]
    return step


def delta_in() -> Callable[[], None]:
    session = live_session()
    session.receive_realtime('{"type":"response.created","response":{"id":"r1"}}', 0.0)
    delta = json.dumps({"type": "response.output_audio.delta", "event_id": "e", "response_id": "r1",
                        "item_id": "i1", "output_index": 0, "content_index": 0,
                        "delta": base64.b64encode(os.urandom(800)).decode()})

    def step() -> None:
        serialize_all(session.receive_realtime(delta, 1.0))  # type: ignore[arg-type]
    return step


def mark_in() -> Callable[[], None]:
    """Paced playback as on a call: each echo frees room for one more chunk (media + mark)."""
    session = live_session(lead_ms=300)
    session.receive_realtime('{"type":"response.created","response":{"id":"r1"}}', 0.0)
    names: list[str] = []
    clock = [1.0]

    def collect(actions: list[object]) -> None:
        serialize_all(actions)
        names.extend(a.message.name for a in actions  # type: ignore[attr-defined]
                     if isinstance(a, SendTwilio) and hasattr(a.message, "name"))

    def step() -> None:
        if len(names) < 2:
            delta = json.dumps({"type": "response.output_audio.delta", "response_id": "r1",
                                "item_id": "i1", "content_index": 0,
                                "delta": base64.b64encode(b"\x55" * 480000).decode()})
            collect(session.receive_realtime(delta, clock[0]))  # type: ignore[arg-type]
        clock[0] += 0.04
        echo = ('{"event":"mark","sequenceNumber":"9","streamSid":"' + STREAM_SID
                + '","mark":{"name":"' + names.pop(0) + '"}}')
        collect(session.receive_twilio(echo, clock[0]))  # type: ignore[arg-type]
    return step


def best_us(make: Callable[[], Callable[[], None]], count: int = 20000, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        step = make()
        start = time.perf_counter()
        for _ in range(count):
            step()
        best = min(best, (time.perf_counter() - start) / count * 1e6)
    return best


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    rows = [
        ("Twilio media frame in → append out (20 ms)", best_us(media_in)),
        ("audio delta in → media+mark out (100 ms)", best_us(delta_in, 5000)),
        ("mark echo in → next paced media+mark out", best_us(mark_in)),
    ]
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'path':<46} {'µs/message':>10} {'share of one core per call':>28}")
    for name, us in rows:
        per_second = 50 if "20 ms" in name else 10 if "100 ms" in name else 25
        print(f"{name:<46} {us:>10.1f} {us * per_second / 1e4:>27.3f}%")


if __name__ == "__main__":
    main()
